/**
 * The three aspects of the RS-MoE demo packs: theme (scene type), objects, spatial relations.
 * A pack's expert ids are whatever its manifest says (`ExpertId` is a string); these constants name
 * the ids of the demo and test packs, which are also their aspects.
 */
export const ASPECTS = Object.freeze({ THEME: 'theme', OBJECT: 'object', RELATION: 'relation' } as const);

export type Aspect = (typeof ASPECTS)[keyof typeof ASPECTS];

/** All aspects in caption order: theme → objects → relations. */
export const ASPECT_ORDER: readonly Aspect[] = Object.freeze([ASPECTS.THEME, ASPECTS.OBJECT, ASPECTS.RELATION]);

/** An expert id as defined by the pack manifest; it appears in queue names, job ids and Redis keys. */
export type ExpertId = string;

/** Expert ids: lower-case letter, then lower-case letters, digits, `_` or `-`; 1–32 characters. No `.` or `:`. */
export const EXPERT_ID_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * Request ids: 1–128 of `[A-Za-z0-9_-]` (a UUID fits). No `.` (the job id separator) and no `:`
 * (BullMQ refuses custom job ids containing it).
 */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** A SHA-256 digest in lower-case hex (64 characters): the content address of an image. */
export const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;

export function isExpertId(value: unknown): value is ExpertId {
  return typeof value === 'string' && EXPERT_ID_PATTERN.test(value);
}

export function isRequestId(value: unknown): value is string {
  return typeof value === 'string' && REQUEST_ID_PATTERN.test(value);
}

export function isSha256Hex(value: unknown): value is string {
  return typeof value === 'string' && SHA256_HEX_PATTERN.test(value);
}

/**
 * A client's own request id (its `X-Request-Id`), carried as `correlationId` and echoed in the result:
 * 1–128 printable ASCII characters without spaces. Never a key: the mesh makes its own request id.
 */
export const CORRELATION_ID_PATTERN = /^[!-~]{1,128}$/;

/** A W3C trace context `traceparent` header (version 00): `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`. */
export const TRACEPARENT_PATTERN = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

export function isCorrelationId(value: unknown): value is string {
  return typeof value === 'string' && CORRELATION_ID_PATTERN.test(value);
}

export function isTraceparent(value: unknown): value is string {
  return typeof value === 'string' && TRACEPARENT_PATTERN.test(value) && !/^ff-|-0{32}-|-0{16}-/.test(value);
}
