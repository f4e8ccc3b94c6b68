/**
 * Trailing metadata of the router's refusals, read by the gateway: the status code says what kind of
 * failure, `reason` says which one, so the gateway never parses the details text.
 */

/** Trailing metadata key naming why a call was refused (one of REFUSAL_REASONS). */
export const REASON_METADATA_KEY = 'reason';

/** Values of the `reason` trailing metadata. */
export const REFUSAL_REASONS = Object.freeze({
  /** UNAVAILABLE: the router is up, but no routed expert has a live worker (the details name them). */
  expertsUnavailable: 'experts_unavailable',
  /** NOT_FOUND: an image of the request is not (or no longer) in the blob store. */
  imageMissing: 'image_missing',
  /** FAILED_PRECONDITION: no expert of the loaded pack serves the task (the details name the tasks it serves). */
  taskNotSupported: 'task_not_supported',
} as const);

export type RefusalReason = (typeof REFUSAL_REASONS)[keyof typeof REFUSAL_REASONS];
