import { env, parseEnv, type Env } from '@rsmoe/config';

/** Every setting of the aggregator, from its environment; defaults live here and only here. */
export function loadAggregatorConfig(source: Env) {
  return parseEnv(
    'aggregator',
    {
      REDIS_URL: env.redisUrl(),
      KEY_PREFIX: env.keyPrefix(),
      QUEUE_PREFIX: env.queuePrefix(),
      /** Parent jobs fused at once. */
      CONCURRENCY: env.integer(16, 1, 1024),
      /** How long a stored result can be read back (GET /v1/requests/{id}), in seconds. */
      RESULT_TTL_S: env.integer(3600, 1),
      DRAIN_TIMEOUT_MS: env.integer(10_000, 0),
      /** Port of the metrics + health server (GET /metrics, /health/live, /health/ready); 0 picks a free one. Default 9464. */
      METRICS_PORT: env.metricsPort(),
      /** Interface the metrics + health server binds to. Default all interfaces. */
      METRICS_HOST: env.metricsHost(),
      LOG_LEVEL: env.oneOf(['debug', 'info', 'warn', 'error'] as const, 'info'),
    },
    source,
  );
}

export type AggregatorConfig = ReturnType<typeof loadAggregatorConfig>;
