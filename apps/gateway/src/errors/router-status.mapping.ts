import { status as GrpcStatus } from '@grpc/grpc-js';
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
    options?: { cause?: unknown },
  ) {
    super(`router call failed: ${GrpcStatus[grpcCode] ?? grpcCode}: ${details}`, options);
  }
}

interface HttpMapping {
  status: number;
  code: ErrorCode;
  /** Whether the router's details may be shown to the client (input problems: yes; internals: no). */
  exposeDetails: boolean;
}

/** The one gRPC → HTTP status table of the gateway. Anything not listed is a 502 router_error. */
const GRPC_TO_HTTP: ReadonlyMap<GrpcStatus, HttpMapping> = new Map([
  [GrpcStatus.DEADLINE_EXCEEDED, { status: 408, code: ERROR_CODES.deadlineExceeded, exposeDetails: false }],
  [GrpcStatus.UNAVAILABLE, { status: 503, code: ERROR_CODES.routerUnavailable, exposeDetails: false }],
  [GrpcStatus.INVALID_ARGUMENT, { status: 400, code: ERROR_CODES.invalidArgument, exposeDetails: true }],
  [GrpcStatus.NOT_FOUND, { status: 404, code: ERROR_CODES.notFound, exposeDetails: true }],
  [GrpcStatus.RESOURCE_EXHAUSTED, { status: 429, code: ERROR_CODES.overloaded, exposeDetails: true }],
]);

const DEFAULT_MAPPING: HttpMapping = { status: 502, code: ERROR_CODES.routerError, exposeDetails: false };

const MESSAGES: Partial<Record<ErrorCode, string>> = {
  [ERROR_CODES.deadlineExceeded]: 'the request deadline passed before the result was ready',
  [ERROR_CODES.routerUnavailable]: 'the router is unavailable',
  [ERROR_CODES.routerError]: 'the router failed',
};

/** The HTTP error for a failed router call. */
export function routerErrorToGatewayError(error: RouterCallError): GatewayError {
  const mapping = GRPC_TO_HTTP.get(error.grpcCode) ?? DEFAULT_MAPPING;
  const base = MESSAGES[mapping.code] ?? 'the router refused the request';
  const statusName = GrpcStatus[error.grpcCode] ?? String(error.grpcCode);
  const message = mapping.exposeDetails && error.details ? `${base}: ${error.details}` : `${base} (${statusName})`;
  return new GatewayError(mapping.status, mapping.code, message, { cause: error });
}
