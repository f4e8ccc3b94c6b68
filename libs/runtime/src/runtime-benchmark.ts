import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { KvCache } from './kv-cache';
import { MODEL_FILES } from './model-files';
import type { ResolvedExecutionProvider } from './onnx-session.adapter';
import { VlmRuntime, type ImageFeatures } from './vlm-runtime';

export interface RuntimeBenchmarkOptions {
  modelDir: string;
  imagePath: string;
  prompt: string;
  batchSizes: number[];
  /** Tokens generated per request in every round. */
  newTokens: number;
  /** Timed rounds per batch size; the median round is reported. */
  rounds: number;
  intraOpThreads: number;
  executionProvider: ResolvedExecutionProvider;
}

export interface RuntimeBenchmarkRow {
  batch: number;
  tokensPerRound: number;
  runtimeMs: number;
  floorMs: number;
  runtimeTokensPerSecond: number;
  floorTokensPerSecond: number;
  /** runtime throughput / floor throughput: 1 means the runtime adds nothing to the bare session loop. */
  ratio: number;
  /** The same runtime with its token-embedding cache off, i.e. the same session calls as the floor. */
  uncachedRuntimeMs: number;
  uncachedRatio: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * The floor: the same embed + decoder `session.run` calls the runtime makes for one generation, with
 * tensors prepared in advance — no tokenizer, no logits processing, no token selection.
 */
class BareSessionLoop {
  private constructor(
    private readonly embed: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
    private readonly runtime: VlmRuntime,
  ) {}

  static async open(runtime: VlmRuntime, options: RuntimeBenchmarkOptions): Promise<BareSessionLoop> {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: [options.executionProvider],
      intraOpNumThreads: options.intraOpThreads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    };
    const [embed, decoder] = await Promise.all([
      ort.InferenceSession.create(join(options.modelDir, MODEL_FILES.embedTokens), sessionOptions),
      ort.InferenceSession.create(join(options.modelDir, MODEL_FILES.decoder), sessionOptions),
    ]);
    return new BareSessionLoop(embed, decoder, runtime);
  }

  /**
   * Builds every tensor of one round up front from what the runtime itself fed (prompt ids, image features,
   * the tokens it generated), then returns the timed loop.
   */
  prepare(promptIds: number[], features: ImageFeatures, generated: number[][]): () => Promise<void> {
    const { numLayers, numKeyValueHeads, headDim, imageTokenIndex, hiddenSize } = this.runtime.config;
    const batch = generated.length;
    const steps = generated[0].length - 1;
    const length = promptIds.length;
    const imageOffset = promptIds.indexOf(imageTokenIndex) * hiddenSize;
    const promptTensor = new ort.Tensor('int64', BigInt64Array.from({ length: batch * length }, (_, i) => BigInt(promptIds[i % length])), [batch, length]);
    const prefillMask = new ort.Tensor('int64', new BigInt64Array(batch * length).fill(1n), [batch, length]);
    const prefillPositions = new ort.Tensor('int64', BigInt64Array.from({ length: batch * length }, (_, i) => BigInt(i % length)), [batch, length]);
    const stepIds = Array.from({ length: steps }, (_, step) => new ort.Tensor('int64', BigInt64Array.from(generated, (tokens) => BigInt(tokens[step])), [batch, 1]));
    const stepMasks = Array.from({ length: steps }, (_, step) => new ort.Tensor('int64', new BigInt64Array(batch * (length + step + 1)).fill(1n), [batch, length + step + 1]));
    const stepPositions = Array.from({ length: steps }, (_, step) => new ort.Tensor('int64', new BigInt64Array(batch).fill(BigInt(length + step)), [batch, 1]));
    return async () => {
      const cache = KvCache.empty(numLayers, batch, numKeyValueHeads, headDim);
      const embedded = await this.embed.run({ input_ids: promptTensor });
      const embeds = embedded.inputs_embeds.data as Float32Array;
      for (let row = 0; row < batch; row++) embeds.set(features.data, row * length * hiddenSize + imageOffset);
      let outputs = await this.decoder.run({ inputs_embeds: embedded.inputs_embeds, attention_mask: prefillMask, position_ids: prefillPositions, ...cache.feeds });
      cache.update(outputs);
      for (let step = 0; step < steps; step++) {
        const next = await this.embed.run({ input_ids: stepIds[step] });
        outputs = await this.decoder.run({ inputs_embeds: next.inputs_embeds, attention_mask: stepMasks[step], position_ids: stepPositions[step], ...cache.feeds });
        cache.update(outputs);
      }
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.embed.release(), this.decoder.release()]);
  }
}

/**
 * Measures generation throughput of the runtime (from precomputed image features, greedy) against the bare
 * session loop, alternating the two in every round so both see the same machine state.
 */
export async function runRuntimeBenchmark(
  options: RuntimeBenchmarkOptions,
  log: (line: string) => void,
): Promise<RuntimeBenchmarkRow[]> {
  const runtime = await VlmRuntime.load(options.modelDir, {
    executionProvider: options.executionProvider,
    intraOpThreads: options.intraOpThreads,
    logger: { info: () => undefined, warn: (message, fields) => log(`warning: ${message} ${JSON.stringify(fields)}`) },
  });
  const uncached = await VlmRuntime.load(options.modelDir, {
    executionProvider: options.executionProvider,
    intraOpThreads: options.intraOpThreads,
    embeddingCacheTokens: 0,
    logger: { info: () => undefined, warn: () => undefined },
  });
  const floor = await BareSessionLoop.open(runtime, options);
  try {
    const [features] = await runtime.encodeImages([new Uint8Array(await readFile(options.imagePath))]);
    const promptIds = runtime.encodePrompt(options.prompt, true);
    const rows: RuntimeBenchmarkRow[] = [];
    log(`model ${options.modelDir}; provider ${runtime.executionProvider}; intra-op threads ${options.intraOpThreads || 'all'}; prompt ${promptIds.length} tokens; ${options.newTokens} new tokens per request`);
    for (const batch of options.batchSizes) {
      const requests = Array.from({ length: batch }, () => ({
        prompt: options.prompt,
        imageFeatures: features,
        options: { maxNewTokens: options.newTokens },
      }));
      const warm = await runtime.generate(requests);
      const generated = Math.max(...warm.map((result) => result.generatedTokens));
      const tokensPerRound = warm.reduce((sum, result) => sum + result.generatedTokens, 0);
      if (warm.some((result) => result.generatedTokens !== generated)) {
        throw new Error('benchmark rows stopped at different lengths; use a prompt that runs to --new-tokens');
      }
      // The runtime's first token comes from the prefill, so the floor runs generated - 1 decode steps.
      const floorRound = floor.prepare(promptIds, features, warm.map((result) => result.tokenIds));
      await floorRound();
      await uncached.generate(requests);
      const runtimeTimes: number[] = [];
      const uncachedTimes: number[] = [];
      const floorTimes: number[] = [];
      const timeFloor = async (): Promise<void> => {
        const start = performance.now();
        await floorRound();
        floorTimes.push(performance.now() - start);
      };
      const timeRuntime = async (which: VlmRuntime, times: number[]): Promise<void> => {
        const start = performance.now();
        await which.generate(requests);
        times.push(performance.now() - start);
      };
      const sides = [timeFloor, () => timeRuntime(runtime, runtimeTimes), () => timeRuntime(uncached, uncachedTimes)];
      // Alternating order: no side always runs first (warm caches, timer and GC phase even out).
      for (let round = 0; round < options.rounds; round++) {
        for (const side of round % 2 === 0 ? sides : [...sides].reverse()) await side();
      }
      const runtimeMs = median(runtimeTimes);
      const floorMs = median(floorTimes);
      const uncachedRuntimeMs = median(uncachedTimes);
      const row: RuntimeBenchmarkRow = {
        batch,
        tokensPerRound,
        runtimeMs,
        floorMs,
        runtimeTokensPerSecond: (tokensPerRound / runtimeMs) * 1000,
        floorTokensPerSecond: (batch * generated / floorMs) * 1000,
        ratio: floorMs / runtimeMs,
        uncachedRuntimeMs,
        uncachedRatio: floorMs / uncachedRuntimeMs,
      };
      rows.push(row);
      log(
        `batch ${String(batch).padStart(2)}: runtime ${row.runtimeTokensPerSecond.toFixed(0)} tok/s (${runtimeMs.toFixed(2)} ms/round), floor ${row.floorTokensPerSecond.toFixed(0)} tok/s (${floorMs.toFixed(2)} ms/round), ratio runtime/floor ${row.ratio.toFixed(3)}; embedding cache off: ${uncachedRuntimeMs.toFixed(2)} ms/round, ratio ${row.uncachedRatio.toFixed(3)}`,
      );
    }
    return rows;
  } finally {
    await floor.release();
    await runtime.release();
    await uncached.release();
  }
}
