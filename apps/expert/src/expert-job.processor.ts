import { performance } from 'node:perf_hooks';
import {
  deadlineOf,
  type ExpertErrorCode,
  type ExpertJobData,
  type ExpertJobResult,
  type ExpertOutputJson,
  type ExpertTimingsJson,
} from '@rsmoe/contracts';
import {
  RuntimeInputError,
  decodeImage,
  interruptReasonOf,
  type InterruptReason,
  type FeaturePacking,
  type GenerationRequest,
  type GenerationResult,
  type ImageFeatures,
  type ImageInput,
  type ImageLimits,
} from '@rsmoe/runtime';
import type { CachedFeatures, ComputedFeatures, FeatureKey } from './feature-cache.adapter';
import { BatchItemAbortedError, MicroBatcher, type MicroBatcherOptions } from './micro-batcher';

/**
 * A job that can never succeed (bad payload or params, undecodable image, expired blob): do not retry it.
 * `errorCode` says which, for the job's failure reason (formatExpertJobFailure).
 */
export class PermanentJobError extends Error {
  override readonly name = 'PermanentJobError';
  constructor(
    readonly errorCode: Extract<ExpertErrorCode, 'invalid_image' | 'image_missing' | 'invalid_params'>,
    message: string,
  ) {
    super(message);
  }
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
  /** Each candidate's log-probability as the whole answer to the request (VlmRuntime.scoreCandidates). */
  scoreCandidates?(request: GenerationRequest, candidates: readonly string[]): Promise<number[]>;
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
  /** Limits when decoding an image (default: the runtime's DEFAULT_IMAGE_LIMITS). */
  imageLimits?: Partial<ImageLimits>;
  /** Sends an expert's output to the dispatching router's inbox (`replyTo`) as soon as it is ready. */
  publishPartial: (replyTo: string, requestId: string, output: ExpertOutputJson) => Promise<void>;
  now?: () => number;
}

/**
 * The job's limit: aborted by the first of the callers' signals or its fuse point (reason named TimeoutError,
 * as AbortSignal.timeout names it). `release` clears the timer and the listeners when the job ends, where an
 * AbortSignal.timeout keeps its timer until the fuse point or until the garbage collector finalizes the
 * signal, and AbortSignal.any registers weak references for the collector to sweep: per job, under load.
 */
function jobLimit(untilFuseMs: number, callers: readonly AbortSignal[]): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(Object.assign(new Error('the fuse point passed'), { name: 'TimeoutError' })), untilFuseMs);
  const listeners = callers.map((caller) => {
    const onAbort = (): void => controller.abort(caller.reason);
    if (caller.aborted) onAbort();
    else caller.addEventListener('abort', onAbort, { once: true });
    return () => caller.removeEventListener('abort', onAbort);
  });
  return {
    signal: controller.signal,
    release: () => {
      clearTimeout(timer);
      for (const remove of listeners) remove();
    },
  };
}

const ZERO_TIMINGS = { preprocessMs: 0, visionEncodeMs: 0, prefillMs: 0, decodeMs: 0, timeToFirstTokenMs: 0 };

/**
 * Turns one expert job into one expert output: validates the payload, drops it when past its fuse point,
 * gets each image's features (shared cache, else blob store + vision encoder), and generates in a
 * micro-batch with the jobs that arrived together.
 *
 * The job's limit is its fuse point (`fuseAtUnixMs`, else `deadlineUnixMs` for payloads of older
 * routers): bound to an AbortSignal (with the caller's, e.g. BullMQ's cancel signal) that reaches the
 * micro-batcher (a job still waiting is dropped, never computed) and the runtime (generation stops at the
 * next step). Such a job is answered, not failed: status `timed_out` with errorCode `deadline_exceeded`, or
 * `skipped` with `cancelled`.
 */
export class ExpertJobProcessor {
  private readonly batcher: MicroBatcher<GenerationRequest, GenerationResult>;
  private readonly now: () => number;

  constructor(private readonly deps: ExpertJobProcessorDeps) {
    this.batcher = new MicroBatcher((requests) => deps.model.generate(requests), deps.batching);
    this.now = deps.now ?? Date.now;
  }

  /**
   * `job`: parsed by the queue's catalogue (parseExpertJobData) when the worker took it, not again here.
   * `signals`: the caller's cancels (BullMQ's per-job signal, a router's cancel); the job's own fuse point is
   * added to them.
   */
  async process(job: ExpertJobData, signals: readonly AbortSignal[] = []): Promise<ExpertJobResult> {
    const pickedUpAt = this.now();
    const started = performance.now();
    this.checkAddressee(job);
    const base = {
      expertId: job.expertId,
      prompt: job.prompt,
      model: this.deps.modelName,
      promptTokens: 0,
      generatedTokens: 0,
    };
    const queueMs = Math.max(0, pickedUpAt - job.enqueuedAtUnixMs);
    const { fuseAtUnixMs } = deadlineOf(job);
    const interrupted = async (reason: InterruptReason, detail: string, timings: Partial<ExpertTimingsJson> = {}, tokens = { promptTokens: 0, generatedTokens: 0 }) => {
      const output: ExpertOutputJson = {
        ...base,
        ...tokens,
        text: '',
        status: reason === 'deadline' ? 'timed_out' : 'skipped',
        errorCode: reason === 'deadline' ? 'deadline_exceeded' : 'cancelled',
        error: detail,
        timings: { ...ZERO_TIMINGS, queueMs, computeMs: performance.now() - started, ...timings },
        featuresCached: false,
      };
      await this.deps.publishPartial(job.replyTo, job.requestId, output);
      return output;
    };
    if (pickedUpAt >= fuseAtUnixMs) {
      return interrupted('deadline', `dropped without computing: picked up ${pickedUpAt - fuseAtUnixMs} ms after the fuse point`, { computeMs: 0 });
    }
    const limiter = jobLimit(fuseAtUnixMs - pickedUpAt, signals);
    const limit = limiter.signal;
    try {
      // The fuse point by the clock as well as by the reason: whoever's timer fired first, past it is a deadline.
      const reasonOf = (): InterruptReason => (interruptReasonOf(limit) === 'deadline' || this.now() >= fuseAtUnixMs ? 'deadline' : 'cancelled');
      const whyStopped = (): InterruptReason | undefined => (limit.aborted ? reasonOf() : undefined);

      // A job of a request cancelled before it was picked up (or retried after) computes nothing.
      const before = whyStopped();
      if (before) return interrupted(before, `${before === 'deadline' ? 'fuse point passed' : 'cancelled'} before it started`, { computeMs: 0 });
      const features = await this.features(job);
      const early = whyStopped();
      if (early) return interrupted(early, `${early === 'deadline' ? 'fuse point passed' : 'cancelled'} while its image features were computed`);
      let result: GenerationResult;
      try {
        result = await this.generate(job, features.map((entry) => entry.features), limit, fuseAtUnixMs);
      } catch (error) {
        if (!(error instanceof BatchItemAbortedError)) throw error;
        const reason = limit.aborted ? reasonOf() : 'cancelled';
        return interrupted(reason, `${error.message} (waited for a batch)`);
      }
      const finished = performance.now();
      const timings: ExpertTimingsJson = {
        queueMs,
        // Summed over the job's images; 0 for images whose features came from the cache.
        preprocessMs: sum(features.map((entry) => entry.preprocessMs)),
        visionEncodeMs: sum(features.map((entry) => entry.visionEncodeMs)),
        prefillMs: result.timings.prefillMs,
        decodeMs: result.timings.decodeMs,
        // From pick-up: features, batching wait and prefill, i.e. everything before the generation's tail.
        timeToFirstTokenMs: Math.max(0, finished - started - (result.timings.totalMs - result.timings.timeToFirstTokenMs)),
        computeMs: finished - started,
      };
      if (result.finishReason === 'deadline' || result.finishReason === 'cancelled') {
        const what = result.finishReason === 'deadline' ? 'stopped at the fuse point' : 'cancelled';
        return interrupted(result.finishReason, `${what} after ${result.generatedTokens} generated tokens`, timings, {
          promptTokens: result.promptTokens,
          generatedTokens: result.generatedTokens,
        });
      }
      const candidateScores = await this.scoreCandidates(job, features.map((entry) => entry.features));
      const output: ExpertOutputJson = {
        ...base,
        text: result.text,
        status: 'ok',
        promptTokens: result.promptTokens,
        generatedTokens: result.generatedTokens,
        finishReason: result.finishReason,
        timings,
        featuresCached: features.every((entry) => entry.cached),
        ...(candidateScores ? { candidateScores } : {}),
      };
      await this.deps.publishPartial(job.replyTo, job.requestId, output);
      return output;
  
    } finally {
      limiter.release();
    }
  }

  /** A classification's labels, each scored as the whole answer (one batched prefill, after the generation). */
  private async scoreCandidates(job: ExpertJobData, imageFeatures: ImageFeatures[]): Promise<ExpertOutputJson['candidateScores']> {
    if (!job.candidates || !this.deps.model.scoreCandidates) return undefined;
    const scores = await this.deps.model.scoreCandidates({ prompt: job.prompt, imageFeatures, options: job.generation }, job.candidates);
    return job.candidates.map((label, index) => ({ label, value: scores[index] }));
  }

  private checkAddressee(job: ExpertJobData): void {
    if (job.expertId !== this.deps.expertId) {
      throw new PermanentJobError('invalid_params', `job for expert "${job.expertId}" reached expert "${this.deps.expertId}"`);
    }
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
          if (!blob) throw new PermanentJobError('image_missing', `image ${image.sha256} is not in the blob store (expired or never stored)`);
          try {
            const decoded = await decodeImage(blob.bytes, { limits: this.deps.imageLimits });
            const preprocessMs = performance.now() - preprocessStart;
            const encodeStart = performance.now();
            const [features] = await model.encodeImages([decoded], { imagesInPrompt });
            return { features, preprocessMs, visionEncodeMs: performance.now() - encodeStart };
          } catch (error) {
            if (error instanceof RuntimeInputError) throw new PermanentJobError('invalid_image', `${error.code}: ${error.message}`);
            throw error;
          }
        }),
      ),
    );
  }

  private async generate(job: ExpertJobData, imageFeatures: ImageFeatures[], signal: AbortSignal, deadlineUnixMs: number): Promise<GenerationResult> {
    try {
      return await this.batcher.submit({ prompt: job.prompt, imageFeatures, options: job.generation, signal, deadlineUnixMs }, signal);
    } catch (error) {
      if (error instanceof RuntimeInputError) throw new PermanentJobError('invalid_params', `${error.code}: ${error.message}`);
      throw error;
    }
  }
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
