import type { Logger } from '@rsmoe/observability';
import type { Admission, AdmissionOutcome, ApiKeyIdentity, ApiKeyLimiter, QuotaState } from '../adapters/api-key-limiter.adapter';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import { retryAfterSeconds } from '../errors/router-status.mapping';
import { runsTaskFromBody, taskOfPath } from '../inference/task-routes';
import { closeAfterAnswer, REFUSED_BODY_DRAIN_MS, type DeclaredBodyLimits } from './edge-guards.middleware';
import type { HttpRequest, HttpResponse } from './http-types';
import { isPlaygroundPath } from '../playground/playground.controller';

/** Header a client may send its key in instead of `Authorization: Bearer <key>`. */
export const API_KEY_HEADER = 'x-api-key';

/** Response headers of the rate limit (IETF draft `RateLimit` header fields), for CORS' exposed headers. */
export const RATE_LIMIT_HEADERS = ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'] as const;

/** The `key` label of a request that came with no known key (names start with a letter or digit). */
export const UNKNOWN_KEY_LABEL = '-';

/** Told of every decision on a request that needed a key: the key's name (never the key) and the outcome. */
export type ApiKeyObserver = (keyName: string, outcome: AdmissionOutcome) => void;

/** Paths that need no key: health probes, the API docs and the playground's files (metrics are served on their own port). */
function isPublicPath(path: string): boolean {
  return path.startsWith('/v2/health/') || path === '/docs' || path.startsWith('/docs/') || path === '/docs-json' || isPlaygroundPath(path);
}

const identities = new WeakMap<object, ApiKeyIdentity>();

/** The key a request was admitted with; undefined when AUTH_MODE=off or on a public route. */
export function apiKeyOf(req: object): ApiKeyIdentity | undefined {
  return identities.get(req);
}

/** The key sent as `Authorization: Bearer <key>` or `X-API-Key: <key>` (the first wins when both are sent). */
function offeredKey(req: HttpRequest): string | undefined {
  const authorization = req.headers.authorization;
  const bearer = typeof authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
  if (bearer !== undefined) return bearer;
  const header = req.headers[API_KEY_HEADER];
  const value = typeof header === 'string' ? header.trim() : undefined;
  return value === '' ? undefined : value;
}

function setRateLimitHeaders(res: HttpResponse, state: { limit: number; remaining: number; resetSeconds: number }): void {
  res.setHeader('RateLimit-Limit', String(state.limit));
  res.setHeader('RateLimit-Remaining', String(Math.max(0, state.remaining)));
  res.setHeader('RateLimit-Reset', String(Math.max(0, state.resetSeconds)));
}

/** `RateLimit-*` of a quota refusal describe the quota; of anything else, the token bucket. */
function quotaHeaderState(quota: QuotaState): { limit: number; remaining: number; resetSeconds: number } {
  return { limit: quota.limit, remaining: quota.limit - quota.used, resetSeconds: quota.resetSeconds };
}

function refusal(admission: Exclude<Admission, { outcome: 'admitted' }>, task: string | undefined): GatewayError {
  switch (admission.outcome) {
    case 'unauthenticated':
      return new GatewayError(401, ERROR_CODES.unauthenticated, 'a valid API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`', {
        headers: { 'WWW-Authenticate': 'Bearer' },
      });
    case 'forbidden':
      return new GatewayError(403, ERROR_CODES.forbidden, `API key "${admission.key.name}" may not run ${task ?? 'this'} requests`);
    case 'rate_limited': {
      const seconds = retryAfterSeconds(admission.retryAfterMs);
      return new GatewayError(429, ERROR_CODES.rateLimited, `API key "${admission.key.name}" is over its rate limit; retry after ${seconds} s`, {
        headers: { 'Retry-After': String(seconds) },
        details: { retryAfterMs: admission.retryAfterMs },
      });
    }
    case 'quota_exceeded': {
      const seconds = retryAfterSeconds(admission.retryAfterMs);
      return new GatewayError(
        429,
        ERROR_CODES.quotaExceeded,
        `API key "${admission.key.name}" has used its daily quota of ${admission.quota.limit} images; it resets at 00:00 UTC (in ${seconds} s)`,
        { headers: { 'Retry-After': String(seconds) }, details: { dailyQuota: admission.quota.limit, used: admission.quota.used } },
      );
    }
  }
}

export interface ApiKeyMiddlewareOptions {
  limiter: ApiKeyLimiter;
  /** Body limits of the inference routes: a refused request's body is drained up to them, then the connection closed. */
  bodyLimits: DeclaredBodyLimits;
  logger: Logger;
  observe?: ApiKeyObserver;
  /** Longest drain of a refused request's body, in ms. */
  drainMs?: number;
}

/**
 * AUTH_MODE=required, before the body is read (so a refused request is never parsed): the API key
 * (401 `unauthenticated`), the route's task against the key's tasks (403 `forbidden`), then one token of
 * the key's bucket and, for an inference route, one image of its daily quota (429 `rate_limited` /
 * `quota_exceeded` with `Retry-After`), in one atomic Redis step shared by every replica. Every decided
 * answer carries `RateLimit-Limit` / `-Remaining` / `-Reset` (the bucket; the quota on `quota_exceeded`).
 * A refused request's connection closes after the answer (its body drained, bounded). The image of an
 * admitted request answered with an error is given back to the quota: only processed images count.
 */
export function apiKeyMiddleware(options: ApiKeyMiddlewareOptions) {
  const { limiter, bodyLimits, logger, observe = () => undefined, drainMs = REFUSED_BODY_DRAIN_MS } = options;
  return (req: HttpRequest, res: HttpResponse, next: (error?: unknown) => void): void => {
    const path = req.url?.split('?')[0] ?? '';
    if (req.method === 'OPTIONS' || isPublicPath(path)) {
      next();
      return;
    }
    const refuse = (error: unknown): void => {
      closeAfterAnswer(req, res, bodyLimits, drainMs);
      next(error);
    };
    const secret = offeredKey(req);
    if (secret === undefined) {
      observe(UNKNOWN_KEY_LABEL, 'unauthenticated');
      refuse(refusal({ outcome: 'unauthenticated' }, undefined));
      return;
    }
    const task = req.method === 'POST' ? taskOfPath(req.url) : undefined;
    const inference = task !== undefined || (req.method === 'POST' && runsTaskFromBody(req.url));
    limiter.admit(secret, { ...(task !== undefined ? { task } : {}), images: inference ? 1 : 0 }).then(
      (admission) => {
        observe(admission.outcome === 'unauthenticated' ? UNKNOWN_KEY_LABEL : admission.key.name, admission.outcome);
        if (admission.outcome === 'admitted') {
          setRateLimitHeaders(res, admission.bucket);
          identities.set(req, admission.key);
          const charged = admission.charged;
          if (charged) {
            res.once('finish', () => {
              if (res.statusCode >= 400) {
                limiter.refund(charged).catch((error: unknown) => logger.warn('giving back a quota image failed', { key: admission.key.name, error }));
              }
            });
          }
          next();
          return;
        }
        if (admission.outcome === 'rate_limited') setRateLimitHeaders(res, admission.bucket);
        if (admission.outcome === 'quota_exceeded') setRateLimitHeaders(res, quotaHeaderState(admission.quota));
        refuse(refusal(admission, task));
      },
      // Redis away: 503 storage_unavailable, the body unread as for any refusal.
      (error: unknown) => refuse(error),
    );
  };
}
