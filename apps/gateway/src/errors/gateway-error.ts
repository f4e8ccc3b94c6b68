/**
 * Stable error codes of the HTTP API (the `error.code` field). Clients may switch on these; renaming
 * one is a breaking change.
 */
export const ERROR_CODES = Object.freeze({
  /** 400: neither a multipart `image` file nor a JSON `image` string was sent, or it was empty. */
  missingImage: 'missing_image',
  /** 400: the JSON `image` is not valid base64 or a base64 data URL. */
  invalidBase64: 'invalid_base64',
  /** 413: the image (or the whole body) is larger than MAX_IMAGE_BYTES. */
  payloadTooLarge: 'payload_too_large',
  /** 415: the bytes are not PNG, JPEG, WebP or TIFF (the message names the format found). */
  unsupportedMediaType: 'unsupported_media_type',
  /** 422: width × height in the header exceeds MAX_IMAGE_PIXELS. */
  tooManyPixels: 'too_many_pixels',
  /**
   * 422: the image cannot be decoded: its header cannot be read here (corrupt or truncated), or the router
   * found that every expert failed to decode it. One code wherever the failure is found.
   */
  invalidImage: 'invalid_image',
  /** 400: `/v1/vqa` without a question, or an empty one. */
  missingQuestion: 'missing_question',
  /** 400: grounding without a query, referring without a box, segmentation without classes or a query. */
  missingField: 'missing_field',
  /** 400: a query, box, units, classes or output value that is not valid. */
  invalidField: 'invalid_field',
  /** 422: the two images of a change request differ in size. */
  imageSizeMismatch: 'image_size_mismatch',
  /** 422: no expert of the loaded pack serves the task; the message names the tasks it serves. */
  taskNotSupported: 'task_not_supported',
  /** 400: `question` is not a string. */
  invalidQuestion: 'invalid_question',
  /** 422: the question is longer than MAX_QUESTION_CHARS. */
  questionTooLong: 'question_too_long',
  /** 400: `params` is not a valid GenerationParams object (the message names the field). */
  invalidParams: 'invalid_params',
  /** 400: `timeoutMs` / `X-Request-Timeout-Ms` is not an integer in [1, MAX_REQUEST_TIMEOUT_MS]. */
  invalidTimeout: 'invalid_timeout',
  /** 400: the `X-Request-Id` header (a client correlation id) or a `{id}` path segment does not match [A-Za-z0-9_-]{1,128}. */
  invalidRequestId: 'invalid_request_id',
  /** 400: the `X-Correlation-Id` header does not match [A-Za-z0-9_-]{1,128}. */
  invalidCorrelationId: 'invalid_correlation_id',
  /** 400: a field the endpoint does not know was sent (the message names it). */
  unknownField: 'unknown_field',
  /** 400: the body is not valid JSON. */
  invalidJson: 'invalid_json',
  /** 400: the multipart body is malformed or has an unexpected file field. */
  invalidMultipart: 'invalid_multipart',
  /** 400: any other malformed request. */
  badRequest: 'bad_request',
  /** 409: `DELETE /v1/requests/{id}` of an asynchronous request still running. */
  requestPending: 'request_pending',
  /** 409: a request with this `Idempotency-Key` is still running. */
  idempotentRequestPending: 'idempotent_request_pending',
  /** 422: this `Idempotency-Key` was used for a different request. */
  idempotencyKeyReused: 'idempotency_key_reused',
  /** 400: an `Idempotency-Key` that is not 1-255 printable ASCII characters. */
  invalidIdempotencyKey: 'invalid_idempotency_key',
  /** 404: no stored result for this request id (never stored, or expired). */
  requestNotFound: 'request_not_found',
  /** 404: no such route, or the router reported NOT_FOUND outside an inference request. */
  notFound: 'not_found',
  /** 408: the request's deadline passed before the result was ready. */
  deadlineExceeded: 'deadline_exceeded',
  /** 408: the request body did not arrive in time (stalled upload); the connection is closed. */
  bodyTimeout: 'body_timeout',
  /** 429: the mesh refused the request for lack of capacity (router RESOURCE_EXHAUSTED); `Retry-After` says when to retry. */
  overloaded: 'overloaded',
  /**
   * 401: no API key (`Authorization: Bearer <key>` or `X-API-Key`), or one that is unknown or revoked
   * (AUTH_MODE=required). Answered before the body is read; `WWW-Authenticate: Bearer`.
   */
  unauthenticated: 'unauthenticated',
  /** 403: the API key may not run this route's task (`rsmoe keys create --tasks`); answered before the body is read. */
  forbidden: 'forbidden',
  /**
   * 429: the API key's token bucket is empty (its `--rate` / `--burst`); `Retry-After` says when one request
   * may go, `RateLimit-*` describe the bucket. Answered before the body is read.
   */
  rateLimited: 'rate_limited',
  /**
   * 429: the API key has used its daily quota of images (one per inference request); it resets at 00:00 UTC,
   * which `Retry-After` and `RateLimit-Reset` count down to. Answered before the body is read.
   */
  quotaExceeded: 'quota_exceeded',
  /** 404: `POST /v1/chat/completions` named a `model` other than the loaded pack (the message names it). */
  modelNotFound: 'model_not_found',
  /** 400: a chat message's `image_url` is not a base64 `data:` URL (the mesh fetches nothing from outside). */
  imageUrlNotAllowed: 'image_url_not_allowed',
  /** 400: a chat completion asked for `n` other than 1 (one choice per request). */
  nNotSupported: 'n_not_supported',
  /** 400: the router refused the request as invalid (INVALID_ARGUMENT). */
  invalidArgument: 'invalid_argument',
  /** 502: the router failed with any other status. */
  routerError: 'router_error',
  /** 502: no routed expert produced an output (each failed or timed out); `error.details.experts` says why, per expert. */
  expertsFailed: 'experts_failed',
  /** 503: the router cannot be reached. */
  routerUnavailable: 'router_unavailable',
  /**
   * 503: the router is up but no expert routed for the request has a live worker; the message names them.
   * `Retry-After: 1`.
   */
  expertsUnavailable: 'experts_unavailable',
  /**
   * 503: the image stored for this very request was gone from the blob store when the mesh read it (e.g. a
   * Redis restart in between): a transient loss on our side; send the request again. `Retry-After: 1`.
   */
  imageLost: 'image_lost',
  /** 503: the blob / result store (Redis) cannot be reached. */
  storageUnavailable: 'storage_unavailable',
  /** 503: a readiness check failed. */
  notReady: 'not_ready',
  /** 413: a scene upload larger than MAX_SCENE_BYTES. */
  sceneTooLarge: 'scene_too_large',
  /** 422: a scene TIFF that is truncated or corrupt (its header, directory or tile index cannot be read). */
  invalidScene: 'invalid_scene',
  /** 422: a scene TIFF compression that cannot be decoded (the message names it and what is supported). */
  unsupportedCompression: 'unsupported_compression',
  /** 422: scene samples that are not 8/16/32-bit integers or 32-bit floats in one plane. */
  unsupportedSampleFormat: 'unsupported_sample_format',
  /** 422: a scene whose georeferencing cannot be read or used (user-defined or unknown CRS, ground control points…). */
  unsupportedGeoreference: 'unsupported_georeference',
  /** 422: a scene band index that does not exist (the message names the valid range). */
  invalidBands: 'invalid_bands',
  /** 404: no scene with this id (never made, expired, erased, or another API key's). */
  sceneNotFound: 'scene_not_found',
  /** 409: the scene's result is not ready (its status says why). */
  sceneNotDone: 'scene_not_done',
  /** 500: a bug; details are in the log under the request id. */
  internalError: 'internal_error',
} as const);

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/**
 * An error with an HTTP status and a stable code, answered by the one exception filter as
 * `{"error": {"code", "message", "requestId"}}`. Plain TypeScript (no Nest), so validation can throw it
 * and unit tests can assert on it without an app.
 */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';

  constructor(
    /** HTTP status of the response. */
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown>; headers?: Record<string, string> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.details = options?.details;
    this.headers = options?.headers;
  }

  /** Extra machine-readable facts sent as `error.details` (e.g. which readiness check failed). */
  readonly details: Record<string, unknown> | undefined;
  /** Response headers of the error (e.g. `Retry-After` of a 429). */
  readonly headers: Record<string, string> | undefined;
}
