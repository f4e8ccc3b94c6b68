import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { isRequestId } from '@rsmoe/contracts';
import type { Logger } from '@rsmoe/observability';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import type { HttpRequest, HttpResponse } from './http-types';

/** Header carrying the request id, in both directions. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What the gateway knows about a request from its first byte on. */
export interface RequestContext {
  /** Taken from a valid `X-Request-Id`, else generated (32 hex characters). */
  requestId: string;
  /** When the request arrived (Unix ms): its deadline counts from here. */
  receivedAtMs: number;
}

const contexts = new WeakMap<object, RequestContext>();

/** A new request id: a UUID without dashes (fits REQUEST_ID_PATTERN). */
export function generateRequestId(): string {
  return randomUUID().replaceAll('-', '');
}

/** The request's context; one is made on the spot for a request the middleware never saw. */
export function requestContext(req: object): RequestContext {
  let context = contexts.get(req);
  if (!context) {
    context = { requestId: generateRequestId(), receivedAtMs: Date.now() };
    contexts.set(req, context);
  }
  return context;
}

/** Told when a response is finished: method, route template (`unmatched` when no route matched), status and duration. */
export type HttpObserver = (method: string, route: string, status: number, seconds: number) => void;

/** The route template of a finished request, never its raw path (bounded label values). */
function routeTemplate(req: HttpRequest): string {
  const path = req.route?.path;
  return typeof path === 'string' ? `${req.baseUrl ?? ''}${path}` : 'unmatched';
}

/**
 * First middleware of the app (before body parsing): fixes the request id, echoes it as `X-Request-Id`
 * on every response (errors included), writes one access log line per request. An invalid client id is
 * refused (400 invalid_request_id) under a fresh id, so the error itself can still be traced.
 */
export function requestContextMiddleware(logger: Logger, observe: HttpObserver = () => undefined) {
  return (req: HttpRequest, res: HttpResponse, next: (error?: unknown) => void): void => {
    const offered = req.headers[REQUEST_ID_HEADER];
    const valid = typeof offered === 'string' && isRequestId(offered);
    const context: RequestContext = { requestId: valid ? offered : generateRequestId(), receivedAtMs: Date.now() };
    const started = performance.now();
    contexts.set(req, context);
    res.setHeader('X-Request-Id', context.requestId);
    res.on('finish', () => {
      observe(req.method ?? 'GET', routeTemplate(req), res.statusCode, (performance.now() - started) / 1000);
      const path = req.url?.split('?')[0] ?? '';
      // Probes arrive every few seconds: keep them out of the info log.
      const log = path.startsWith('/v2/health/') ? logger.debug : logger.info;
      log('http request', {
        requestId: context.requestId,
        method: req.method,
        path,
        status: res.statusCode,
        durationMs: Date.now() - context.receivedAtMs,
      });
    });
    if (offered !== undefined && !valid) {
      next(new GatewayError(400, ERROR_CODES.invalidRequestId, 'X-Request-Id must be 1-128 characters of [A-Za-z0-9_-]'));
      return;
    }
    next();
  };
}
