import { env, parseEnv, sharedServiceEnv, type Env } from '@rsmoe/config';

/** Every setting of the aggregator, from its environment; defaults live here and only here. */
export function loadAggregatorConfig(source: Env) {
  return parseEnv(
    'aggregator',
    {
      ...sharedServiceEnv(),
      /** Parent jobs fused at once. */
      CONCURRENCY: env.integer(16, 1, 1024),
      /** How long a stored result can be read back (GET /v1/requests/{id}), in seconds. */
      RESULT_TTL_S: env.integer(3600, 1),
      DRAIN_TIMEOUT_MS: env.integer(10_000, 0),
    },
    source,
  );
}

export type AggregatorConfig = ReturnType<typeof loadAggregatorConfig>;
