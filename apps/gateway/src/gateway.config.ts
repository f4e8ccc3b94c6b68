import { ConfigError, env, parseEnv, type Env } from '@rsmoe/config';

/**
 * Every setting of the gateway, from its environment; defaults live here and only here. Read once in
 * main.ts and injected (GATEWAY_CONFIG); nothing else reads process.env.
 */
export function loadGatewayConfig(source: Env) {
  const config = parseEnv(
    'gateway',
    {
      /** HTTP port (0 picks a free one). Default 8080. */
      PORT: env.integer(8080, 0, 65_535),
      /** Interface the HTTP server binds to. Default all interfaces. */
      HOST: env.string('0.0.0.0'),
      REDIS_URL: env.redisUrl(),
      /** Prefix of the mesh's own Redis keys (blobs, results). Default `rsmoe`. */
      KEY_PREFIX: env.keyPrefix(),
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
      /** Lifetime of stored image bytes in the blob store, in seconds. Default 900. */
      BLOB_TTL_S: env.integer(900, 1),
      /** Deadline of each readiness probe (Redis PING, router health check) and of ListExperts' health part, in ms. Default 2000. */
      READY_CHECK_TIMEOUT_MS: env.integer(2_000, 1, 60_000),
      /** How long SIGTERM waits for in-flight requests before closing their connections, in ms. Default 30 000. */
      SHUTDOWN_TIMEOUT_MS: env.integer(30_000, 0),
      /** Port of the metrics + health server (GET /metrics, /health/live, /health/ready); 0 picks a free one. Default 9464. */
      METRICS_PORT: env.metricsPort(),
      /** Interface the metrics + health server binds to. Default all interfaces. */
      METRICS_HOST: env.string('0.0.0.0'),
      LOG_LEVEL: env.oneOf(['debug', 'info', 'warn', 'error'] as const, 'info'),
    },
    source,
  );
  if (config.REQUEST_TIMEOUT_MS > config.MAX_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('gateway', [
      `REQUEST_TIMEOUT_MS=${config.REQUEST_TIMEOUT_MS}: must not exceed MAX_REQUEST_TIMEOUT_MS=${config.MAX_REQUEST_TIMEOUT_MS}`,
    ]);
  }
  return config;
}

export type GatewayConfig = ReturnType<typeof loadGatewayConfig>;
