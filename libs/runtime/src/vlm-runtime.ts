import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { InvalidGenerationRequestError, ModelFileError, ModelSignatureError } from './errors';
import {
  DEFAULT_GENERATION_LIMITS,
  resolveGenerationOptions,
  type GenerationLimits,
  type GenerationOptions,
  type ResolvedGenerationOptions,
} from './generation-options';
import {
  DEFAULT_IMAGE_LIMITS,
  ImagePreprocessor,
  decodeImage,
  parsePreprocessorConfig,
  stackPixelValues,
  type DecodeOptions,
  type DecodedImage,
  type ImageLimits,
} from './image';
import { KvCache, pastNames, presentNames } from './kv-cache';
import {
  MODEL_FILES,
  parseGenerationConfig,
  parseModelConfig,
  readJsonFile,
  type GenerationConfig,
  type ModelConfig,
} from './model-files';
import {
  OnnxSession,
  resolveExecutionProvider,
  type ExecutionProviderChoice,
  type ResolvedExecutionProvider,
  type SessionSignature,
} from './onnx-session.adapter';
import { PromptEncoder } from './prompt-encoder';
import { TokenEmbeddingCache } from './token-embedding-cache';
import { applyRepetitionPenalty, argmax, createRng, logSoftmax, sampleToken, topKIndices } from './sampling';

/** Structured log sink; the default writes JSON lines to stderr. */
export interface RuntimeLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

const stderrLogger: RuntimeLogger = {
  info: (message, fields) => process.stderr.write(`${JSON.stringify({ level: 'info', msg: message, ...fields })}\n`),
  warn: (message, fields) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg: message, ...fields })}\n`),
};

export interface VlmRuntimeOptions {
  /** `cpu`, `cuda`, or `auto` (CUDA when it loads, else CPU with a warning). Default `auto`. */
  executionProvider?: ExecutionProviderChoice;
  /** Threads per operator; 0 lets onnxruntime use every core (default 0). */
  intraOpThreads?: number;
  /** CUDA device ordinal (default 0). */
  deviceId?: number;
  /** Byte and pixel limits for encoded images (defaults: 32 MiB, 64 megapixels). */
  imageLimits?: Partial<ImageLimits>;
  /** Upper bounds on per-request generation options (defaults: 512 new tokens, 8 beams). */
  generationLimits?: Partial<GenerationLimits>;
  /** Run every session once at load so the first request does not pay for lazy initialisation (default true). */
  warmUp?: boolean;
  /**
   * Embedding rows of generated tokens kept in memory (default 8192; 0 disables): a decoding step whose
   * tokens are all cached skips the embed_tokens session. Costs capacity × hidden size × 4 bytes at most.
   */
  embeddingCacheTokens?: number;
  logger?: RuntimeLogger;
}

/** Vision-encoder output for one image, reusable by every model that shares the encoder. */
export interface ImageFeatures {
  /** sha256 of the vision encoder file: features only fit models with the same encoder. */
  encoderId: string;
  /** Positions the image occupies in the prompt (N). */
  tokens: number;
  /** Width of each feature vector (D). */
  hiddenSize: number;
  /** N × D values, row-major. */
  data: Float32Array;
}

export type ImageInput = Uint8Array | DecodedImage;

export interface GenerationRequest {
  /** The user's instruction or question; the model's chat template is applied unless `rawPrompt`. */
  prompt: string;
  /** The image as encoded bytes (PNG, JPEG, WebP, TIFF/GeoTIFF) or already decoded. */
  image?: ImageInput;
  /** Precomputed features (see `encodeImages`), used instead of `image`. */
  imageFeatures?: ImageFeatures;
  /** The prompt is already templated and holds the image placeholder token where the image goes. */
  rawPrompt?: boolean;
  /** How to read the image bytes (GeoTIFF band selection, stretch percentiles). */
  decodeOptions?: Omit<DecodeOptions, 'limits'>;
  options?: GenerationOptions;
}

/** Wall-clock milliseconds spent in each phase. Batched requests share the batch's phase times. */
export interface GenerationTimings {
  preprocessMs: number;
  visionEncodeMs: number;
  prefillMs: number;
  decodeMs: number;
  timeToFirstTokenMs: number;
  totalMs: number;
}

export type FinishReason = 'eos' | 'stop_string' | 'length';

export interface GenerationResult {
  text: string;
  /** Generated ids, including the end-of-sequence token when the model emitted one. */
  tokenIds: number[];
  promptTokens: number;
  generatedTokens: number;
  finishReason: FinishReason;
  timings: GenerationTimings;
}

/** A request after prompt encoding and option checks: what the decoding loops work on. */
interface PreparedRequest {
  inputIds: number[];
  options: ResolvedGenerationOptions;
  maxNewTokens: number;
  features: ImageFeatures | undefined;
}

interface BatchOutcome {
  tokens: number[][];
  finishReasons: FinishReason[];
  prefillMs: number;
  decodeMs: number[];
  firstTokenAt: number;
}

const FLOAT = ['float32'] as const;
const INT64 = ['int64'] as const;

function decoderSignature(numLayers: number): SessionSignature {
  const inputs = [
    { name: 'inputs_embeds', types: FLOAT, rank: 3 },
    { name: 'attention_mask', types: INT64, rank: 2 },
  ];
  const outputs = [{ name: 'logits', types: FLOAT, rank: 3 }];
  for (let layer = 0; layer < numLayers; layer++) {
    const past = pastNames(layer);
    const present = presentNames(layer);
    inputs.push({ name: past.key, types: FLOAT, rank: 4 }, { name: past.value, types: FLOAT, rank: 4 });
    outputs.push({ name: present.key, types: FLOAT, rank: 4 }, { name: present.value, types: FLOAT, rank: 4 });
  }
  return {
    inputs,
    outputs,
    optionalInputs: [
      { name: 'position_ids', types: INT64, rank: 2 },
      // Optimum's merged decoders switch between the no-cache and the cache subgraph with this flag.
      { name: 'use_cache_branch', types: ['bool'], rank: 1 },
    ],
  };
}

const VISION_SIGNATURE: SessionSignature = {
  inputs: [{ name: 'pixel_values', types: FLOAT, rank: 4 }],
  outputs: [{ name: 'image_features', types: FLOAT, rank: 3 }],
};

const EMBED_SIGNATURE: SessionSignature = {
  inputs: [{ name: 'input_ids', types: INT64, rank: 2 }],
  outputs: [{ name: 'inputs_embeds', types: FLOAT, rank: 3 }],
};

function elapsed(since: number): number {
  return performance.now() - since;
}

/**
 * A LLaVA-family vision-language model on onnxruntime-node: the one owner of its ONNX sessions.
 * Turns (image, prompt) into text with greedy, sampled or beam-search decoding, batched across requests.
 */
export class VlmRuntime {
  private readonly imageLimits: ImageLimits;
  private readonly generationLimits: GenerationLimits;
  private readonly usesPositionIds: boolean;
  private readonly usesCacheBranchFlag: boolean;
  private readonly embeddingCache: TokenEmbeddingCache;

  private constructor(
    readonly modelDir: string,
    readonly config: ModelConfig,
    readonly generationConfig: GenerationConfig,
    readonly executionProvider: ResolvedExecutionProvider,
    /** sha256 of the vision encoder file; features with this id can be shared between models. */
    readonly encoderId: string,
    private readonly promptEncoder: PromptEncoder,
    private readonly preprocessor: ImagePreprocessor,
    private readonly vision: OnnxSession,
    private readonly embed: OnnxSession,
    private readonly decoder: OnnxSession,
    options: VlmRuntimeOptions,
  ) {
    this.imageLimits = { ...DEFAULT_IMAGE_LIMITS, ...options.imageLimits };
    this.generationLimits = { ...DEFAULT_GENERATION_LIMITS, ...options.generationLimits };
    this.usesPositionIds = decoder.inputNames.includes('position_ids');
    this.usesCacheBranchFlag = decoder.inputNames.includes('use_cache_branch');
    this.embeddingCache = new TokenEmbeddingCache(options.embeddingCacheTokens ?? 8192, config.hiddenSize);
  }

  /** Loads one expert directory in the LLaVA ONNX layout, checks it, and warms it up. */
  static async load(modelDir: string, options: VlmRuntimeOptions = {}): Promise<VlmRuntime> {
    const logger = options.logger ?? stderrLogger;
    const file = (name: string): string => join(modelDir, name);
    const [configJson, generationJson, preprocessorJson, tokenizerJson, tokenizerConfigJson] = await Promise.all([
      readJsonFile(modelDir, MODEL_FILES.config),
      readJsonFile(modelDir, MODEL_FILES.generationConfig),
      readJsonFile(modelDir, MODEL_FILES.preprocessorConfig),
      readJsonFile(modelDir, MODEL_FILES.tokenizer),
      readJsonFile(modelDir, MODEL_FILES.tokenizerConfig),
    ]);
    const config = parseModelConfig(configJson, file(MODEL_FILES.config));
    const fallbackPad = typeof configJson.pad_token_id === 'number' ? configJson.pad_token_id : 0;
    const generationConfig = parseGenerationConfig(generationJson, file(MODEL_FILES.generationConfig), fallbackPad);
    const preprocessor = new ImagePreprocessor(
      parsePreprocessorConfig(preprocessorJson, file(MODEL_FILES.preprocessorConfig)),
    );
    const promptEncoder = new PromptEncoder({
      tokenizerJson,
      tokenizerConfig: tokenizerConfigJson,
      tokenizerConfigFile: file(MODEL_FILES.tokenizerConfig),
      imageTokenIndex: config.imageTokenIndex,
      imageSeqLength: config.imageSeqLength,
    });

    const sessionBase = { intraOpThreads: options.intraOpThreads ?? 0, deviceId: options.deviceId };
    const visionFile = file(MODEL_FILES.visionEncoder);
    const visionBytes = await readFile(visionFile).catch((error: unknown) => {
      throw new ModelFileError(visionFile, 'cannot be read (missing file?)', { cause: error });
    });
    const encoderId = createHash('sha256').update(visionBytes).digest('hex');
    const { provider, fallbackReason } = await resolveExecutionProvider(
      options.executionProvider ?? 'auto',
      visionFile,
      sessionBase,
    );
    if (fallbackReason) logger.warn('execution provider fallback to cpu', { modelDir, reason: fallbackReason });
    const sessionOptions = { ...sessionBase, executionProvider: provider };
    const [vision, embed, decoder] = await Promise.all([
      OnnxSession.open(visionFile, VISION_SIGNATURE, sessionOptions),
      OnnxSession.open(file(MODEL_FILES.embedTokens), EMBED_SIGNATURE, sessionOptions),
      OnnxSession.open(file(MODEL_FILES.decoder), decoderSignature(config.numLayers), sessionOptions),
    ]);
    const runtime = new VlmRuntime(
      modelDir,
      config,
      generationConfig,
      provider,
      encoderId,
      promptEncoder,
      preprocessor,
      vision,
      embed,
      decoder,
      options,
    );
    if (options.warmUp ?? true) await runtime.warmUp();
    logger.info('model loaded', {
      modelDir,
      executionProvider: provider,
      intraOpThreads: sessionBase.intraOpThreads,
      layers: config.numLayers,
      vocabSize: config.vocabSize,
      imageTokens: config.imageSeqLength,
    });
    return runtime;
  }

  async release(): Promise<void> {
    await Promise.all([this.vision.release(), this.embed.release(), this.decoder.release()]);
  }

  /** Renders and tokenises a prompt exactly as `generate` would (image placeholders expanded). */
  encodePrompt(prompt: string, withImage: boolean, rawPrompt = false): number[] {
    return this.promptEncoder.encode(prompt, withImage, rawPrompt).inputIds;
  }

  decodeTokens(ids: readonly number[]): string {
    return this.promptEncoder.decode(ids);
  }

  /** Decodes, resizes and normalises images into one NCHW float batch, as the vision encoder expects. */
  async preprocessImages(images: readonly ImageInput[], decodeOptions?: Omit<DecodeOptions, 'limits'>): Promise<Float32Array> {
    const pixels = await Promise.all(
      images.map(async (image) => {
        const decoded =
          image instanceof Uint8Array ? await decodeImage(image, { ...decodeOptions, limits: this.imageLimits }) : image;
        return this.preprocessor.toPixelValues(decoded);
      }),
    );
    return stackPixelValues(pixels, this.preprocessor.outputHeight, this.preprocessor.outputWidth);
  }

  /** Runs the vision encoder on a batch of preprocessed images (NCHW). */
  async encodePixels(pixelValues: Float32Array, batch: number): Promise<ImageFeatures[]> {
    const { outputHeight: height, outputWidth: width } = this.preprocessor;
    const outputs = await this.vision.run({
      pixel_values: new ort.Tensor('float32', pixelValues, [batch, 3, height, width]),
    });
    const features = outputs.image_features;
    const [, tokens, hiddenSize] = features.dims;
    if (tokens !== this.config.imageSeqLength || hiddenSize !== this.config.hiddenSize) {
      throw new ModelSignatureError(
        this.vision.file,
        `image_features has shape [${features.dims.join(',')}], config.json expects [${batch},${this.config.imageSeqLength},${this.config.hiddenSize}]`,
      );
    }
    const data = features.data as Float32Array;
    const size = tokens * hiddenSize;
    return Array.from({ length: batch }, (_, row) => ({
      encoderId: this.encoderId,
      tokens,
      hiddenSize,
      data: data.slice(row * size, (row + 1) * size),
    }));
  }

  /** Computes image features once, so several experts sharing this encoder can reuse them. */
  async encodeImages(images: readonly ImageInput[], decodeOptions?: Omit<DecodeOptions, 'limits'>): Promise<ImageFeatures[]> {
    if (images.length === 0) return [];
    return this.encodePixels(await this.preprocessImages(images, decodeOptions), images.length);
  }

  /**
   * Generates for several requests. Greedy and sampled requests run as one padded batch and get exactly the
   * tokens each would get alone; beam-search requests run one at a time with their beams as the batch.
   */
  async generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]> {
    const started = performance.now();
    const prepared = requests.map((request) => this.prepare(request));
    const encoded = await this.encodeMissingFeatures(requests, prepared);
    const results: GenerationResult[] = new Array(requests.length);
    const batchRows = prepared.flatMap((request, index) => (request.options.numBeams > 1 ? [] : [index]));
    if (batchRows.length > 0) {
      const outcome = await this.decodeBatch(batchRows.map((index) => prepared[index]));
      batchRows.forEach((index, row) => {
        results[index] = this.toResult(prepared[index], outcome.tokens[row], outcome.finishReasons[row], {
          preprocessMs: encoded.preprocessMs,
          visionEncodeMs: encoded.visionEncodeMs,
          prefillMs: outcome.prefillMs,
          decodeMs: outcome.decodeMs[row],
          timeToFirstTokenMs: outcome.firstTokenAt - started,
          totalMs: elapsed(started),
        });
      });
    }
    for (let index = 0; index < prepared.length; index++) {
      if (prepared[index].options.numBeams <= 1) continue;
      results[index] = await this.runBeamSearch(prepared[index], started, encoded);
    }
    return results;
  }

  /**
   * Logits of the first generated token for each request, after the prompt (and image) are prefilled:
   * for scoring fixed answers and for checking an export against its framework.
   */
  async nextTokenLogits(requests: readonly GenerationRequest[]): Promise<Float32Array[]> {
    const prepared = requests.map((request) => this.prepare(request));
    await this.encodeMissingFeatures(requests, prepared);
    const cache = KvCache.empty(this.config.numLayers, prepared.length, this.config.numKeyValueHeads, this.config.headDim);
    return this.prefill(prepared, cache);
  }

  /** Beam search for one request, whatever its numBeams (with 1 beam it takes the greedy path's tokens). */
  async beamSearch(request: GenerationRequest): Promise<GenerationResult> {
    const started = performance.now();
    const prepared = this.prepare(request);
    const encoded = await this.encodeMissingFeatures([request], [prepared]);
    return this.runBeamSearch(prepared, started, encoded);
  }

  private async runBeamSearch(
    request: PreparedRequest,
    started: number,
    encoded: { preprocessMs: number; visionEncodeMs: number },
  ): Promise<GenerationResult> {
    const prefillStart = performance.now();
    const cache = KvCache.empty(this.config.numLayers, 1, this.config.numKeyValueHeads, this.config.headDim);
    const promptLength = request.inputIds.length;
    const prefillLogits = await this.prefill([request], cache);
    const prefillMs = elapsed(prefillStart);
    const { numBeams, lengthPenalty, repetitionPenalty } = request.options;
    const eos = new Set(this.generationConfig.eosTokenIds);
    type Beam = { tokens: number[]; score: number };
    const finished: { tokens: number[]; score: number; finishedBy: FinishReason }[] = [];
    const normalise = (score: number, length: number): number => score / Math.max(1, length) ** lengthPenalty;
    let beams: Beam[] = [{ tokens: [], score: 0 }];
    let rowLogits = [prefillLogits[0]];
    let firstTokenAt = 0;
    const decodeStart = performance.now();
    for (let step = 0; step < request.maxNewTokens; step++) {
      const candidates: { beam: number; token: number; score: number }[] = [];
      beams.forEach((beam, index) => {
        const logits = rowLogits[index];
        applyRepetitionPenalty(logits, new Set([...request.inputIds, ...beam.tokens]), repetitionPenalty);
        const logProbs = logSoftmax(logits);
        for (const token of topKIndices(logProbs, 2 * numBeams)) {
          candidates.push({ beam: index, token, score: beam.score + logProbs[token] });
        }
      });
      candidates.sort((a, b) => b.score - a.score || a.beam - b.beam || a.token - b.token);
      const next: Beam[] = [];
      const sources: number[] = [];
      for (const [rank, candidate] of candidates.entries()) {
        const tokens = [...beams[candidate.beam].tokens, candidate.token];
        if (eos.has(candidate.token)) {
          // Like Hugging Face: an end-of-sequence candidate below the top numBeams is not a hypothesis.
          if (rank < numBeams) {
            finished.push({ tokens, score: normalise(candidate.score, tokens.length - 1), finishedBy: 'eos' });
          }
        } else {
          next.push({ tokens, score: candidate.score });
          sources.push(candidate.beam);
        }
        if (next.length === numBeams) break;
      }
      if (step === 0) firstTokenAt = performance.now();
      // Early stopping: once numBeams hypotheses are finished, running beams can only get longer and worse.
      if (finished.length >= numBeams || step === request.maxNewTokens - 1) {
        if (finished.length < numBeams) {
          for (const beam of next) finished.push({ ...beam, score: normalise(beam.score, beam.tokens.length), finishedBy: 'length' });
        }
        break;
      }
      beams = next;
      cache.selectRows(sources);
      rowLogits = await this.decodeStep(
        beams.map((beam) => beam.tokens[beam.tokens.length - 1]),
        cache,
        promptLength + step,
        beams.map(() => promptLength + step),
      );
    }
    finished.sort((a, b) => b.score - a.score);
    const best = finished[0];
    return this.toResult(request, best.tokens, best.finishedBy, {
      ...encoded,
      prefillMs,
      decodeMs: elapsed(decodeStart),
      timeToFirstTokenMs: firstTokenAt - started,
      totalMs: elapsed(started),
    });
  }

  private prepare(request: GenerationRequest): PreparedRequest {
    if (typeof request.prompt !== 'string') throw new InvalidGenerationRequestError('prompt must be a string');
    const options = resolveGenerationOptions(request.options, this.generationConfig, this.generationLimits);
    const withImage = request.image !== undefined || request.imageFeatures !== undefined;
    const inputIds = this.promptEncoder.encode(request.prompt, withImage, request.rawPrompt).inputIds;
    const imagePositions = inputIds.filter((id) => id === this.config.imageTokenIndex).length;
    const expected = withImage ? this.config.imageSeqLength : 0;
    if (imagePositions !== expected) {
      throw new InvalidGenerationRequestError(
        withImage
          ? `the prompt must hold exactly one image placeholder (found ${imagePositions / this.config.imageSeqLength})`
          : 'the prompt holds an image placeholder but no image was given',
      );
    }
    const room = this.config.maxPositionEmbeddings - inputIds.length;
    if (room < 1) {
      throw new InvalidGenerationRequestError(
        `the prompt is ${inputIds.length} tokens; the model's context is ${this.config.maxPositionEmbeddings}`,
      );
    }
    const features = request.imageFeatures;
    if (features && (features.encoderId !== this.encoderId || features.data.length !== this.config.imageSeqLength * this.config.hiddenSize)) {
      throw new InvalidGenerationRequestError(
        `image features come from encoder ${features.encoderId.slice(0, 12)} (${features.tokens}×${features.hiddenSize}); this model needs ${this.encoderId.slice(0, 12)} (${this.config.imageSeqLength}×${this.config.hiddenSize})`,
      );
    }
    return { inputIds, options, maxNewTokens: Math.min(options.maxNewTokens, room), features };
  }

  private async encodeMissingFeatures(
    requests: readonly GenerationRequest[],
    prepared: PreparedRequest[],
  ): Promise<{ preprocessMs: number; visionEncodeMs: number }> {
    const missing = requests.flatMap((request, index) =>
      request.image !== undefined && request.imageFeatures === undefined ? [index] : [],
    );
    if (missing.length === 0) return { preprocessMs: 0, visionEncodeMs: 0 };
    const preprocessStart = performance.now();
    const pixels = await Promise.all(missing.map((index) => this.preprocessImages([requests[index].image as ImageInput], requests[index].decodeOptions)));
    const batch = new Float32Array(pixels.reduce((size, p) => size + p.length, 0));
    let offset = 0;
    for (const p of pixels) {
      batch.set(p, offset);
      offset += p.length;
    }
    const preprocessMs = elapsed(preprocessStart);
    const visionStart = performance.now();
    const features = await this.encodePixels(batch, missing.length);
    missing.forEach((index, row) => (prepared[index].features = features[row]));
    return { preprocessMs, visionEncodeMs: elapsed(visionStart) };
  }

  /**
   * Prefills the prompts (left-padded to one length) and returns the last position's logits per row.
   * Image features replace the embeddings at the image-token positions.
   */
  private async prefill(rows: readonly PreparedRequest[], cache: KvCache): Promise<Float32Array[]> {
    const batch = rows.length;
    const length = Math.max(...rows.map((row) => row.inputIds.length));
    const { padTokenId } = this.generationConfig;
    const ids = new BigInt64Array(batch * length).fill(BigInt(padTokenId));
    const mask = new BigInt64Array(batch * length);
    const positions = new BigInt64Array(batch * length).fill(1n);
    rows.forEach((row, b) => {
      const pad = length - row.inputIds.length;
      row.inputIds.forEach((id, t) => {
        ids[b * length + pad + t] = BigInt(id);
        mask[b * length + pad + t] = 1n;
        positions[b * length + pad + t] = BigInt(t);
      });
    });
    const embedded = await this.embed.run({ input_ids: new ort.Tensor('int64', ids, [batch, length]) });
    const embeds = embedded.inputs_embeds.data as Float32Array;
    const hidden = this.config.hiddenSize;
    rows.forEach((row, b) => {
      if (!row.features) return;
      const pad = length - row.inputIds.length;
      const first = row.inputIds.indexOf(this.config.imageTokenIndex);
      embeds.set(row.features.data, (b * length + pad + first) * hidden);
    });
    const outputs = await this.runDecoder(embedded.inputs_embeds, mask, positions, [batch, length], cache);
    return this.lastLogits(outputs.logits, batch);
  }

  /** One decoding step: embeds the next token of every row and runs the decoder against the cache. */
  private async decodeStep(
    tokens: readonly number[],
    cache: KvCache,
    pastLength: number,
    positions: readonly number[],
    masks?: BigInt64Array,
  ): Promise<Float32Array[]> {
    const batch = tokens.length;
    let embeds: ort.Tensor;
    const cached = this.embeddingCache.lookup(tokens);
    if (cached) {
      embeds = new ort.Tensor('float32', cached, [batch, 1, this.config.hiddenSize]);
    } else {
      const ids = BigInt64Array.from(tokens, (token) => BigInt(token));
      embeds = (await this.embed.run({ input_ids: new ort.Tensor('int64', ids, [batch, 1]) })).inputs_embeds;
      this.embeddingCache.store(tokens, embeds.data as Float32Array);
    }
    const mask = masks ?? new BigInt64Array(batch * (pastLength + 1)).fill(1n);
    const positionIds = BigInt64Array.from(positions, (position) => BigInt(position));
    const outputs = await this.runDecoder(embeds, mask, positionIds, [batch, 1], cache);
    return this.lastLogits(outputs.logits, batch);
  }

  private async runDecoder(
    embeds: ort.Tensor,
    mask: BigInt64Array,
    positions: BigInt64Array,
    [batch, length]: [number, number],
    cache: KvCache,
  ): Promise<ort.InferenceSession.ReturnType> {
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: embeds,
      attention_mask: new ort.Tensor('int64', mask, [batch, mask.length / batch]),
      ...cache.feeds,
    };
    if (this.usesPositionIds) feeds.position_ids = new ort.Tensor('int64', positions, [batch, length]);
    if (this.usesCacheBranchFlag) feeds.use_cache_branch = new ort.Tensor('bool', Uint8Array.of(cache.length > 0 ? 1 : 0), [1]);
    const outputs = await this.decoder.run(feeds);
    cache.update(outputs);
    return outputs;
  }

  private lastLogits(logits: ort.Tensor, batch: number): Float32Array[] {
    const [, length, vocab] = logits.dims;
    const data = logits.data as Float32Array;
    return Array.from({ length: batch }, (_, b) => data.slice((b * length + length - 1) * vocab, (b * length + length) * vocab));
  }

  /** Greedy or sampled decoding of a padded batch; finished rows keep being fed padding until all are done. */
  private async decodeBatch(rows: readonly PreparedRequest[]): Promise<BatchOutcome> {
    const batch = rows.length;
    const prefillStart = performance.now();
    const cache = KvCache.empty(this.config.numLayers, batch, this.config.numKeyValueHeads, this.config.headDim);
    let logits = await this.prefill(rows, cache);
    const prefillMs = elapsed(prefillStart);
    const paddedLength = Math.max(...rows.map((row) => row.inputIds.length));
    const eos = new Set(this.generationConfig.eosTokenIds);
    const tokens: number[][] = rows.map(() => []);
    const finishReasons: (FinishReason | undefined)[] = rows.map(() => undefined);
    const seen = rows.map((row) => new Set(row.inputIds));
    const random = rows.map((row) => createRng(row.options.seed));
    const decodeMs = rows.map(() => 0);
    // The attention mask grows by one column per step; padding columns stay 0 for their rows.
    let mask = new BigInt64Array(batch * paddedLength);
    rows.forEach((row, b) => mask.fill(1n, b * paddedLength + paddedLength - row.inputIds.length, (b + 1) * paddedLength));
    const decodeStart = performance.now();
    let firstTokenAt = 0;
    for (let step = 0; ; step++) {
      const nextTokens = rows.map((row, b) => {
        if (finishReasons[b]) return this.generationConfig.padTokenId;
        const rowLogits = logits[b];
        const { options } = row;
        applyRepetitionPenalty(rowLogits, seen[b], options.repetitionPenalty);
        const token = options.doSample ? sampleToken(rowLogits, options, random[b]) : argmax(rowLogits);
        tokens[b].push(token);
        seen[b].add(token);
        finishReasons[b] = this.finishReason(token, tokens[b], row, eos);
        if (finishReasons[b]) decodeMs[b] = elapsed(decodeStart);
        return token;
      });
      if (step === 0) firstTokenAt = performance.now();
      if (finishReasons.every(Boolean)) break;
      const columns = paddedLength + step + 1;
      const grown = new BigInt64Array(batch * columns);
      for (let b = 0; b < batch; b++) {
        grown.set(mask.subarray(b * (columns - 1), (b + 1) * (columns - 1)), b * columns);
        grown[b * columns + columns - 1] = 1n;
      }
      mask = grown;
      const positions = rows.map((row) => row.inputIds.length + step);
      logits = await this.decodeStep(nextTokens, cache, columns - 1, positions, mask);
    }
    return { tokens, finishReasons: finishReasons as FinishReason[], prefillMs, decodeMs, firstTokenAt };
  }

  private finishReason(token: number, tokens: number[], row: PreparedRequest, eos: Set<number>): FinishReason | undefined {
    if (eos.has(token)) return 'eos';
    if (row.options.stopStrings.length > 0) {
      const text = this.promptEncoder.decode(tokens);
      if (row.options.stopStrings.some((stop) => text.includes(stop))) return 'stop_string';
    }
    if (tokens.length >= row.maxNewTokens) return 'length';
    return undefined;
  }

  private toResult(
    request: PreparedRequest,
    tokens: number[],
    finishReason: FinishReason,
    timings: GenerationTimings,
  ): GenerationResult {
    let text = this.promptEncoder.decode(tokens);
    if (finishReason === 'stop_string') {
      const cut = Math.min(...request.options.stopStrings.map((stop) => text.indexOf(stop)).filter((index) => index >= 0));
      text = text.slice(0, cut);
    }
    return {
      text: text.trim(),
      tokenIds: tokens,
      promptTokens: request.inputIds.length,
      generatedTokens: tokens.length,
      finishReason,
      timings,
    };
  }

  private async warmUp(): Promise<void> {
    const { outputHeight: height, outputWidth: width } = this.preprocessor;
    const features = await this.encodePixels(new Float32Array(3 * height * width), 1);
    const prepared: PreparedRequest = {
      inputIds: this.promptEncoder.encode('', true).inputIds,
      options: resolveGenerationOptions({ maxNewTokens: 1 }, this.generationConfig, this.generationLimits),
      maxNewTokens: 1,
      features: features[0],
    };
    await this.decodeBatch([prepared]);
  }
}
