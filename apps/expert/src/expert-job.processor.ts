import { performance } from 'node:perf_hooks';
import {
  ContractValidationError,
  parseExpertJobData,
  type ExpertJobData,
  type ExpertJobResult,
  type ExpertOutputJson,
} from '@rsmoe/contracts';
import {
  RuntimeInputError,
  decodeImage,
  type FeaturePacking,
  type GenerationRequest,
  type GenerationResult,
  type ImageFeatures,
  type ImageInput,
  type ImageLimits,
} from '@rsmoe/runtime';
import type { CachedFeatures, ComputedFeatures, FeatureKey } from './feature-cache.adapter';
import { MicroBatcher, type MicroBatcherOptions } from './micro-batcher';

/** A job that can never succeed (bad payload, undecodable image, expired blob): do not retry it. */
export class PermanentJobError extends Error {
  override readonly name = 'PermanentJobError';
}

/** The model side of an expert, as the processor uses it (VlmRuntime in production). */
export interface ExpertModel {
  /** Identity of the vision encoder (content hash): features are shared between models with the same one. */
  readonly encoderId: string;
  /** How a prompt with `imageCount` images packs each image's features (part of the cache key). */
  featurePacking(imageCount: number): FeaturePacking;
  /** Features of decoded images, for a prompt holding `imagesInPrompt` images. */
  encodeImages(images: readonly ImageInput[], options: { imagesInPrompt: number }): Promise<ImageFeatures[]>;
  generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]>;
}

export interface ImageSource {
  get(sha256: string): Promise<{ bytes: Uint8Array; mediaType: string } | undefined>;
}

export interface FeatureSource {
  getOrCompute(key: FeatureKey, compute: () => Promise<ComputedFeatures>): Promise<CachedFeatures>;
}

export interface ExpertJobProcessorDeps {
  expertId: string;
  /** Name reported in results (the model's directory name in the pack). */
  modelName: string;
  model: ExpertModel;
  images: ImageSource;
  features: FeatureSource;
  batching: MicroBatcherOptions;
  /** Byte and pixel limits when decoding an image (default: the runtime's, 32 MiB and 64 megapixels). */
  imageLimits?: ImageLimits;
  /** Sends an expert's output to the dispatching router's inbox (`replyTo`) as soon as it is ready. */
  publishPartial: (replyTo: string, requestId: string, output: ExpertOutputJson) => Promise<void>;
  now?: () => number;
}

const ZERO_TIMINGS = { preprocessMs: 0, visionEncodeMs: 0, prefillMs: 0, decodeMs: 0, timeToFirstTokenMs: 0 };

/**
 * Turns one expert job into one expert output: validates the payload, drops it when past its deadline,
 * gets each image's features (shared cache, else blob store + vision encoder), and generates in a
 * micro-batch with the jobs that arrived together.
 */
export class ExpertJobProcessor {
  private readonly batcher: MicroBatcher<GenerationRequest, GenerationResult>;
  private readonly now: () => number;

  constructor(private readonly deps: ExpertJobProcessorDeps) {
    this.batcher = new MicroBatcher((requests) => deps.model.generate(requests), deps.batching);
    this.now = deps.now ?? Date.now;
  }

  async process(payload: unknown): Promise<ExpertJobResult> {
    const pickedUpAt = this.now();
    const started = performance.now();
    const job = this.parse(payload);
    const base = {
      expertId: job.expertId,
      prompt: job.prompt,
      model: this.deps.modelName,
      promptTokens: 0,
      generatedTokens: 0,
    };
    const queueMs = Math.max(0, pickedUpAt - job.enqueuedAtUnixMs);
    if (pickedUpAt >= job.deadlineUnixMs) {
      return {
        ...base,
        text: '',
        status: 'timed_out',
        error: `dropped without computing: picked up ${pickedUpAt - job.deadlineUnixMs} ms after the request deadline`,
        timings: { ...ZERO_TIMINGS, queueMs, computeMs: 0 },
        featuresCached: false,
      };
    }
    const features = await this.features(job);
    const result = await this.generate(job, features.map((entry) => entry.features));
    const finished = performance.now();
    const output: ExpertOutputJson = {
      ...base,
      text: result.text,
      status: 'ok',
      promptTokens: result.promptTokens,
      generatedTokens: result.generatedTokens,
      finishReason: result.finishReason,
      timings: {
        queueMs,
        // Summed over the job's images; 0 for images whose features came from the cache.
        preprocessMs: sum(features.map((entry) => entry.preprocessMs)),
        visionEncodeMs: sum(features.map((entry) => entry.visionEncodeMs)),
        prefillMs: result.timings.prefillMs,
        decodeMs: result.timings.decodeMs,
        // From pick-up: features, batching wait and prefill, i.e. everything before the generation's tail.
        timeToFirstTokenMs: finished - started - (result.timings.totalMs - result.timings.timeToFirstTokenMs),
        computeMs: finished - started,
      },
      featuresCached: features.every((entry) => entry.cached),
    };
    await this.deps.publishPartial(job.replyTo, job.requestId, output);
    return output;
  }

  private parse(payload: unknown): ExpertJobData {
    let job: ExpertJobData;
    try {
      job = parseExpertJobData(payload);
    } catch (error) {
      if (error instanceof ContractValidationError) throw new PermanentJobError(error.message);
      throw error;
    }
    if (job.expertId !== this.deps.expertId) {
      throw new PermanentJobError(`job for expert "${job.expertId}" reached expert "${this.deps.expertId}"`);
    }
    return job;
  }

  /** Each image's features, in prompt order, packed as a prompt with this many images needs them. */
  private features(job: ExpertJobData): Promise<CachedFeatures[]> {
    const { model } = this.deps;
    const imagesInPrompt = job.images.length;
    const packing = model.featurePacking(imagesInPrompt);
    return Promise.all(
      job.images.map((image) =>
        this.deps.features.getOrCompute({ imageSha256: image.sha256, encoderId: model.encoderId, packing }, async () => {
          const preprocessStart = performance.now();
          const blob = await this.deps.images.get(image.sha256);
          if (!blob) throw new PermanentJobError(`image ${image.sha256} is not in the blob store (expired or never stored)`);
          try {
            const decoded = await decodeImage(blob.bytes, { limits: this.deps.imageLimits });
            const preprocessMs = performance.now() - preprocessStart;
            const encodeStart = performance.now();
            const [features] = await model.encodeImages([decoded], { imagesInPrompt });
            return { features, preprocessMs, visionEncodeMs: performance.now() - encodeStart };
          } catch (error) {
            if (error instanceof RuntimeInputError) throw new PermanentJobError(`${error.code}: ${error.message}`);
            throw error;
          }
        }),
      ),
    );
  }

  private async generate(job: ExpertJobData, imageFeatures: ImageFeatures[]): Promise<GenerationResult> {
    try {
      return await this.batcher.submit({ prompt: job.prompt, imageFeatures, options: job.generation });
    } catch (error) {
      if (error instanceof RuntimeInputError) throw new PermanentJobError(`${error.code}: ${error.message}`);
      throw error;
    }
  }
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
