import { ConfigError, env, parseEnv, sharedServiceEnv, type Env } from '@rsmoe/config';
import { DEFAULT_GENERATION_PARAM_LIMITS } from '@rsmoe/contracts';
import { z } from 'zod';
import { sceneGatewayEnv } from './scenes/scene-config';

/** A comma-separated list of origins (`https://a.example,https://b.example`); empty or `off`: none. */
const originList = () =>
  z
    .string()
    .default('')
    .transform((text) => (text.trim() === 'off' ? [] : text.split(',').map((origin) => origin.trim()).filter((origin) => origin !== '')))
    .refine((origins) => origins.every((origin) => origin === '*' || /^https?:\/\/[^/\s,]+$/.test(origin)), {
      message: 'must be a comma-separated list of origins (scheme://host[:port]) or *',
    });

/**
 * Every setting of the gateway, from its environment; defaults live here and only here. Read once in
 * main.ts and injected (GATEWAY_CONFIG); nothing else reads process.env.
 */
export function loadGatewayConfig(source: Env) {
  const config = parseEnv(
    'gateway',
    {
      ...sharedServiceEnv(),
      /** HTTP port (0 picks a free one). Default 8080. */
      PORT: env.integer(8080, 0, 65_535),
      /** Interface the HTTP server binds to. Default all interfaces. */
      HOST: env.string('0.0.0.0'),
      /** The router's gRPC address, `host:port`. Default 127.0.0.1:50051. */
      ROUTER_URL: env.string('127.0.0.1:50051'),
      /** Largest accepted encoded image, in bytes. Default 32 MiB. */
      MAX_IMAGE_BYTES: env.integer(32 * 1024 * 1024, 1, 1024 * 1024 * 1024),
      /** Largest accepted width × height, read from the image header (never decoded here). Default 64 000 000. */
      MAX_IMAGE_PIXELS: env.integer(64_000_000, 1),
      /** Longest accepted question, in characters (code points). Default 500. */
      MAX_QUESTION_CHARS: env.integer(500, 1, 100_000),
      /** Deadline of a request when the client asks for none, in ms. Default 30 000. */
      REQUEST_TIMEOUT_MS: env.integer(30_000, 1),
      /** Longest deadline a client may ask for (`timeoutMs` / `X-Request-Timeout-Ms`), in ms. Default 120 000. */
      MAX_REQUEST_TIMEOUT_MS: env.integer(120_000, 1),
      /** The same two for segmentation and changes, whose masks are long text (LONG_TASKS). Defaults 300 000 and 1 800 000. */
      LONG_TASK_TIMEOUT_MS: env.integer(300_000, 1),
      MAX_LONG_TASK_TIMEOUT_MS: env.integer(1_800_000, 1),
      /** How long the answer of an asynchronous request (`Prefer: respond-async`) can be read, in seconds. Default 3600. */
      ASYNC_ANSWER_TTL_S: env.integer(3_600, 1),
      /** Most asynchronous requests this gateway runs at once; more are refused with 429. Default 256. */
      MAX_ASYNC_IN_FLIGHT: env.integer(256, 1, 100_000),
      /** Lifetime of stored image bytes in the blob store, in seconds. Default 900. */
      BLOB_TTL_S: env.integer(900, 1),
      /** Deadline of each readiness probe (Redis PING, router health check) and of ListExperts' health part, in ms. Default 2000. */
      READY_CHECK_TIMEOUT_MS: env.integer(2_000, 1, 60_000),
      /** How long SIGTERM waits for in-flight requests before closing their connections, in ms. Default 30 000. */
      SHUTDOWN_TIMEOUT_MS: env.integer(30_000, 0),
      /** Largest JSON body (`application/json`, base64 images included), in bytes; refused by size before parsing. Multipart has its own limits. Default 1 MiB. */
      MAX_JSON_BODY_BYTES: env.integer(1024 * 1024, 1024, 1024 * 1024 * 1024),
      /** Longest wait for a request's headers, in ms (slow-header clients are cut off). Default 10 000. */
      HEADERS_TIMEOUT_MS: env.integer(10_000, 100, 600_000),
      /** Longest time to receive a whole request (headers and body), in ms; answered 408 by Node when passed. Default 60 000. */
      REQUEST_BODY_TIMEOUT_MS: env.integer(60_000, 100, 3_600_000),
      /** Longest pause in a request body's bytes, in ms: a stalled upload is answered 408 body_timeout and its connection closed. Default 10 000. */
      BODY_IDLE_TIMEOUT_MS: env.integer(10_000, 100, 600_000),
      /** Most concurrent TCP connections of the HTTP server (further ones are closed at once). Default 1024. */
      MAX_CONNECTIONS: env.integer(1024, 1, 1_000_000),
      /**
       * `required` (default; what Kubernetes runs): every route but health and docs needs an API key
       * (`Authorization: Bearer <key>` or `X-API-Key`), with its rate limit, daily quota and tasks; results
       * are answered only to the key that made the request. `off`: no keys, no limits (`rsmoe start`'s default).
       */
      AUTH_MODE: env.oneOf(['required', 'off'] as const, 'required'),
      /** How long the router and aggregator keep a result, in seconds (their RESULT_TTL_S): a request's owner is kept as long. Default 3600. */
      RESULT_TTL_S: env.integer(3_600, 1),
      /** Origins allowed by CORS, comma-separated (`*` for any); empty (default) or `off`: no CORS headers at all. */
      CORS_ORIGINS: originList(),
      /** Largest `params.maxNewTokens`; at most the experts' own limit (512). Default 512. */
      MAX_NEW_TOKENS: env.integer(DEFAULT_GENERATION_PARAM_LIMITS.maxNewTokens, 1, DEFAULT_GENERATION_PARAM_LIMITS.maxNewTokens),
      /** Largest `params.numBeams`; at most the experts' own limit (8). Default 8. */
      MAX_BEAMS: env.integer(DEFAULT_GENERATION_PARAM_LIMITS.maxBeams, 1, DEFAULT_GENERATION_PARAM_LIMITS.maxBeams),
      /** Most `params.stopStrings` entries; at most the experts' own limit (16). Default 16. */
      MAX_STOP_STRINGS: env.integer(DEFAULT_GENERATION_PARAM_LIMITS.maxStopStrings, 0, DEFAULT_GENERATION_PARAM_LIMITS.maxStopStrings),
      /** Most characters of all `params.stopStrings` together; at most the experts' own limit (1024). Default 1024. */
      MAX_STOP_STRINGS_CHARS: env.integer(DEFAULT_GENERATION_PARAM_LIMITS.maxStopStringsChars, 0, DEFAULT_GENERATION_PARAM_LIMITS.maxStopStringsChars),
      /** Whole scenes (POST /v1/scenes): scenes/scene-config.ts. */
      ...sceneGatewayEnv(),
    },
    source,
  );
  const problems: string[] = [];
  if (config.LONG_TASK_TIMEOUT_MS > config.MAX_LONG_TASK_TIMEOUT_MS) {
    problems.push(`LONG_TASK_TIMEOUT_MS=${config.LONG_TASK_TIMEOUT_MS}: must not exceed MAX_LONG_TASK_TIMEOUT_MS=${config.MAX_LONG_TASK_TIMEOUT_MS}`);
  }
  if (config.REQUEST_TIMEOUT_MS > config.MAX_REQUEST_TIMEOUT_MS) {
    problems.push(`REQUEST_TIMEOUT_MS=${config.REQUEST_TIMEOUT_MS}: must not exceed MAX_REQUEST_TIMEOUT_MS=${config.MAX_REQUEST_TIMEOUT_MS}`);
  }
  // Node swaps the two when headers may take longer than the whole request: refuse that instead.
  if (config.HEADERS_TIMEOUT_MS > config.REQUEST_BODY_TIMEOUT_MS) {
    problems.push(`HEADERS_TIMEOUT_MS=${config.HEADERS_TIMEOUT_MS}: must not exceed REQUEST_BODY_TIMEOUT_MS=${config.REQUEST_BODY_TIMEOUT_MS}`);
  }
  if (problems.length > 0) throw new ConfigError('gateway', problems);
  return config;
}

export type GatewayConfig = ReturnType<typeof loadGatewayConfig>;
