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
  /** 422: the header of a supported format cannot be read (corrupt or truncated). */
  invalidImage: 'invalid_image',
  /** 400: `/v1/vqa` without a question, or an empty one. */
  missingQuestion: 'missing_question',
  /** 400: `question` is not a string. */
  invalidQuestion: 'invalid_question',
  /** 422: the question is longer than MAX_QUESTION_CHARS. */
  questionTooLong: 'question_too_long',
  /** 400: `params` is not a valid GenerationParams object (the message names the field). */
  invalidParams: 'invalid_params',
  /** 400: `timeoutMs` / `X-Request-Timeout-Ms` is not an integer in [1, MAX_REQUEST_TIMEOUT_MS]. */
  invalidTimeout: 'invalid_timeout',
  /** 400: the `X-Request-Id` header does not match [A-Za-z0-9_-]{1,128}. */
  invalidRequestId: 'invalid_request_id',
  /** 400: a field the endpoint does not know was sent (the message names it). */
  unknownField: 'unknown_field',
  /** 400: the body is not valid JSON. */
  invalidJson: 'invalid_json',
  /** 400: the multipart body is malformed or has an unexpected file field. */
  invalidMultipart: 'invalid_multipart',
  /** 400: any other malformed request. */
  badRequest: 'bad_request',
  /** 404: no stored result for this request id (never stored, or expired). */
  requestNotFound: 'request_not_found',
  /** 404: no such route, or the router reported NOT_FOUND. */
  notFound: 'not_found',
  /** 408: the request's deadline passed before the result was ready. */
  deadlineExceeded: 'deadline_exceeded',
  /** 429: the router is overloaded (RESOURCE_EXHAUSTED). */
  overloaded: 'overloaded',
  /** 400: the router refused the request as invalid (INVALID_ARGUMENT). */
  invalidArgument: 'invalid_argument',
  /** 502: the router failed with any other status. */
  routerError: 'router_error',
  /** 503: the router cannot be reached. */
  routerUnavailable: 'router_unavailable',
  /** 503: the blob / result store (Redis) cannot be reached. */
  storageUnavailable: 'storage_unavailable',
  /** 503: a readiness check failed. */
  notReady: 'not_ready',
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
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.details = options?.details;
  }

  /** Extra machine-readable facts sent as `error.details` (e.g. which readiness check failed). */
  readonly details: Record<string, unknown> | undefined;
}
