import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { isRequestId, isTraceparent } from '@rsmoe/contracts';
import type { Logger } from '@rsmoe/observability';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import type { HttpRequest, HttpResponse } from './http-types';

/** Response header carrying the mesh's request id (always generated here, never taken from the client). */
export const REQUEST_ID_HEADER = 'x-request-id';
/** Header carrying the client's own id for a request, in both directions; it is echoed, never used as a key. */
export const CORRELATION_ID_HEADER = 'x-correlation-id';
/** W3C trace context header, in both directions. */
export const TRACEPARENT_HEADER = 'traceparent';

/** What the gateway knows about a request from its first byte on. */
export interface RequestContext {
  /**
   * The mesh's id of the request: 32 hex characters from 16 random bytes, made here for every request.
   * It keys the stored result, so it is unguessable and never chosen by a client.
   */
  requestId: string;
  /**
   * The client's own id (`X-Correlation-Id`, else `X-Request-Id`; 1–128 of [A-Za-z0-9_-]), echoed as
   * `X-Correlation-Id` and in the result as `correlationId`. Two requests may share one.
   */
  correlationId?: string;
  /**
   * W3C `traceparent` of the gateway's span: the client's trace id (a new one when it sent no valid
   * header) and a new span id; forwarded to the router as gRPC metadata and returned in the response.
   */
  traceparent: string;
  /** When the request arrived (Unix ms): its deadline counts from here. */
  receivedAtMs: number;
}

const contexts = new WeakMap<object, RequestContext>();

/** A new mesh request id: 128 random bits as 32 lower-case hex characters (fits REQUEST_ID_PATTERN). */
export function generateRequestId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The gateway's span in the client's trace: same trace id and flags, a new parent id. An absent or
 * invalid header starts a new sampled trace (W3C: a bad traceparent is ignored, never an error).
 */
export function childTraceparent(offered: unknown): string {
  const span = randomBytes(8).toString('hex');
  if (isTraceparent(offered)) {
    const [, traceId, , flags] = offered.split('-');
    return `00-${traceId}-${span}-${flags}`;
  }
  return `00-${randomBytes(16).toString('hex')}-${span}-01`;
}

/** The request's context; one is made on the spot for a request the middleware never saw. */
export function requestContext(req: object): RequestContext {
  let context = contexts.get(req);
  if (!context) {
    context = { requestId: generateRequestId(), traceparent: childTraceparent(undefined), receivedAtMs: Date.now() };
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
 * The client's correlation id: `X-Correlation-Id` when sent, else `X-Request-Id` (what clients used to
 * send as their own id). A header sent twice arrives as one comma-joined value and is refused.
 */
function offeredCorrelationId(req: HttpRequest): { header: string; value: string } | undefined {
  for (const header of [CORRELATION_ID_HEADER, REQUEST_ID_HEADER]) {
    const value = req.headers[header];
    if (value !== undefined) return { header, value: Array.isArray(value) ? value.join(',') : value };
  }
  return undefined;
}

const HEADER_NAMES: Record<string, string> = { [CORRELATION_ID_HEADER]: 'X-Correlation-Id', [REQUEST_ID_HEADER]: 'X-Request-Id' };

/**
 * First middleware of the app (before body parsing): makes the mesh request id and sends it as
 * `X-Request-Id` on every response (errors included), echoes a valid client id as `X-Correlation-Id`,
 * writes one access log line per request. An invalid client id is refused (400, the message names the
 * header) under the fresh mesh id, so the error itself can still be traced.
 */
export function requestContextMiddleware(logger: Logger, observe: HttpObserver = () => undefined) {
  return (req: HttpRequest, res: HttpResponse, next: (error?: unknown) => void): void => {
    const offered = offeredCorrelationId(req);
    const valid = offered !== undefined && isRequestId(offered.value);
    const context: RequestContext = {
      requestId: generateRequestId(),
      ...(valid ? { correlationId: offered.value } : {}),
      traceparent: childTraceparent(req.headers[TRACEPARENT_HEADER]),
      receivedAtMs: Date.now(),
    };
    const started = performance.now();
    contexts.set(req, context);
    res.setHeader('X-Request-Id', context.requestId);
    if (context.correlationId !== undefined) res.setHeader('X-Correlation-Id', context.correlationId);
    res.setHeader('traceparent', context.traceparent);
    res.on('finish', () => {
      observe(req.method ?? 'GET', routeTemplate(req), res.statusCode, (performance.now() - started) / 1000);
      const path = req.url?.split('?')[0] ?? '';
      // Probes arrive every few seconds: keep them out of the info log.
      const log = path.startsWith('/v2/health/') ? logger.debug : logger.info;
      log('http request', {
        requestId: context.requestId,
        ...(context.correlationId !== undefined ? { correlationId: context.correlationId } : {}),
        traceparent: context.traceparent,
        method: req.method,
        path,
        status: res.statusCode,
        durationMs: Date.now() - context.receivedAtMs,
      });
    });
    if (offered !== undefined && !valid) {
      const code = offered.header === CORRELATION_ID_HEADER ? ERROR_CODES.invalidCorrelationId : ERROR_CODES.invalidRequestId;
      next(new GatewayError(400, code, `${HEADER_NAMES[offered.header]} must be 1-128 characters of [A-Za-z0-9_-]`));
      return;
    }
    next();
  };
}
