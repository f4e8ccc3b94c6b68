import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { InvalidGenerationRequestError, ModelFileError, ModelSignatureError } from './errors';
import { beamSearch } from './generation/beam-search';
import { greedyOrSampleSearch, type SearchRow } from './generation/greedy-search';
import { StoppingCriteria, type FinishReason } from './generation/stopping-criteria';
import {
  DEFAULT_GENERATION_LIMITS,
  resolveGenerationOptions,
  type GenerationLimits,
  type GenerationOptions,
} from './generation-options';
import {
  DEFAULT_IMAGE_LIMITS,
  ImagePreprocessor,
  decodeImage,
  parsePreprocessorConfig,
  type DecodeOptions,
  type DecodedImage,
  type ImageLimits,
} from './image';
import { EMBED_SIGNATURE, LanguageModel, decoderSignature } from './language-model';
import {
  MODEL_FILES,
  graphFile,
  parseGenerationConfig,
  parseModelConfig,
  parseProcessorConfig,
  readChatTemplate,
  readJsonFile,
  readOptionalJsonFile,
  type DtypeChoice,
  type GenerationConfig,
  type GraphName,
  type ModelConfig,
  type ProcessorConfig,
} from './model-files';
import {
  OnnxSession,
  hashGraphFiles,
  resolveExecutionProvider,
  type ExecutionProviderChoice,
  type ResolvedExecutionProvider,
  type SessionSignature,
} from './onnx-session.adapter';
import { PromptEncoder, buildTokenizer } from './prompt-encoder';
import { InstructBlipVision } from './vision/instructblip-vision';
import { LlavaVision } from './vision/llava-vision';
import type { FeaturePacking, ImageFeatures, VisionPipeline } from './vision/vision-pipeline';

export type { FinishReason } from './generation/stopping-criteria';
export type { FeaturePacking, ImageFeatures } from './vision/vision-pipeline';

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
  /**
   * Precision variant of the graphs, as transformers.js names them (`fp32`, `fp16`, `q4`, `q4f16`,
   * `quantized`/`q8`, `int8`, `uint8`, `bnb4`), for all graphs or per graph. Default `fp32`.
   */
  dtype?: DtypeChoice;
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

export type ImageInput = Uint8Array | DecodedImage;

export interface GenerationRequest {
  /** The user's instruction or question; the model's chat template is applied unless `rawPrompt`. */
  prompt: string;
  /** The images, in prompt order, as encoded bytes (PNG, JPEG, WebP, TIFF/GeoTIFF) or already decoded. */
  images?: readonly ImageInput[];
  /** Precomputed features, one per image (see `encodeImages`), used instead of `images`. */
  imageFeatures?: readonly ImageFeatures[];
  /** The prompt is already templated and holds one image placeholder per image. */
  rawPrompt?: boolean;
  /** How to read the image bytes (GeoTIFF band selection, stretch percentiles). */
  decodeOptions?: Omit<DecodeOptions, 'limits'>;
  options?: GenerationOptions;
  /**
   * The caller gives up when this fires: the request's sequences stop at the next step with finishReason
   * `deadline` (a `TimeoutError` reason) or `cancelled`, and a request aborted before its search starts is
   * not decoded at all (0 tokens). The other requests of a batch keep generating.
   */
  signal?: AbortSignal;
  /** The request's deadline, Unix ms: generation stops at the first step at or past it (finishReason `deadline`). */
  deadlineUnixMs?: number;
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

export interface GenerationResult {
  text: string;
  /** Generated ids, including the end-of-sequence token when the model emitted one. */
  tokenIds: number[];
  promptTokens: number;
  generatedTokens: number;
  finishReason: FinishReason;
  timings: GenerationTimings;
}

/** A request after prompt encoding, image encoding and option checks: what the searches work on. */
type PreparedRequest = SearchRow;

/** The graph files a runtime loaded (dtype suffix applied), absolute. */
export interface RuntimeFiles {
  visionEncoder: string;
  qformer?: string;
  embedTokens: string;
  decoder: string;
}

const VISION_OUTPUT = { llava: 'image_features', instructblip: 'image_embeds' } as const;

function visionSignature(output: string): SessionSignature {
  return { inputs: [{ name: 'pixel_values', types: ['float32'], rank: 4 }], outputs: [{ name: output, types: ['float32'], rank: 3 }] };
}

const QFORMER_SIGNATURE: SessionSignature = {
  inputs: [
    { name: 'image_embeds', types: ['float32'], rank: 3 },
    { name: 'qformer_input_ids', types: ['int64'], rank: 2 },
    { name: 'qformer_attention_mask', types: ['int64'], rank: 2 },
  ],
  outputs: [{ name: 'image_features', types: ['float32'], rank: 3 }],
};

function elapsed(since: number): number {
  return performance.now() - since;
}

/**
 * A vision-language model on onnxruntime-node, the one owner of its ONNX sessions: LLaVA (fixed image
 * tokens), LLaVA-OneVision (anyres and multi-image packing as transformers computes them) and InstructBLIP
 * (shared vision encoder, per-model Q-Former). Turns (images, prompt) into text with greedy, sampled or
 * beam-search decoding, batched across requests.
 */
export class VlmRuntime {
  private readonly imageLimits: ImageLimits;
  private readonly generationLimits: GenerationLimits;

  private constructor(
    readonly modelDir: string,
    readonly config: ModelConfig,
    readonly generationConfig: GenerationConfig,
    readonly executionProvider: ResolvedExecutionProvider,
    private readonly promptEncoder: PromptEncoder,
    private readonly vision: VisionPipeline,
    private readonly language: LanguageModel,
    options: VlmRuntimeOptions,
  ) {
    this.imageLimits = { ...DEFAULT_IMAGE_LIMITS, ...options.imageLimits };
    this.generationLimits = { ...DEFAULT_GENERATION_LIMITS, ...options.generationLimits };
  }

  /**
   * Identity of the vision encoder (sha256 over its graph, external data and preprocessing settings):
   * features with this id can be shared between models.
   */
  get encoderId(): string {
    return this.vision.encoderId;
  }

  get files(): RuntimeFiles {
    const vision = this.vision.files;
    return {
      visionEncoder: vision.visionEncoder,
      ...(vision.qformer ? { qformer: vision.qformer } : {}),
      embedTokens: this.language.embed.file,
      decoder: this.language.decoder.file,
    };
  }

  /** Loads one model directory in the ONNX layout, checks it, and warms it up. */
  static async load(modelDir: string, options: VlmRuntimeOptions = {}): Promise<VlmRuntime> {
    const logger = options.logger ?? stderrLogger;
    const file = (name: string): string => join(modelDir, name);
    const [configJson, generationJson, preprocessorJson, processorJson, tokenizerJson, tokenizerConfigJson] = await Promise.all([
      readJsonFile(modelDir, MODEL_FILES.config),
      readJsonFile(modelDir, MODEL_FILES.generationConfig),
      readOptionalJsonFile(modelDir, MODEL_FILES.preprocessorConfig),
      readOptionalJsonFile(modelDir, MODEL_FILES.processorConfig),
      readJsonFile(modelDir, MODEL_FILES.tokenizer),
      readJsonFile(modelDir, MODEL_FILES.tokenizerConfig),
    ]);
    const config = parseModelConfig(configJson, file(MODEL_FILES.config));
    const processor = parseProcessorConfig(processorJson, file(MODEL_FILES.processorConfig));
    const fallbackPad = typeof configJson.pad_token_id === 'number' ? configJson.pad_token_id : 0;
    const generationConfig = parseGenerationConfig(generationJson, file(MODEL_FILES.generationConfig), fallbackPad);
    const imageProcessorJson = preprocessorJson ?? processor.imageProcessor;
    if (!imageProcessorJson) {
      throw new ModelFileError(
        file(MODEL_FILES.preprocessorConfig),
        `missing: the image settings must be in ${MODEL_FILES.preprocessorConfig} or in ${MODEL_FILES.processorConfig} "image_processor"`,
      );
    }
    const imageSettingsFile = file(preprocessorJson ? MODEL_FILES.preprocessorConfig : MODEL_FILES.processorConfig);
    const preprocessor = new ImagePreprocessor(parsePreprocessorConfig(imageProcessorJson, imageSettingsFile));
    const chatTemplate = await readChatTemplate(modelDir, tokenizerConfigJson);
    const layout = config.family === 'instructblip' ? 'query-prefix' : 'chat';
    if (layout === 'chat' && !chatTemplate) {
      throw new ModelFileError(
        modelDir,
        `no chat template: looked in ${MODEL_FILES.chatTemplateJinja}, ${MODEL_FILES.chatTemplateJson} and ${MODEL_FILES.tokenizerConfig} "chat_template"`,
      );
    }
    const promptEncoder = new PromptEncoder({
      tokenizerJson,
      tokenizerConfig: tokenizerConfigJson,
      tokenizerFile: file(MODEL_FILES.tokenizer),
      chatTemplate,
      imageTokenIndex: config.imageTokenIndex,
      layout,
    });

    const dtype = options.dtype ?? 'fp32';
    const graphPath = (graph: GraphName): string => file(graphFile(graph, dtype));
    // Every graph file of this dtype, checked in one fixed order before any session loads: the error names
    // the same missing file every time (sessions load in parallel, and the first to fail would vary).
    const graphs: GraphName[] = ['vision_encoder', ...(config.family === 'instructblip' ? (['qformer'] as const) : []), 'embed_tokens', 'decoder_model_merged'];
    for (const graph of graphs) {
      await access(graphPath(graph)).catch((error: unknown) => {
        throw new ModelFileError(graphPath(graph), 'cannot be read (missing file?)', { cause: error });
      });
    }
    const sessionBase = { intraOpThreads: options.intraOpThreads ?? 0, deviceId: options.deviceId };
    const visionFile = graphPath('vision_encoder');
    const { provider, fallbackReason } = await resolveExecutionProvider(options.executionProvider ?? 'auto', visionFile, sessionBase);
    if (fallbackReason) logger.warn('execution provider fallback to cpu', { modelDir, reason: fallbackReason });
    const sessionOptions = { ...sessionBase, executionProvider: provider };
    const open = (graph: GraphName, signature: SessionSignature) => OnnxSession.open(graphPath(graph), signature, sessionOptions);
    const visionOutput = config.family === 'instructblip' ? VISION_OUTPUT.instructblip : VISION_OUTPUT.llava;
    const [visionSession, embed, decoder, qformer, encoderId] = await Promise.all([
      open('vision_encoder', visionSignature(visionOutput)),
      open('embed_tokens', EMBED_SIGNATURE),
      open('decoder_model_merged', decoderSignature(config.numLayers)),
      config.family === 'instructblip' ? open('qformer', QFORMER_SIGNATURE) : undefined,
      encoderIdentity(visionFile, config, imageProcessorJson),
    ]);

    let vision: VisionPipeline;
    if (config.family === 'instructblip') {
      const queryTokens = config.imageSeqLength ?? processor.numQueryTokens ?? staticDim(qformer as OnnxSession, 1);
      if (queryTokens === undefined) {
        throw new ModelFileError(file(MODEL_FILES.config), 'field "num_query_tokens" is missing and qformer.onnx does not fix it');
      }
      const [qformerTokenizerJson, qformerTokenizerConfig] = await Promise.all([
        readJsonFile(modelDir, MODEL_FILES.qformerTokenizer),
        readJsonFile(modelDir, MODEL_FILES.qformerTokenizerConfig),
      ]);
      vision = new InstructBlipVision({
        encoderId,
        vision: visionSession,
        qformer: qformer as OnnxSession,
        qformerTokenizer: buildTokenizer(qformerTokenizerJson, qformerTokenizerConfig, file(MODEL_FILES.qformerTokenizer)),
        qformerPadId: padTokenId(qformerTokenizerJson, qformerTokenizerConfig, file(MODEL_FILES.qformerTokenizerConfig)),
        preprocessor,
        queryTokens,
        hiddenSize: config.hiddenSize,
      });
    } else {
      vision = new LlavaVision({
        encoderId,
        session: visionSession,
        preprocessor,
        hiddenSize: config.hiddenSize,
        tokensPerCrop: tokensPerCrop(config, processor, visionSession, modelDir),
        anyres: config.onevision ? { pinpoints: config.onevision.gridPinpoints, maxCrops: config.onevision.maxCrops } : null,
      });
    }
    const language = new LanguageModel(embed, decoder, config, generationConfig, options.embeddingCacheTokens ?? 8192);
    const runtime = new VlmRuntime(modelDir, config, generationConfig, provider, promptEncoder, vision, language, options);
    if (options.warmUp ?? true) await runtime.warmUp();
    logger.info('model loaded', {
      modelDir,
      family: config.family,
      dtype,
      executionProvider: provider,
      intraOpThreads: sessionBase.intraOpThreads,
      layers: config.numLayers,
      vocabSize: config.vocabSize,
      lastLogitsOnly: language.keepsLastLogitsOnly,
    });
    return runtime;
  }

  async release(): Promise<void> {
    await Promise.all([this.vision.release(), this.language.embed.release(), this.language.decoder.release()]);
  }

  /** Renders and tokenises a prompt exactly as `generate` would, each image placeholder expanded to its features' positions. */
  encodePrompt(prompt: string, images: readonly ImageFeatures[] = [], rawPrompt = false): number[] {
    return this.promptEncoder.encode(prompt, images.map((features) => this.vision.promptTokens(features)), rawPrompt).inputIds;
  }

  decodeTokens(ids: readonly number[]): string {
    return this.promptEncoder.decode(ids);
  }

  /** Which packing a prompt with `imageCount` images uses (a feature cache keys on it). */
  featurePacking(imageCount: number): FeaturePacking {
    return this.vision.packingFor(imageCount);
  }

  /**
   * Computes image features once, so several models sharing this encoder can reuse them. `imagesInPrompt`
   * is how many images the prompt they are for holds (LLaVA-OneVision packs a lone image differently).
   */
  async encodeImages(
    images: readonly ImageInput[],
    options: { imagesInPrompt?: number; decodeOptions?: Omit<DecodeOptions, 'limits'> } = {},
  ): Promise<ImageFeatures[]> {
    if (images.length === 0) return [];
    const decoded = await Promise.all(images.map((image) => this.decode(image, options.decodeOptions)));
    return this.vision.encode(decoded, this.vision.packingFor(options.imagesInPrompt ?? images.length));
  }

  /** The pixel values the vision encoder gets for each image (all its crops), for checks against a framework. */
  async preprocessImages(images: readonly ImageInput[], imagesInPrompt = images.length): Promise<Float32Array[]> {
    const packing = this.vision.packingFor(imagesInPrompt);
    return Promise.all(images.map(async (image) => this.vision.pixelValues(await this.decode(image), packing)));
  }

  private async decode(image: ImageInput, decodeOptions?: Omit<DecodeOptions, 'limits'>): Promise<DecodedImage> {
    return image instanceof Uint8Array ? decodeImage(image, { ...decodeOptions, limits: this.imageLimits }) : image;
  }

  /**
   * Generates for several requests. Greedy and sampled requests run as one padded batch and get exactly the
   * tokens each would get alone; beam-search requests run one at a time with their beams as the batch.
   */
  async generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]> {
    const started = performance.now();
    const { prepared, preprocessMs, visionEncodeMs } = await this.prepareAll(requests);
    const results: GenerationResult[] = new Array(requests.length);
    // A request already past its deadline or cancelled is answered without a decoder run.
    const skipped = new Set<number>();
    prepared.forEach((request, index) => {
      const interrupted = request.stopping.interrupted();
      if (!interrupted) return;
      skipped.add(index);
      const idle = { preprocessMs, visionEncodeMs, prefillMs: 0, decodeMs: 0, timeToFirstTokenMs: 0, totalMs: elapsed(started) };
      results[index] = this.toResult(request, [], interrupted, idle);
    });
    const batchRows = prepared.flatMap((request, index) => (request.options.numBeams > 1 || skipped.has(index) ? [] : [index]));
    if (batchRows.length > 0) {
      const outcome = await greedyOrSampleSearch(
        this.language,
        batchRows.map((index) => prepared[index]),
      );
      batchRows.forEach((index, row) => {
        results[index] = this.toResult(prepared[index], outcome.tokens[row], outcome.finishReasons[row], {
          preprocessMs,
          visionEncodeMs,
          prefillMs: outcome.prefillMs,
          decodeMs: outcome.decodeMs[row],
          timeToFirstTokenMs: Math.max(0, outcome.firstTokenAt - started),
          totalMs: elapsed(started),
        });
      });
    }
    for (let index = 0; index < prepared.length; index++) {
      if (prepared[index].options.numBeams <= 1 || skipped.has(index)) continue;
      const outcome = await beamSearch(this.language, prepared[index]);
      results[index] = this.toResult(prepared[index], outcome.tokens, outcome.finishReason, {
        preprocessMs,
        visionEncodeMs,
        prefillMs: outcome.prefillMs,
        decodeMs: outcome.decodeMs,
        timeToFirstTokenMs: Math.max(0, outcome.firstTokenAt - started),
        totalMs: elapsed(started),
      });
    }
    return results;
  }

  /** Beam search for one request, whatever its numBeams (with 1 beam it takes the greedy path's tokens). */
  async beamSearch(request: GenerationRequest): Promise<GenerationResult> {
    const started = performance.now();
    const { prepared, preprocessMs, visionEncodeMs } = await this.prepareAll([request]);
    const outcome = await beamSearch(this.language, prepared[0]);
    return this.toResult(prepared[0], outcome.tokens, outcome.finishReason, {
      preprocessMs,
      visionEncodeMs,
      prefillMs: outcome.prefillMs,
      decodeMs: outcome.decodeMs,
      timeToFirstTokenMs: Math.max(0, outcome.firstTokenAt - started),
      totalMs: elapsed(started),
    });
  }

  /**
   * Logits of the first generated token for each request, after the prompt (and images) are prefilled:
   * for scoring fixed answers and for checking an export against its framework.
   */
  /**
   * How likely each candidate is as the whole answer to `request`: the log-probability of its tokens after
   * the prompt, then of the end of sequence (so a label that is only the start of a longer answer loses).
   * One batched prefill of prompt + candidate rows; nothing is generated. Used to score a classification
   * against the pack's labels. `endOfAnswer: false` leaves the end of sequence out (a prefix's likelihood).
   */
  async scoreCandidates(request: GenerationRequest, candidates: readonly string[], options: { endOfAnswer?: boolean } = {}): Promise<number[]> {
    if (candidates.length === 0) return [];
    const endOfAnswer = options.endOfAnswer ?? true;
    const eos = this.generationConfig.eosTokenIds[0];
    if (endOfAnswer && eos === undefined) throw new InvalidGenerationRequestError('the model declares no end-of-sequence token: candidates cannot be scored as whole answers');
    const { prepared } = await this.prepareAll([request]);
    const [prompt] = prepared;
    // Each tail: the candidate's tokens, then end of sequence; the row feeds all but its last token.
    const tails = candidates.map((candidate) => [...this.promptEncoder.encodeAnswer(candidate), ...(endOfAnswer ? [eos!] : [])]);
    if (tails.some((tail) => tail.length === 0)) throw new InvalidGenerationRequestError('an empty candidate cannot be scored');
    const window = Math.max(...tails.map((tail) => tail.length));
    const rows = tails.map((tail) => ({ inputIds: [...prompt.inputIds, ...tail.slice(0, -1)], padAt: prompt.padAt, imageEmbeddings: prompt.imageEmbeddings }));
    const room = this.config.maxPositionEmbeddings - Math.max(...rows.map((row) => row.inputIds.length));
    if (room < 0) throw new InvalidGenerationRequestError(`the prompt and the longest candidate exceed the model's context of ${this.config.maxPositionEmbeddings}`);
    const logits = await this.language.prefill(rows, this.language.newCache(rows.length), window);
    const vocab = logits[0].length / window;
    return tails.map((tail, row) => {
      let total = 0;
      tail.forEach((token, j) => {
        // Tail token j is predicted at the row's position (length - tail + j): window index window - tail + j.
        const at = (window - tail.length + j) * vocab;
        total += logSoftmaxAt(logits[row].subarray(at, at + vocab), token);
      });
      return total;
    });
  }

  async nextTokenLogits(requests: readonly GenerationRequest[]): Promise<Float32Array[]> {
    const { prepared } = await this.prepareAll(requests);
    return this.language.prefill(prepared, this.language.newCache(prepared.length));
  }

  private async prepareAll(
    requests: readonly GenerationRequest[],
  ): Promise<{ prepared: PreparedRequest[]; preprocessMs: number; visionEncodeMs: number }> {
    const options = requests.map((request) => {
      if (typeof request.prompt !== 'string') throw new InvalidGenerationRequestError('prompt must be a string');
      for (const key of ['images', 'imageFeatures'] as const) {
        if (request[key] !== undefined && !Array.isArray(request[key])) throw new InvalidGenerationRequestError(`${key} must be a list`);
      }
      if (request.images?.length && request.imageFeatures?.length) {
        throw new InvalidGenerationRequestError('give images or imageFeatures, not both');
      }
      return resolveGenerationOptions(request.options, this.generationConfig, this.generationLimits);
    });
    const preprocessStart = performance.now();
    const decoded = await Promise.all(
      requests.map((request) => Promise.all((request.imageFeatures?.length ? [] : (request.images ?? [])).map((image) => this.decode(image, request.decodeOptions)))),
    );
    const preprocessMs = elapsed(preprocessStart);
    const visionStart = performance.now();
    const features = await this.encodeMissing(requests, decoded);
    const embeddings = await this.vision.promptEmbeddings(requests.map((request, index) => ({ features: features[index], instruction: request.prompt })));
    // Passing given features through is not vision work; encoding images or running a Q-Former is.
    const visionWork = decoded.some((images) => images.length > 0) || this.vision.computesPromptEmbeddings;
    const visionEncodeMs = visionWork ? elapsed(visionStart) : 0;
    const prepared = requests.map((request, index): PreparedRequest => {
      const encoded = this.promptEncoder.encode(request.prompt, features[index].map((f) => this.vision.promptTokens(f)), request.rawPrompt);
      const room = this.config.maxPositionEmbeddings - encoded.inputIds.length;
      if (room < 1) {
        throw new InvalidGenerationRequestError(
          `the prompt is ${encoded.inputIds.length} tokens; the model's context is ${this.config.maxPositionEmbeddings}`,
        );
      }
      const maxNewTokens = Math.min(options[index].maxNewTokens, room);
      return {
        inputIds: encoded.inputIds,
        padAt: encoded.padAt,
        imageEmbeddings: embeddings[index],
        options: options[index],
        stopping: new StoppingCriteria(
          new Set(this.generationConfig.eosTokenIds),
          options[index].stopStrings,
          maxNewTokens,
          (ids) => this.promptEncoder.decode(ids),
          { signal: request.signal, deadlineUnixMs: request.deadlineUnixMs },
        ),
      };
    });
    return { prepared, preprocessMs, visionEncodeMs };
  }

  /** Each request's features: given ones checked, missing ones encoded in one run per packing. */
  private async encodeMissing(requests: readonly GenerationRequest[], decoded: DecodedImage[][]): Promise<ImageFeatures[][]> {
    const result: ImageFeatures[][] = requests.map((request) => [...(request.imageFeatures ?? [])]);
    const byPacking = new Map<FeaturePacking, { request: number; image: DecodedImage }[]>();
    requests.forEach((request, index) => {
      const count = request.imageFeatures?.length || decoded[index].length;
      const packing = this.vision.packingFor(count);
      for (const features of result[index]) {
        const problem = this.vision.mismatch(features, packing);
        if (problem) throw new InvalidGenerationRequestError(problem);
      }
      for (const image of decoded[index]) {
        const group = byPacking.get(packing) ?? [];
        group.push({ request: index, image });
        byPacking.set(packing, group);
      }
    });
    for (const [packing, group] of byPacking) {
      const encoded = await this.vision.encode(group.map((entry) => entry.image), packing);
      group.forEach((entry, k) => result[entry.request].push(encoded[k]));
    }
    return result;
  }

  private toResult(request: PreparedRequest, tokens: number[], finishReason: FinishReason, timings: GenerationTimings): GenerationResult {
    return {
      text: request.stopping.finalText(tokens, finishReason).trim(),
      tokenIds: tokens,
      promptTokens: request.inputIds.length,
      generatedTokens: tokens.length,
      finishReason,
      timings,
    };
  }

  private async warmUp(): Promise<void> {
    const size = 32;
    const blank: DecodedImage = {
      width: size,
      height: size,
      data: new Uint8Array(size * size * 3),
      format: 'png',
      sourceBands: 3,
      sourceBitsPerSample: 8,
      sourceSampleFormat: 'uint',
    };
    const [features] = await this.vision.encode([blank], this.vision.packingFor(1));
    await this.generate([{ prompt: '', imageFeatures: [features], options: { maxNewTokens: 1 } }]);
  }
}

/** Two encoders with the same graph but other weights or other preprocessing give other features. */
function encoderIdentity(visionFile: string, config: ModelConfig, imageSettings: Record<string, unknown>): Promise<string> {
  return hashGraphFiles(visionFile, JSON.stringify({ family: config.family, image: imageSettings, anyres: config.onevision ?? null }));
}

/**
 * The `encoderId` a runtime loading `modelDir` at `dtype` would report, without opening any session
 * (a pack check: experts that claim to share an encoder must have the same one).
 */
export async function readEncoderId(modelDir: string, dtype: DtypeChoice = 'fp32'): Promise<string> {
  const file = (name: string): string => join(modelDir, name);
  const [configJson, preprocessorJson, processorJson] = await Promise.all([
    readJsonFile(modelDir, MODEL_FILES.config),
    readOptionalJsonFile(modelDir, MODEL_FILES.preprocessorConfig),
    readOptionalJsonFile(modelDir, MODEL_FILES.processorConfig),
  ]);
  const config = parseModelConfig(configJson, file(MODEL_FILES.config));
  const imageSettings = preprocessorJson ?? parseProcessorConfig(processorJson, file(MODEL_FILES.processorConfig)).imageProcessor ?? {};
  return encoderIdentity(file(graphFile('vision_encoder', dtype)), config, imageSettings);
}

function staticDim(session: OnnxSession, axis: number): number | undefined {
  const dim = session.outputShape(0)?.[axis];
  return typeof dim === 'number' && dim > 0 ? dim : undefined;
}

/** Feature vectors per crop: config.json image_seq_length, processor_config.json num_image_tokens, the vision tower's grid, or the graph. */
function tokensPerCrop(config: ModelConfig, processor: ProcessorConfig, vision: OnnxSession, modelDir: string): number {
  const fromGraph = staticDim(vision, 1);
  const fromTower =
    config.visionImageSize && config.visionPatchSize ? Math.floor(config.visionImageSize / config.visionPatchSize) ** 2 : undefined;
  const count =
    config.imageSeqLength ??
    processor.numImageTokens ??
    fromTower ??
    (fromGraph === undefined ? undefined : config.family === 'llava_onevision' ? fromGraph - 1 : fromGraph);
  if (count === undefined || count < 1) {
    throw new ModelSignatureError(
      join(modelDir, MODEL_FILES.visionEncoder),
      `cannot tell how many features an image gives: set ${MODEL_FILES.processorConfig} "num_image_tokens" (or config.json vision_config image_size and patch_size); the vision graph's output has no fixed size`,
    );
  }
  return count;
}

/** The id of the tokenizer's pad token (tokenizer_config.json pad_token, looked up in tokenizer.json). */
/** log softmax(logits)[index], computed stably. */
function logSoftmaxAt(logits: Float32Array, index: number): number {
  let max = -Infinity;
  for (const value of logits) if (value > max) max = value;
  let sum = 0;
  for (const value of logits) sum += Math.exp(value - max);
  return logits[index] - max - Math.log(sum);
}

function padTokenId(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>, file: string): number {
  const pad = tokenizerConfig.pad_token;
  const content = typeof pad === 'string' ? pad : (pad as { content?: string } | undefined)?.content;
  const added = (tokenizerJson.added_tokens as { id: number; content: string }[] | undefined) ?? [];
  const found = added.find((token) => token.content === content);
  if (content === undefined) return 0;
  if (!found) throw new ModelFileError(file, `pad_token ${JSON.stringify(content)} is not an added token of tokenizer.json`);
  return found.id;
}
