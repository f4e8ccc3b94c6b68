import { Inject, Injectable } from '@nestjs/common';
import type { BlobStore } from '@rsmoe/blobstore';
import type { ImageRefJson, InferenceResultJson, Task } from '@rsmoe/contracts';
import type { Logger } from '@rsmoe/observability';
import type { RouterPort } from '../adapters/router.port';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import { StorageUnavailableError } from '../errors/storage-errors';
import type { ImageIntake, RawInferenceInput } from '../intake/image-intake.service';
import { BLOB_STORE, IMAGE_INTAKE, LOGGER, ROUTER } from '../tokens';

/** Who is asking and since when. */
export interface InferenceContext {
  requestId: string;
  /** Arrival of the HTTP request (Unix ms); the deadline counts from here. */
  receivedAtMs: number;
  /** Aborted when the client goes away. */
  signal?: AbortSignal;
}

/**
 * A caption or question request from the HTTP edge to the router: validate everything, store the image
 * bytes once (only the sha256 travels on), call the router with the request's deadline.
 */
@Injectable()
export class InferenceService {
  constructor(
    @Inject(IMAGE_INTAKE) private readonly intake: ImageIntake,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(ROUTER) private readonly router: RouterPort,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async run(task: Task, input: RawInferenceInput, context: InferenceContext): Promise<InferenceResultJson> {
    const accepted = await this.intake.accept(task, input);
    const deadlineUnixMs = context.receivedAtMs + accepted.timeoutMs;
    this.assertBeforeDeadline(deadlineUnixMs);
    const image = await this.store(accepted.image.bytes, accepted.image.mediaType, context.requestId);
    this.assertBeforeDeadline(deadlineUnixMs);
    this.logger.debug('forwarding to the router', {
      requestId: context.requestId,
      task,
      sha256: image.sha256,
      byteLength: image.byteLength,
      width: accepted.image.width,
      height: accepted.image.height,
      deadlineUnixMs,
    });
    // One image per HTTP request for now: the router and the experts take a list (prompt order).
    const call = { requestId: context.requestId, images: [image], params: accepted.params, deadlineUnixMs, signal: context.signal };
    return task === 'vqa' ? this.router.answer({ ...call, question: accepted.question ?? '' }) : this.router.caption(call);
  }

  private async store(bytes: Buffer, mediaType: string, requestId: string): Promise<ImageRefJson> {
    try {
      const { sha256, byteLength, mediaType: storedType, created } = await this.blobs.put(bytes, mediaType);
      this.logger.debug('image stored', { requestId, sha256, created });
      return { sha256, byteLength, mediaType: storedType };
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
