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
  type GenerationRequest,
  type GenerationResult,
  type ImageFeatures,
  type ImageInput,
} from '@rsmoe/runtime';
import type { CachedFeatures } from './feature-cache.adapter';
import { MicroBatcher, type MicroBatcherOptions } from './micro-batcher';

/** A job that can never succeed (bad payload, undecodable image, expired blob): do not retry it. */
export class PermanentJobError extends Error {
  override readonly name = 'PermanentJobError';
}

/** The model side of an expert, as the processor uses it (VlmRuntime in production). */
export interface ExpertModel {
  readonly encoderId: string;
  readonly config: { imageSeqLength: number; hiddenSize: number };
  preprocessImages(images: readonly ImageInput[]): Promise<Float32Array>;
  encodePixels(pixelValues: Float32Array, batch: number): Promise<ImageFeatures[]>;
  generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]>;
}

export interface ImageSource {
  get(sha256: string): Promise<{ bytes: Uint8Array; mediaType: string } | undefined>;
}

export interface FeatureSource {
  getOrCompute(
    imageSha256: string,
    encoderId: string,
    shape: { tokens: number; hiddenSize: number },
    compute: () => Promise<{ features: ImageFeatures; preprocessMs: number; visionEncodeMs: number }>,
  ): Promise<CachedFeatures>;
}

export interface ExpertJobProcessorDeps {
  expertId: string;
  /** Name reported in results (the model's directory name in the pack). */
  modelName: string;
  model: ExpertModel;
  images: ImageSource;
  features: FeatureSource;
  batching: MicroBatcherOptions;
  /** Sends an expert's output to the dispatching router's inbox (`replyTo`) as soon as it is ready. */
  publishPartial: (replyTo: string, requestId: string, output: ExpertOutputJson) => Promise<void>;
  now?: () => number;
}

const ZERO_TIMINGS = { preprocessMs: 0, visionEncodeMs: 0, prefillMs: 0, decodeMs: 0, timeToFirstTokenMs: 0 };

/**
 * Turns one expert job into one expert output: validates the payload, drops it when past its deadline,
 * gets the image features (shared cache, else blob store + vision encoder), and generates in a micro-batch
 * with the jobs that arrived together.
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
    const result = await this.generate(job, features.features);
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
        preprocessMs: features.preprocessMs,
        visionEncodeMs: features.visionEncodeMs,
        prefillMs: result.timings.prefillMs,
        decodeMs: result.timings.decodeMs,
        // From pick-up: features, batching wait and prefill, i.e. everything before the generation's tail.
        timeToFirstTokenMs: finished - started - (result.timings.totalMs - result.timings.timeToFirstTokenMs),
        computeMs: finished - started,
      },
      featuresCached: features.cached,
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

  private async features(job: ExpertJobData): Promise<CachedFeatures> {
    const { model } = this.deps;
    return this.deps.features.getOrCompute(
      job.image.sha256,
      model.encoderId,
      { tokens: model.config.imageSeqLength, hiddenSize: model.config.hiddenSize },
      async () => {
        const preprocessStart = performance.now();
        const blob = await this.deps.images.get(job.image.sha256);
        if (!blob) throw new PermanentJobError(`image ${job.image.sha256} is not in the blob store (expired or never stored)`);
        try {
          const pixels = await model.preprocessImages([blob.bytes]);
          const preprocessMs = performance.now() - preprocessStart;
          const encodeStart = performance.now();
          const [features] = await model.encodePixels(pixels, 1);
          return { features, preprocessMs, visionEncodeMs: performance.now() - encodeStart };
        } catch (error) {
          if (error instanceof RuntimeInputError) throw new PermanentJobError(`${error.code}: ${error.message}`);
          throw error;
        }
      },
    );
  }

  private async generate(job: ExpertJobData, imageFeatures: ImageFeatures): Promise<GenerationResult> {
    try {
      return await this.batcher.submit({ prompt: job.prompt, imageFeatures, options: job.generation });
    } catch (error) {
      if (error instanceof RuntimeInputError) throw new PermanentJobError(`${error.code}: ${error.message}`);
      throw error;
    }
  }
}
