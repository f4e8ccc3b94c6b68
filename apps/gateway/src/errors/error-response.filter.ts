import { Catch, HttpException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Logger } from '@rsmoe/observability';
import type { HttpRequest, HttpResponse } from '../http/http-types';
import { isMultipart } from '../http/multipart-form';
import { requestContext } from '../http/request-context.middleware';
import { ERROR_CODES, GatewayError, type ErrorCode } from './gateway-error';
import { RouterCallError, routerErrorToGatewayError } from './router-status.mapping';
import { StorageUnavailableError } from './storage-errors';

/** The body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId: string; details?: Record<string, unknown> };
}

/** Statuses of errors raised by Nest, Express or body-parser themselves (not by gateway code). */
function fromHttpException(exception: HttpException, req: HttpRequest): GatewayError {
  const status = exception.getStatus();
  const message = exception.message;
  let code: ErrorCode;
  if (status === 413) code = ERROR_CODES.payloadTooLarge;
  else if (status === 404) code = ERROR_CODES.notFound;
  else if (status === 415) code = ERROR_CODES.unsupportedMediaType;
  else if (status === 400 && exception.cause instanceof SyntaxError) code = ERROR_CODES.invalidJson;
  else if (status === 400 && isMultipart(req)) code = ERROR_CODES.invalidMultipart;
  else if (status >= 400 && status < 500) code = ERROR_CODES.badRequest;
  else code = ERROR_CODES.internalError;
  return new GatewayError(status, code, code === ERROR_CODES.internalError ? 'internal error' : message, { cause: exception });
}

/** The HTTP error of anything thrown while serving a request (HTTP-layer exceptions need the request). */
export function gatewayErrorOf(exception: unknown): GatewayError {
  if (exception instanceof GatewayError) return exception;
  if (exception instanceof HttpException && exception.cause instanceof GatewayError) return exception.cause;
  if (exception instanceof RouterCallError) return routerErrorToGatewayError(exception);
  if (exception instanceof StorageUnavailableError) {
    return new GatewayError(503, ERROR_CODES.storageUnavailable, 'the blob or result store is unavailable', { cause: exception });
  }
  return new GatewayError(500, ERROR_CODES.internalError, 'internal error', { cause: exception });
}

/** The body of the error response of `error` for request `requestId`. */
export function errorBodyOf(error: GatewayError, requestId: string): ErrorBody {
  return { error: { code: error.code, message: error.message, requestId, ...(error.details ? { details: error.details } : {}) } };
}

/**
 * The one HTTP exception filter: every error, from validation, the router, Redis, Nest, body parsing, and
 * unknown routes, becomes `{"error": {"code", "message", "requestId"}}` with the request id
 * also in `X-Request-Id`. Unexpected errors are logged and answered as 500 without internals.
 */
@Catch()
export class ErrorResponseFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<HttpRequest>();
    const res = http.getResponse<HttpResponse>();
    const { requestId } = requestContext(req);
    if (req.socket?.destroyed && !(exception instanceof GatewayError)) {
      // The connection is gone (the client went away, or a stalled upload was cut): a body parser's
      // "Request aborted" is no bug, and there is nobody to answer.
      this.logger.debug('the connection closed before the request was read', { requestId, method: req.method, path: req.url?.split('?')[0] });
      res.destroy();
      return;
    }
    const error = this.toGatewayError(exception, req);
    const fields = { requestId, status: error.status, code: error.code, method: req.method, path: req.url?.split('?')[0] };
    // A bug (500) is an error; a dependency being down (502/503) a warning; a client mistake only debug.
    if (error.status === 500) this.logger.error(error.message, { ...fields, error: error.cause ?? exception });
    else if (error.status >= 500) this.logger.warn(error.message, { ...fields, cause: error.cause instanceof Error ? error.cause.message : undefined });
    else this.logger.debug(error.message, fields);
    if (res.headersSent) {
      // Too late for a JSON error (e.g. the client went away mid-response): just end it.
      res.destroy();
      return;
    }
    const body = errorBodyOf(error, requestId);
    res.setHeader('X-Request-Id', requestId);
    for (const [name, value] of Object.entries(error.headers ?? {})) res.setHeader(name, value);
    res.status(error.status).json(body);
  }

  private toGatewayError(exception: unknown, req: HttpRequest): GatewayError {
    // An HttpException wrapping a GatewayError was thrown inside body parsing (e.g. the JSON depth check).
    if (exception instanceof HttpException && !(exception.cause instanceof GatewayError)) return fromHttpException(exception, req);
    return gatewayErrorOf(exception);
  }
}
