import { status as GrpcStatus } from '@grpc/grpc-js';
import { REFUSAL_REASONS } from '@rsmoe/contracts';
import { ERROR_CODES, GatewayError, type ErrorCode } from './gateway-error';

/**
 * A router call ended with a non-OK gRPC status. Thrown by every RouterPort implementation (the
 * grpc-js adapter and test fakes alike), so that the status is mapped to HTTP in exactly one place
 * ({@link routerErrorToGatewayError}, used by the exception filter).
 */
export class RouterCallError extends Error {
  override readonly name = 'RouterCallError';

  constructor(
    /** The gRPC status code (`@grpc/grpc-js` `status`). */
    readonly grpcCode: GrpcStatus,
    /** The status details sent by the router (or written by the client library). */
    readonly details: string,
    options?: {
      cause?: unknown;
      /** The router's `retry-after-ms` trailing metadata (a RESOURCE_EXHAUSTED refusal), in ms. */
      retryAfterMs?: number;
      /** The router's `reason` trailing metadata (REFUSAL_REASONS), when it sent one. */
      reason?: string;
    },
  ) {
    super(`router call failed: ${GrpcStatus[grpcCode] ?? grpcCode}: ${details}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterMs = options?.retryAfterMs;
    this.reason = options?.reason;
  }

  /** When the router asks the client to come back, in ms from now (RESOURCE_EXHAUSTED only). */
  readonly retryAfterMs: number | undefined;
  /** Which refusal of its status this is (e.g. `experts_unavailable` of an UNAVAILABLE); undefined when not said. */
  readonly reason: string | undefined;
}

/** Prefix of the router's INVALID_ARGUMENT details when every expert failed to decode the image. */
export const IMAGE_UNUSABLE_PREFIX = 'the image cannot be used';

/** Retry-After of an overload refusal that names no time, in ms. */
export const DEFAULT_RETRY_AFTER_MS = 1_000;

/** `Retry-After` in whole seconds, rounded up, at least 1. */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}

/**
 * grpc-js refuses a message over its size limit with RESOURCE_EXHAUSTED too; that is the request's size,
 * not the mesh's load, and its text is internal.
 */
function isMessageSizeError(error: RouterCallError): boolean {
  return error.grpcCode === GrpcStatus.RESOURCE_EXHAUSTED && /message larger than max/i.test(error.details);
}

interface HttpMapping {
  status: number;
  code: ErrorCode;
  /** Whether the router's details may be shown to the client (input problems: yes; internals: no). */
  exposeDetails: boolean;
}

/**
 * The one gRPC → HTTP status table of the gateway (RESOURCE_EXHAUSTED, an unusable image and UNAVAILABLE
 * with reason `experts_unavailable` are special cases in routerErrorToGatewayError). Anything not listed is a 502 router_error.
 */
const GRPC_TO_HTTP: ReadonlyMap<GrpcStatus, HttpMapping> = new Map([
  [GrpcStatus.DEADLINE_EXCEEDED, { status: 408, code: ERROR_CODES.deadlineExceeded, exposeDetails: false }],
  [GrpcStatus.UNAVAILABLE, { status: 503, code: ERROR_CODES.routerUnavailable, exposeDetails: false }],
  [GrpcStatus.INVALID_ARGUMENT, { status: 400, code: ERROR_CODES.invalidArgument, exposeDetails: true }],
  [GrpcStatus.NOT_FOUND, { status: 404, code: ERROR_CODES.notFound, exposeDetails: true }],
]);

const DEFAULT_MAPPING: HttpMapping = { status: 502, code: ERROR_CODES.routerError, exposeDetails: false };

const MESSAGES: Partial<Record<ErrorCode, string>> = {
  [ERROR_CODES.deadlineExceeded]: 'the request deadline passed before the result was ready',
  [ERROR_CODES.routerUnavailable]: 'the router is unavailable',
  [ERROR_CODES.routerError]: 'the router failed',
};

/** The HTTP error for a failed router call. */
export function routerErrorToGatewayError(error: RouterCallError): GatewayError {
  if (error.grpcCode === GrpcStatus.INVALID_ARGUMENT && error.details.startsWith(IMAGE_UNUSABLE_PREFIX)) {
    return new GatewayError(422, ERROR_CODES.invalidImage, error.details, { cause: error });
  }
  if (isMessageSizeError(error)) {
    return new GatewayError(413, ERROR_CODES.payloadTooLarge, 'the request is too large to forward', { cause: error });
  }
  if (error.grpcCode === GrpcStatus.UNAVAILABLE && error.reason === REFUSAL_REASONS.expertsUnavailable) {
    // The router itself answered: its details name the experts that are down (no internals in them).
    return new GatewayError(503, ERROR_CODES.expertsUnavailable, `no expert for this request is available: ${error.details}`, {
      cause: error,
      headers: { 'Retry-After': String(retryAfterSeconds(DEFAULT_RETRY_AFTER_MS)) },
    });
  }
  if (error.grpcCode === GrpcStatus.FAILED_PRECONDITION && error.reason === REFUSAL_REASONS.taskNotSupported) {
    // The router's details name the task and the tasks the pack serves (no internals in them).
    return new GatewayError(422, ERROR_CODES.taskNotSupported, error.details, { cause: error });
  }
  if (error.grpcCode === GrpcStatus.RESOURCE_EXHAUSTED) {
    const retryAfterMs = error.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS;
    const seconds = retryAfterSeconds(retryAfterMs);
    const why = error.details ? `: ${error.details}` : '';
    return new GatewayError(429, ERROR_CODES.overloaded, `the mesh is overloaded${why}; retry after ${seconds} s`, {
      cause: error,
      headers: { 'Retry-After': String(seconds) },
      details: { retryAfterMs },
    });
  }
  const mapping = GRPC_TO_HTTP.get(error.grpcCode) ?? DEFAULT_MAPPING;
  const base = MESSAGES[mapping.code] ?? 'the router refused the request';
  const statusName = GrpcStatus[error.grpcCode] ?? String(error.grpcCode);
  const message = mapping.exposeDetails && error.details ? `${base}: ${error.details}` : `${base} (${statusName})`;
  return new GatewayError(mapping.status, mapping.code, message, { cause: error });
}
