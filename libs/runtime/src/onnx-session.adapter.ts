import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ExecutionProviderError, InvalidGenerationRequestError, ModelFileError, ModelSignatureError } from './errors';
import { toHalf } from './tensor-dtype';

/** Where sessions run. `auto` tries CUDA and falls back to CPU with a warning. */
export type ExecutionProviderChoice = 'cpu' | 'cuda' | 'auto';
export type ResolvedExecutionProvider = 'cpu' | 'cuda';

/** Options shared by every session the runtime opens. */
export interface SessionOptions {
  executionProvider: ResolvedExecutionProvider;
  /** Threads for one operator; 0 lets onnxruntime decide (all cores). */
  intraOpThreads: number;
  /** CUDA device ordinal when executionProvider is `cuda`. */
  deviceId?: number;
}

/** What a layout requires of one tensor: its name, element type and rank. */
export interface TensorSpec {
  name: string;
  /** Accepted element types; float32 also accepts float16 (fed and read through tensor-dtype). */
  types: readonly ort.Tensor.Type[];
  rank: number | readonly number[];
}

export interface SessionSignature {
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
  /** Extra inputs the model may have and the runtime knows how to leave out. */
  optionalInputs?: readonly TensorSpec[];
}

type Feeds = Record<string, ort.Tensor>;

// onnxruntime's own logger writes straight to stderr (e.g. a red error line for every CPU-only CUDA probe).
// Every failure it could report also comes back to us as an exception, which we log with context instead.
ort.env.logLevel = 'fatal';

function describeTensor(name: string, tensor: ort.Tensor): string {
  return `${name}: ${tensor.type}[${tensor.dims.join(',')}]`;
}

function describeMetadata(meta: ort.InferenceSession.ValueMetadata): string {
  return meta.isTensor ? `${meta.name}: ${meta.type}[${meta.shape.join(',')}]` : `${meta.name}: (not a tensor)`;
}

/**
 * The one adapter around an onnxruntime `InferenceSession`. It checks the session's signature at load and
 * every feed before `run()`, and reports tensor names, types and dims (never data) when they disagree.
 */
export class OnnxSession {
  private readonly inputsByName: Map<string, ort.InferenceSession.TensorValueMetadata>;

  private constructor(
    readonly file: string,
    private readonly session: ort.InferenceSession,
  ) {
    this.inputsByName = new Map(
      session.inputMetadata
        .filter((meta): meta is ort.InferenceSession.TensorValueMetadata => meta.isTensor)
        .map((meta) => [meta.name, meta]),
    );
  }

  static async open(file: string, signature: SessionSignature, options: SessionOptions): Promise<OnnxSession> {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders:
        options.executionProvider === 'cuda' ? [{ name: 'cuda', deviceId: options.deviceId ?? 0 }] : ['cpu'],
      intraOpNumThreads: options.intraOpThreads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    };
    await access(file).catch((error: unknown) => {
      throw new ModelFileError(file, 'cannot be read (missing file?)', { cause: error });
    });
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file, sessionOptions);
    } catch (error) {
      const message = (error as Error).message;
      if (options.executionProvider === 'cuda' && /cuda|provider|shared library|\.so/i.test(message)) {
        throw new ExecutionProviderError(`cannot open ${file} with the CUDA execution provider: ${message}`, {
          cause: error,
        });
      }
      throw new ModelSignatureError(file, `onnxruntime cannot load the model: ${message}`);
    }
    const opened = new OnnxSession(file, session);
    opened.checkSignature(signature);
    return opened;
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** The declared shape of an input (numbers for fixed dims, strings for symbolic ones). */
  inputShape(name: string): ReadonlyArray<number | string> | undefined {
    return this.inputsByName.get(name)?.shape;
  }

  private checkSignature(signature: SessionSignature): void {
    const check = (
      kind: 'input' | 'output',
      specs: readonly TensorSpec[],
      metadata: readonly ort.InferenceSession.ValueMetadata[],
      required: boolean,
    ): void => {
      const byName = new Map(metadata.map((meta) => [meta.name, meta]));
      for (const spec of specs) {
        const meta = byName.get(spec.name);
        if (!meta) {
          if (!required) continue;
          const found = metadata.map(describeMetadata).join('; ');
          throw new ModelSignatureError(this.file, `missing ${kind} "${spec.name}" (the model has ${kind}s: ${found})`);
        }
        const fits =
          meta.isTensor &&
          (spec.types.includes(meta.type) || (meta.type === 'float16' && spec.types.includes('float32'))) &&
          [spec.rank].flat().includes(meta.shape.length);
        if (!fits) {
          throw new ModelSignatureError(
            this.file,
            `${kind} ${describeMetadata(meta)} does not match the layout: expected ${spec.types.join('|')} of rank ${[spec.rank].flat().join(' or ')}`,
          );
        }
      }
    };
    check('input', signature.inputs, this.session.inputMetadata, true);
    check('input', signature.optionalInputs ?? [], this.session.inputMetadata, false);
    check('output', signature.outputs, this.session.outputMetadata, true);
    const known = new Set([...signature.inputs, ...(signature.optionalInputs ?? [])].map((spec) => spec.name));
    const unknown = this.session.inputNames.filter((name) => !known.has(name));
    if (unknown.length > 0) {
      throw new ModelSignatureError(this.file, `unexpected inputs the layout does not define: ${unknown.join(', ')}`);
    }
  }

  /** The declared shape of the output at `index` (numbers for fixed dims, strings for symbolic ones). */
  outputShape(index: number): ReadonlyArray<number | string> | undefined {
    const meta = this.session.outputMetadata[index];
    return meta?.isTensor ? meta.shape : undefined;
  }

  /** The element type the graph declares for an input or output. */
  elementType(name: string): ort.Tensor.Type | undefined {
    const meta = [...this.session.inputMetadata, ...this.session.outputMetadata].find((m) => m.name === name);
    return meta?.isTensor ? meta.type : undefined;
  }

  /**
   * Runs the session after checking that the feeds match its inputs (names, types, ranks, fixed dims).
   * float32 feeds of float16 inputs are converted, so callers can stay in float32.
   */
  run(feeds: Feeds): Promise<ort.InferenceSession.ReturnType> {
    const ready: Feeds = {};
    try {
      for (const name in feeds) {
        const tensor = feeds[name];
        ready[name] =
          tensor.type === 'float32' && this.inputsByName.get(name)?.type === 'float16'
            ? new ort.Tensor('float16', toHalf(tensor.data as Float32Array), tensor.dims)
            : tensor;
      }
      this.checkFeeds(ready);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.session.run(ready);
  }

  private checkFeeds(feeds: Feeds): void {
    let fed = 0;
    for (const name in feeds) {
      fed++;
      const tensor = feeds[name];
      const meta = this.inputsByName.get(name);
      if (!meta) {
        throw new InvalidGenerationRequestError(`${this.file}: unexpected feed ${describeTensor(name, tensor)}`);
      }
      const { shape } = meta;
      let fits = tensor.type === meta.type && tensor.dims.length === shape.length;
      for (let axis = 0; fits && axis < shape.length; axis++) {
        const dim = shape[axis];
        if (typeof dim === 'number' && dim >= 0 && tensor.dims[axis] !== dim) fits = false;
      }
      if (!fits) {
        throw new InvalidGenerationRequestError(`${this.file}: input ${describeTensor(name, tensor)} does not fit ${describeMetadata(meta)}`);
      }
    }
    if (fed !== this.inputsByName.size) {
      const missing = [...this.inputsByName.keys()].filter((name) => !(name in feeds));
      throw new InvalidGenerationRequestError(`${this.file}: feed is missing inputs ${missing.join(', ')}`);
    }
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * sha256 over a graph file and its external data (the files beside it whose names start with the graph's
 * file name, e.g. `vision_encoder.onnx_data`, `vision_encoder.onnx.data`, `vision_encoder.onnx_data_1`), in
 * name order, plus `extra` (settings that change the graph's output, e.g. the image preprocessing).
 */
export async function hashGraphFiles(file: string, extra = ''): Promise<string> {
  const name = basename(file);
  const dir = dirname(file);
  const siblings = (await readdir(dir).catch(() => [] as string[]))
    .filter((entry) => entry !== name && entry.startsWith(name))
    .sort();
  const hash = createHash('sha256');
  for (const part of [name, ...siblings]) {
    hash.update(`${part}\0`);
    try {
      for await (const chunk of createReadStream(join(dir, part))) hash.update(chunk as Buffer);
    } catch (error) {
      throw new ModelFileError(join(dir, part), 'cannot be read (missing file?)', { cause: error });
    }
  }
  hash.update(extra);
  return hash.digest('hex');
}

/**
 * Picks the execution provider. `auto` uses CUDA when a session opens with it, otherwise CPU, returning the
 * reason so the caller can log a warning.
 */
export async function resolveExecutionProvider(
  choice: ExecutionProviderChoice,
  probeModelFile: string,
  options: Omit<SessionOptions, 'executionProvider'>,
): Promise<{ provider: ResolvedExecutionProvider; fallbackReason?: string }> {
  if (choice === 'cpu') return { provider: 'cpu' };
  let failure: string;
  try {
    const probe = await ort.InferenceSession.create(probeModelFile, {
      executionProviders: [{ name: 'cuda', deviceId: options.deviceId ?? 0 }],
      logSeverityLevel: 3,
    });
    await probe.release();
    return { provider: 'cuda' };
  } catch (error) {
    // The CUDA provider ships separately from onnxruntime-node (ONNXRUNTIME_NODE_INSTALL=cuda12 at build time).
    failure = `CUDA execution provider unavailable: ${(error as Error).message}`;
  }
  if (choice === 'cuda') throw new ExecutionProviderError(failure);
  return { provider: 'cpu', fallbackReason: failure };
}
