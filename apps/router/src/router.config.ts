import { ConfigError, env, parseEnv, sharedServiceEnv, type Env } from '@rsmoe/config';
import { IMAGES_PER_REQUEST_LIMIT } from '@rsmoe/contracts';

/** Every setting of the router, from its environment; defaults live here and only here. */
export function loadRouterConfig(source: Env) {
  const config = parseEnv(
    'router',
    {
      ...sharedServiceEnv(),
      /** gRPC listen address. */
      GRPC_HOST: env.string('127.0.0.1'),
      GRPC_PORT: env.integer(50051, 0, 65535),
      PACK_DIR: env.packDir(),
      /** Use the pack's learned router model (scene hint, question type) when it has one; `off`: rules only. */
      ROUTER_MODEL: env.oneOf(['on', 'off'] as const, 'on'),
      /**
       * Most images one request may carry (each one an encoder run and prompt positions in every routed
       * expert). At most 16 (IMAGES_PER_REQUEST_LIMIT of libs/contracts).
       */
      MAX_IMAGES_PER_REQUEST: env.integer(4, 1, IMAGES_PER_REQUEST_LIMIT),
      /** Deadline of a request that arrives without one, in ms. */
      DEFAULT_DEADLINE_MS: env.integer(30_000, 100),
      /** Most time a request may ask for, in ms. */
      MAX_DEADLINE_MS: env.integer(300_000, 100),
      /** The same two for segmentation and changes (LONG_TASKS: masks are long text). */
      LONG_TASK_DEFAULT_DEADLINE_MS: env.integer(300_000, 100),
      LONG_TASK_MAX_DEADLINE_MS: env.integer(1_800_000, 100),
      /**
       * Time kept back from the deadline to fuse and answer, as a fraction of the request's budget, clamped
       * to [FUSE_RESERVE_MIN_MS, FUSE_RESERVE_MAX_MS]: experts stop being waited for at deadline - reserve.
       */
      FUSE_RESERVE_FRACTION: env.number(0.1, 0, 0.9),
      FUSE_RESERVE_MIN_MS: env.integer(50, 0),
      FUSE_RESERVE_MAX_MS: env.integer(1_000, 0),
      /**
       * A request still open after this many ms gets the aggregator's deadline job (finalize with whoever
       * answered at its fuse point; at once when the fuse point comes sooner). Requests answered sooner never
       * create one. 2 s, not less: under load most requests take longer than a few hundred ms, and a deadline
       * job armed for each of them is pure cost (bench:mesh on models/demo at c=32: 24 % of requests armed one
       * at 250 ms, 0 % at 2 s; Redis commands per request 156 → 145). Its price: a router that dies within
       * this time leaves a request with a silent expert unstored (its caller got the router's error).
       */
      DEADLINE_JOB_GRACE_MS: env.integer(2_000, 0, 60_000),
      /** How long a result the router stores can be read back, in seconds (as the aggregator's RESULT_TTL_S). */
      RESULT_TTL_S: env.integer(3600, 1),
      /** Attempts of an expert job on transient errors (exponential backoff from JOB_BACKOFF_MS). */
      JOB_ATTEMPTS: env.integer(3, 1, 20),
      JOB_BACKOFF_MS: env.integer(50, 1),
      /**
       * How often the router polls every expert queue for live workers (BullMQ getWorkersCount) and backlog,
       * in ms. Requests are routed and admitted from the cached answer, never by a Redis call of their own.
       */
      EXPERT_POLL_INTERVAL_MS: env.integer(1_000, 50, 60_000),
      /** Window of the drain rate (finished jobs per second) behind queue-wait estimates and Retry-After, in ms. */
      EXPERT_DRAIN_WINDOW_MS: env.integer(10_000, 1_000, 600_000),
      /**
       * Most interactive jobs (priority 0) waiting on one expert queue; a request for an expert at its limit is
       * refused with RESOURCE_EXHAUSTED and `retry-after-ms` before anything is queued.
       */
      MAX_WAITING_PER_EXPERT: env.integer(64, 1),
      /** The same for low-priority bulk jobs (priority > 0): their own budget, never counted against interactive requests. */
      MAX_BULK_WAITING_PER_EXPERT: env.integer(1_024, 1),
      /**
       * Bulk yields to interactive: for this long after an expert admitted an interactive request, a router keeps at
       * most BULK_IN_FLIGHT_WHILE_INTERACTIVE bulk requests (a scene's tiles) on it, in ms; 0 turns the rule off.
       */
      BULK_YIELD_WINDOW_MS: env.integer(2_000, 0, 600_000),
      BULK_IN_FLIGHT_WHILE_INTERACTIVE: env.integer(1, 0, 1_024),
      /** How long finished jobs stay inspectable in Redis, in seconds (at least the drain window). */
      JOB_RETENTION_S: env.integer(3_600, 1),
    },
    source,
  );
  // The aggregator reads finished jobs back at a request's fuse point: they must outlive the longest budget.
  const longestMs = Math.max(config.MAX_DEADLINE_MS, config.LONG_TASK_MAX_DEADLINE_MS);
  if (config.JOB_RETENTION_S * 1000 < longestMs) {
    throw new ConfigError('router', [
      `JOB_RETENTION_S=${config.JOB_RETENTION_S}: must be at least the longest deadline (${longestMs / 1000} s, MAX_DEADLINE_MS / LONG_TASK_MAX_DEADLINE_MS): the aggregator reads finished jobs back at the fuse point`,
    ]);
  }
  return config;
}

export type RouterConfig = ReturnType<typeof loadRouterConfig>;
