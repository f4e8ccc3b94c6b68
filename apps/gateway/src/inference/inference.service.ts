import { status as GrpcStatus } from '@grpc/grpc-js';
import { Inject, Injectable } from '@nestjs/common';
import { sha256Hex, type BlobStore } from '@rsmoe/blobstore';
import type { ImageRefJson, InferenceResultJson, RedisKeys, Task } from '@rsmoe/contracts';
import type { Logger } from '@rsmoe/observability';
import type { RequestEraser } from '../adapters/request-eraser.adapter';
import type { InferCall, PartialListener, RouterPort } from '../adapters/router.port';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import { DEFAULT_RETRY_AFTER_MS, RouterCallError, retryAfterSeconds } from '../errors/router-status.mapping';
import { StorageUnavailableError } from '../errors/storage-errors';
import type { AsyncAnswerStore } from '../adapters/async-answer-store.adapter';
import type { IdempotencyRecord, IdempotencyStore } from '../adapters/idempotency-store.adapter';
import type { RequestOwnerStore } from '../adapters/request-owner-store.adapter';
import { errorBodyOf, gatewayErrorOf } from '../errors/error-response.filter';
import type { GatewayConfig } from '../gateway.config';
import type { AcceptedInferenceRequest, ImageIntake, RawInferenceInput } from '../intake/image-intake.service';
import { ASYNC_ANSWERS, BLOB_STORE, GATEWAY_CONFIG, IDEMPOTENCY, IMAGE_INTAKE, LOGGER, OVERLOAD_GATE, REDIS_KEYS, REQUEST_ERASER, REQUEST_OWNERS, ROUTER } from '../tokens';
import { renderTaskAnswer, type TaskAnswer } from '../tasks/task-answer';
import type { OverloadGate } from './overload-gate';

/** Who is asking and since when. */
export interface InferenceContext {
  /** The mesh's request id, made by the gateway (unguessable; keys the stored result). */
  requestId: string;
  /** The client's own id for the request, echoed in the result; never a key. */
  correlationId?: string;
  /** The client's `Idempotency-Key`, when it sent one. */
  idempotencyKey?: string;
  /** W3C trace context of the gateway's span, forwarded to the router. */
  traceparent?: string;
  /** Arrival of the HTTP request (Unix ms); the deadline counts from here. */
  receivedAtMs: number;
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
  /** Id of the API key that made the request (AUTH_MODE=required): only it may read the answer back. */
  ownerKeyId?: string;
}

/** The answer an earlier request with the same `Idempotency-Key` gave, given again. */
export interface IdempotentReplay {
  kind: 'replay';
  status: number;
  body: unknown;
  /** The request that made it. */
  requestId: string;
}

/** An `Idempotency-Key` this request holds: its record, and the earlier answer when it is a replay. */
interface IdempotencyClaim {
  key: string;
  record: Extract<IdempotencyRecord, { state: 'pending' }>;
  replay?: IdempotentReplay;
}

/** What makes two requests the same request: the task, the images' content and every field, in one hash. */
function requestFingerprint(task: Task, accepted: AcceptedInferenceRequest): string {
  const { question, query, box, classes, changeOutput, params } = accepted;
  const images = accepted.images.map((image) => sha256Hex(image.bytes));
  return sha256Hex(Buffer.from(JSON.stringify({ task, images, question, query, box: box?.percent, classes, changeOutput, params })));
}

/** A request validated, its images stored: ready for the router. */
interface PreparedRequest {
  task: Task;
  accepted: AcceptedInferenceRequest;
  images: ImageRefJson[];
  /** sha256s of the images this request was first to store (the blob store had no copy). */
  created: string[];
  deadlineUnixMs: number;
}

/** One expert's outcome in the body of a 502 experts_failed. */
export interface FailedExpertDetail {
  expertId: string;
  status: string;
  errorCode?: string;
  error?: string;
}

/**
 * A caption or question request from the HTTP edge to the router: validate everything, store the image
 * bytes once (only the sha256 travels on), call the router with the request's deadline, and check the
 * result: it must be this request's, and at least one expert must have produced an output. A NOT_FOUND for
 * the image just stored is 503 `image_lost`, not 404.
 */
@Injectable()
export class InferenceService {
  constructor(
    @Inject(IMAGE_INTAKE) private readonly intake: ImageIntake,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(ROUTER) private readonly router: RouterPort,
    @Inject(OVERLOAD_GATE) private readonly overload: OverloadGate,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(ASYNC_ANSWERS) private readonly answers: AsyncAnswerStore,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REQUEST_OWNERS) private readonly owners: RequestOwnerStore,
    @Inject(IDEMPOTENCY) private readonly idempotency: IdempotencyStore,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(REQUEST_ERASER) private readonly eraser: RequestEraser,
  ) {}

  private asyncInFlight = 0;
  /** Images that synchronous requests of this gateway are using now: sha256 → how many requests. */
  private readonly imagesInUse = new Map<string, number>();

  /**
   * Runs one request and answers it. With `onPartial`, the router streams (InferStream): each expert's output
   * is told as it finishes, before the answer. A client that goes away (the context's signal) cancels the
   * router call, and what the request stored is erased at once (`discard`).
   */
  async run(task: Task, input: RawInferenceInput, context: InferenceContext, onPartial?: PartialListener): Promise<InferenceResultJson | TaskAnswer | IdempotentReplay> {
    const accepted = await this.intake.accept(task, input);
    const idempotent = await this.claimIdempotency(task, accepted, context);
    if (idempotent?.replay) return idempotent.replay;
    let prepared: PreparedRequest | undefined;
    let release = (): void => undefined;
    try {
      prepared = await this.prepare(task, accepted, context);
      release = this.useImages(prepared.images);
      const answer = await this.complete(prepared, context, onPartial);
      if (idempotent) await this.idempotency.finish(idempotent.key, { ...idempotent.record, state: 'done', status: 200, body: answer });
      return answer;
    } catch (error) {
      release();
      if (idempotent) await this.recordFailure(idempotent, error);
      if (prepared && context.signal?.aborted) await this.discard(prepared, context.requestId);
      throw error;
    } finally {
      release();
    }
  }

  /** Counts the images as used by one more running request; returns the release (once only). */
  private useImages(images: readonly ImageRefJson[]): () => void {
    for (const { sha256 } of images) this.imagesInUse.set(sha256, (this.imagesInUse.get(sha256) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const { sha256 } of images) {
        const count = (this.imagesInUse.get(sha256) ?? 0) - 1;
        if (count > 0) this.imagesInUse.set(sha256, count);
        else this.imagesInUse.delete(sha256);
      }
    };
  }

  /**
   * A request whose client went away leaves nothing behind: as DELETE /v1/requests/{id} does, its result (if
   * one was stored meanwhile), its bindings and the images it was the first to store, with their cached
   * features, are erased now instead of at their TTLs. Images are content-addressed: one that was stored
   * before this request, or that another request of this gateway is using, is kept.
   */
  private async discard(prepared: PreparedRequest, requestId: string): Promise<void> {
    const images = prepared.created.filter((sha256) => !this.imagesInUse.has(sha256));
    try {
      const erased = await this.eraser.erase(requestId, { images });
      this.logger.debug('cancelled request erased', { requestId, deletedKeys: erased.deletedKeys, images: erased.images });
    } catch (error) {
      this.logger.warn('erasing a cancelled request failed (its keys expire at their TTLs)', { requestId, error: (error as Error).message });
    }
  }

  /**
   * `Idempotency-Key`: the same key, from the same API key, with the same request (task, images' sha256s and
   * every field), within the result TTL, answers what the first request answered instead of running again
   * (`Idempotent-Replayed: true`); 409 while that one still runs; 422 for the key with another request. With
   * API keys off there is no client to tie the key to: only the same key with the same request replays, and
   * another request with the key simply runs. A transient failure (5xx, 408, 429) is forgotten, so a retry runs.
   */
  private async claimIdempotency(task: Task, accepted: AcceptedInferenceRequest, context: InferenceContext): Promise<IdempotencyClaim | undefined> {
    if (context.idempotencyKey === undefined) return undefined;
    const fingerprint = requestFingerprint(task, accepted);
    const keyHash = sha256Hex(Buffer.from(context.ownerKeyId !== undefined ? context.idempotencyKey : `${context.idempotencyKey}\n${fingerprint}`));
    const key = this.keys.idempotencyKey(context.ownerKeyId ?? 'anonymous', keyHash);
    const record = { state: 'pending' as const, fingerprint, requestId: context.requestId };
    const existing = await this.idempotency.claim(key, record);
    if (existing === undefined) return { key, record };
    if (existing.fingerprint !== fingerprint) {
      throw new GatewayError(422, ERROR_CODES.idempotencyKeyReused, 'this Idempotency-Key was used for a different request: use a new key for a new request');
    }
    if (existing.state === 'pending') {
      throw new GatewayError(409, ERROR_CODES.idempotentRequestPending, `the request with this Idempotency-Key (${existing.requestId}) is still running: retry after it answers`, {
        headers: { 'Retry-After': '1' },
      });
    }
    return { key, record, replay: { kind: 'replay', status: existing.status, body: existing.body, requestId: existing.requestId } };
  }

  private async recordFailure(claim: IdempotencyClaim, error: unknown): Promise<void> {
    const failure = gatewayErrorOf(error);
    if (failure.status >= 500 || failure.status === 408 || failure.status === 429) await this.idempotency.release(claim.key);
    else await this.idempotency.finish(claim.key, { ...claim.record, state: 'done', status: failure.status, body: errorBodyOf(failure, claim.record.requestId) });
  }

  /**
   * `Prefer: respond-async`: everything a synchronous request checks is checked now (a bad request is still
   * its 4xx), the images are stored, and the rest runs in the background, not tied to the connection: its
   * answer (200 body or error) goes to the async answer store for GET /v1/requests/{id}. If this gateway
   * stops first, the router still stores its result there.
   */
  async submit(task: Task, input: RawInferenceInput, context: InferenceContext): Promise<IdempotentReplay | undefined> {
    if (this.asyncInFlight >= this.config.MAX_ASYNC_IN_FLIGHT) {
      throw new GatewayError(429, ERROR_CODES.overloaded, `this gateway already runs ${this.asyncInFlight} asynchronous requests (MAX_ASYNC_IN_FLIGHT); retry later`, {
        headers: { 'Retry-After': String(retryAfterSeconds(DEFAULT_RETRY_AFTER_MS)) },
      });
    }
    const accepted = await this.intake.accept(task, input);
    const idempotent = await this.claimIdempotency(task, accepted, context);
    if (idempotent?.replay) return idempotent.replay;
    let prepared: PreparedRequest;
    try {
      prepared = await this.prepare(task, accepted, context);
    } catch (error) {
      if (idempotent) await this.recordFailure(idempotent, error);
      throw error;
    }
    await this.answers.markPending(context.requestId);
    this.asyncInFlight += 1;
    const { signal: _clientSignal, ...detached } = context;
    this.complete(prepared, detached)
      .then(
        async (answer) => {
          await this.answers.finish(context.requestId, 200, answer);
          if (idempotent) await this.idempotency.finish(idempotent.key, { ...idempotent.record, state: 'done', status: 200, body: answer });
        },
        async (error: unknown) => {
          const failure = gatewayErrorOf(error);
          if (failure.status >= 500) this.logger.warn('asynchronous request failed', { requestId: context.requestId, status: failure.status, code: failure.code });
          await this.answers.finish(context.requestId, failure.status, errorBodyOf(failure, context.requestId));
          if (idempotent) await this.recordFailure(idempotent, error);
        },
      )
      .catch((error: unknown) => this.logger.error('storing an asynchronous answer failed', { requestId: context.requestId, error }))
      .finally(() => (this.asyncInFlight -= 1));
  }

  /** Asynchronous requests running now. */
  get asyncRunning(): number {
    return this.asyncInFlight;
  }

  /** Stores the images of a validated request: what must succeed before an answer can be promised. */
  private async prepare(task: Task, accepted: AcceptedInferenceRequest, context: InferenceContext): Promise<PreparedRequest> {
    const deadlineUnixMs = context.receivedAtMs + accepted.timeoutMs;
    this.assertBeforeDeadline(deadlineUnixMs);
    // Bound before anything is stored or sent on: the router may store the result the moment it is asked.
    if (context.ownerKeyId !== undefined) await this.owners.bind(context.requestId, context.ownerKeyId);
    const images: ImageRefJson[] = [];
    const created: string[] = [];
    for (const image of accepted.images) {
      const stored = await this.store(image.bytes, image.mediaType, context.requestId);
      images.push(stored.ref);
      if (stored.created) created.push(stored.ref.sha256);
    }
    await this.owners.bindImages(context.requestId, images.map((image) => image.sha256));
    this.assertBeforeDeadline(deadlineUnixMs);
    this.logger.debug('forwarding to the router', {
      requestId: context.requestId,
      correlationId: context.correlationId,
      task,
      sha256: images.map((image) => image.sha256),
      width: accepted.image.width,
      height: accepted.image.height,
      deadlineUnixMs,
    });
    return { task, accepted, images, created, deadlineUnixMs };
  }

  /** Calls the router, checks its result and renders the answer. */
  private async complete({ task, accepted, images, deadlineUnixMs }: PreparedRequest, context: InferenceContext, onPartial?: PartialListener): Promise<InferenceResultJson | TaskAnswer> {
    const call = {
      requestId: context.requestId,
      ...(context.correlationId !== undefined ? { correlationId: context.correlationId } : {}),
      ...(context.traceparent !== undefined ? { traceparent: context.traceparent } : {}),
      images,
      params: accepted.params,
      deadlineUnixMs,
      signal: context.signal,
    };
    const taskCall = (task: Exclude<Task, 'caption' | 'vqa'>) => ({
      ...call,
      task,
      ...(accepted.query !== undefined ? { query: accepted.query } : {}),
      ...(accepted.box !== undefined ? { box: accepted.box.percent } : {}),
      ...(accepted.classes !== undefined ? { classes: accepted.classes } : {}),
      ...(accepted.changeOutput !== undefined ? { changeOutput: accepted.changeOutput } : {}),
    });
    let result: InferenceResultJson;
    try {
      if (onPartial) {
        const streamed: InferCall =
          task === 'caption' ? { ...call, task } : task === 'vqa' ? { ...call, task, question: accepted.question ?? '' } : taskCall(task);
        result = await this.router.stream(streamed, (output) => {
          // Nothing more is told once the client is gone.
          if (!context.signal?.aborted) onPartial(output);
        });
      } else if (task === 'caption') result = await this.router.caption(call);
      else if (task === 'vqa') result = await this.router.answer({ ...call, question: accepted.question ?? '' });
      else result = await this.router.perform(taskCall(task));
    } catch (error) {
      if (error instanceof RouterCallError && error.grpcCode === GrpcStatus.RESOURCE_EXHAUSTED && error.retryAfterMs !== undefined) {
        this.overload.refuse(task, error.retryAfterMs);
      }
      // Caption/Answer's only NOT_FOUND is a missing image, and this request stored it a moment ago: the
      // blob store lost it (a Redis restart), a transient fault of ours, not the client's 404.
      if (error instanceof RouterCallError && error.grpcCode === GrpcStatus.NOT_FOUND) {
        throw new GatewayError(503, ERROR_CODES.imageLost, 'the image was lost by the blob store before the experts read it (a transient fault); send the request again', {
          cause: error,
          headers: { 'Retry-After': String(retryAfterSeconds(DEFAULT_RETRY_AFTER_MS)) },
        });
      }
      throw error;
    }
    const { width, height, format, bytes } = accepted.image;
    return renderTaskAnswer(this.checkResult(result, task, context), { width, height, ...(format === 'tiff' ? { tiff: bytes } : {}) });
  }

  /**
   * A result is answered only to the request that made it (a router bug or a replayed id must never hand
   * one client another's result), carries the client's correlation id, and has at least one expert output.
   */
  private checkResult(result: InferenceResultJson, task: Task, context: InferenceContext): InferenceResultJson {
    if (result.requestId !== context.requestId || result.task !== task) {
      this.logger.error('the router answered with another request’s result', {
        requestId: context.requestId,
        resultRequestId: result.requestId,
        task,
        resultTask: result.task,
      });
      throw new RouterCallError(GrpcStatus.INTERNAL, 'the result belongs to another request');
    }
    if (!result.experts.some((expert) => expert.status === 'ok')) {
      const experts: FailedExpertDetail[] = result.experts.map((expert) => ({
        expertId: expert.expertId,
        status: expert.status,
        ...(expert.errorCode !== undefined ? { errorCode: expert.errorCode } : {}),
        ...(expert.error !== undefined ? { error: expert.error } : {}),
      }));
      const summary = experts.map((expert) => `${expert.expertId} ${expert.errorCode ?? expert.status}`).join(', ') || 'no expert was routed';
      throw new GatewayError(502, ERROR_CODES.expertsFailed, `no expert produced an output (${summary})`, { details: { experts } });
    }
    if (context.correlationId === undefined || result.correlationId === context.correlationId) return result;
    return { ...result, correlationId: context.correlationId };
  }

  private async store(bytes: Buffer, mediaType: string, requestId: string): Promise<{ ref: ImageRefJson; created: boolean }> {
    try {
      const { sha256, byteLength, mediaType: storedType, created } = await this.blobs.put(bytes, mediaType);
      this.logger.debug('image stored', { requestId, sha256, created });
      return { ref: { sha256, byteLength, mediaType: storedType }, created };
    } catch (error) {
      throw new StorageUnavailableError(`storing the image failed: ${(error as Error).message}`, { cause: error });
    }
  }

  private assertBeforeDeadline(deadlineUnixMs: number): void {
    if (Date.now() >= deadlineUnixMs) {
      throw new GatewayError(408, ERROR_CODES.deadlineExceeded, 'the request deadline passed before the router was called');
    }
  }
}
