/**
 * Injection tokens of the gateway. Services run under tsx, which emits no decorator metadata, so every
 * constructor parameter names its token with `@Inject(TOKEN)`; nothing relies on type-based injection.
 */
export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');
/** A RouterPort: the grpc-js RouterClientAdapter, or a fake in tests. */
export const ROUTER = Symbol('ROUTER');
/** A BlobStore (libs/blobstore) where image bytes are written once. */
export const BLOB_STORE = Symbol('BLOB_STORE');
/** A ResultReader for `GET /v1/requests/{id}`. */
export const RESULT_READER = Symbol('RESULT_READER');
/** A RedisProbe for readiness. */
export const REDIS_PROBE = Symbol('REDIS_PROBE');
/** The structured Logger (libs/observability). */
export const LOGGER = Symbol('LOGGER');
/** The ImageIntake validator, built from the configured limits. */
export const IMAGE_INTAKE = Symbol('IMAGE_INTAKE');
/** The OverloadGate shared by the inference service (which fills it) and the early-refusal middleware. */
export const OVERLOAD_GATE = Symbol('OVERLOAD_GATE');
/** An AsyncAnswerStore: answers of requests submitted with `Prefer: respond-async`. */
export const ASYNC_ANSWERS = Symbol('ASYNC_ANSWERS');
/** A RequestOwnerStore: which API key made a request (AUTH_MODE=required). */
export const REQUEST_OWNERS = Symbol('REQUEST_OWNERS');
/** A RequestEraser: DELETE /v1/requests/{id}. */
export const REQUEST_ERASER = Symbol('REQUEST_ERASER');
/** An IdempotencyStore: records of `Idempotency-Key`s. */
export const IDEMPOTENCY = Symbol('IDEMPOTENCY');
/** The RedisKeys of this gateway's KEY_PREFIX. */
export const REDIS_KEYS = Symbol('REDIS_KEYS');
/** The MultipartLimits of an inference request's multipart body. */
export const MULTIPART_LIMITS = Symbol('MULTIPART_LIMITS');
