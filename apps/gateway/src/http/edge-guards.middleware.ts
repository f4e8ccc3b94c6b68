import type { Task } from '@rsmoe/contracts';
import { ERROR_CODES, GatewayError, type ErrorCode } from '../errors/gateway-error';
import { retryAfterSeconds } from '../errors/router-status.mapping';
import type { OverloadGate } from '../inference/overload-gate';
import type { HttpRequest, HttpResponse } from './http-types';
import { requestContext } from './request-context.middleware';

type Next = (error?: unknown) => void;

/** Whether the request announces a body (a length above 0, or chunked). */
function announcesBody(req: HttpRequest): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * A stalled upload is cut off: when no byte of the body arrives for `idleMs`, the request is answered
 * 408 `body_timeout` and its connection closed (Node's own requestTimeout bounds the whole request; this
 * bounds each pause). The timer lives only while the body is being received.
 */
export function bodyIdleTimeoutMiddleware(idleMs: number) {
  return (req: HttpRequest, res: HttpResponse, next: Next): void => {
    if (req.complete || !announcesBody(req)) {
      next();
      return;
    }
    const onIdle = (): void => {
      clear();
      const socket = req.socket;
      if (res.headersSent) {
        socket.destroy();
        return;
      }
      const body = JSON.stringify({
        error: {
          code: ERROR_CODES.bodyTimeout satisfies ErrorCode,
          message: `no part of the request body arrived for ${idleMs} ms`,
          requestId: requestContext(req).requestId,
        },
      });
      res.writeHead(408, { 'content-type': 'application/json; charset=utf-8', connection: 'close', 'content-length': Buffer.byteLength(body) });
      res.end(body, () => socket.destroy());
    };
    const clear = (): void => {
      req.removeListener('timeout', onIdle);
      req.removeListener('end', clear);
      res.removeListener('finish', clear);
      res.removeListener('close', clear);
      // Back to no inactivity timeout: the answer may legitimately take the whole request deadline.
      if (!req.socket.destroyed) req.socket.setTimeout(0);
    };
    req.setTimeout(idleMs, onIdle);
    req.once('end', clear);
    res.once('finish', clear);
    res.once('close', clear);
    next();
  };
}

const TASK_ROUTES: Readonly<Record<string, Task>> = { '/v1/captions': 'caption', '/v1/vqa': 'vqa' };

/** Longest a refused request's body is read off (and discarded) before its connection is closed, in ms. */
export const REFUSED_BODY_DRAIN_MS = 2_000;

/**
 * While the router's last refusal of a task still holds (OverloadGate), a new request of that task is
 * answered 429 `overloaded` with `Retry-After` and `Connection: close` before its body is read. The body
 * is then drained (discarded, never buffered) before the connection closes, so that a client still uploading
 * reads the 429 instead of a reset: closing a socket with unread bytes sends an RST, which can also throw
 * away the answer already sent. The drain is bounded by the body limit of the request's encoding and by
 * `drainMs`; a body declared over the limit is not drained.
 */
export function overloadGateMiddleware(gate: OverloadGate, limits: DeclaredBodyLimits, drainMs = REFUSED_BODY_DRAIN_MS) {
  return (req: HttpRequest, res: HttpResponse, next: Next): void => {
    const task = req.method === 'POST' ? TASK_ROUTES[req.url?.split('?')[0] ?? ''] : undefined;
    const left = task === undefined ? undefined : gate.retryAfterMs(task);
    if (task === undefined || left === undefined) {
      next();
      return;
    }
    const seconds = retryAfterSeconds(left);
    closeAfterAnswer(req, res, limits, drainMs);
    next(
      new GatewayError(429, ERROR_CODES.overloaded, `the mesh is overloaded for ${task} requests; retry after ${seconds} s`, {
        headers: { 'Retry-After': String(seconds) },
        details: { retryAfterMs: left },
      }),
    );
  };
}

/**
 * For a request answered before its body was read (the answer follows through `next(error)`): the
 * connection closes after the answer (`Connection: close`), once the body is drained (discarded, never
 * buffered) up to the limit of its encoding and `drainMs`, so that a client still uploading reads the
 * answer instead of a reset. A body declared over its limit is not drained.
 */
export function closeAfterAnswer(req: HttpRequest, res: HttpResponse, limits: DeclaredBodyLimits, drainMs = REFUSED_BODY_DRAIN_MS): void {
  res.setHeader('Connection', 'close');
  lingerUntilDrained(req, bodyLimitOf(req, limits) ?? limits.json, drainMs);
}

/**
 * A lingering close for a request answered before its body was read: the body is read off and discarded,
 * and the close Node makes after a `Connection: close` answer (socket.destroySoon) waits until the body has
 * ended. Past `maxBytes` read or `maxMs`, the socket is destroyed as it stands.
 */
function lingerUntilDrained(req: HttpRequest, maxBytes: number, maxMs: number): void {
  const declared = Number(req.headers['content-length']);
  if (req.complete || !announcesBody(req) || (Number.isFinite(declared) && declared > maxBytes)) return;
  const socket = req.socket;
  let read = 0;
  let drained = false;
  let closeWanted = false;
  let done = false;
  const finish = (close: () => void): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    req.removeListener('data', onData);
    socket.removeListener('close', onSocketClose);
    // Back to the prototype's destroySoon.
    delete (socket as { destroySoon?: unknown }).destroySoon;
    close();
  };
  const maybeClose = (): void => {
    if (drained && closeWanted) finish(() => socket.destroySoon());
  };
  const onData = (chunk: Buffer): void => {
    read += chunk.length;
    if (read > maxBytes) finish(() => socket.destroy());
  };
  const onSocketClose = (): void => finish(() => undefined);
  const timer = setTimeout(() => finish(() => socket.destroy()), maxMs);
  timer.unref();
  socket.destroySoon = (): void => {
    closeWanted = true;
    maybeClose();
  };
  req.on('data', onData);
  req.once('end', () => {
    drained = true;
    maybeClose();
  });
  socket.once('close', onSocketClose);
}

/** Largest declared body per encoding of the inference routes, in bytes. */
export interface DeclaredBodyLimits {
  /** A JSON body (MAX_JSON_BODY_BYTES). */
  json: number;
  /** A multipart body: the image limit plus room for the text fields and part headers. */
  multipart: number;
  /** `POST /v1/scenes`, any encoding: the scene limit (MAX_SCENE_BYTES) plus room for the fields; absent: no scene route. */
  scene?: number;
}

/**
 * A body whose Content-Length already exceeds its limit is answered 413 at once, before a byte of it is
 * read or parsed (body-parser and the multipart reader would first read it all off). The connection is not cut: a client
 * still uploading then reads a clean 413 instead of a reset, while Node discards the rest of the body
 * (never buffered), within REQUEST_BODY_TIMEOUT_MS.
 */
export function declaredBodySizeMiddleware(limits: DeclaredBodyLimits) {
  return (req: HttpRequest, res: HttpResponse, next: Next): void => {
    const declared = Number(req.headers['content-length']);
    const type = String(req.headers['content-type'] ?? '');
    const limit = bodyLimitOf(req, limits);
    if (req.method !== 'POST' || limit === undefined || !Number.isFinite(declared) || declared <= limit) {
      next();
      return;
    }
    next(new GatewayError(413, ERROR_CODES.payloadTooLarge, `a body of ${declared} bytes exceeds the limit of ${limit} bytes for ${type.split(';')[0]}`));
  };
}

/** The body limit of the request's encoding (multipart or JSON); undefined for any other content type. */
function bodyLimitOf(req: HttpRequest, limits: DeclaredBodyLimits): number | undefined {
  if (limits.scene !== undefined && (req.url ?? '').split('?')[0]!.toLowerCase().replace(/\/+$/, '') === '/v1/scenes') return limits.scene;
  const type = String(req.headers['content-type'] ?? '');
  return /^multipart\//i.test(type) ? limits.multipart : /^application\/([\w.+-]*\+)?json/i.test(type) ? limits.json : undefined;
}
