import { resolve } from 'node:path';
import { z } from 'zod';

/** The environment could not be turned into a valid configuration; `problems` names every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly service: string,
    readonly problems: readonly string[],
  ) {
    super(`${service}: invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/** Where the repository lives; defaults (demo pack, fixtures) are resolved from here, not from the cwd. */
export const REPO_ROOT = resolve(__dirname, '../../..');

/** The default model pack until the trained demo pack exists: three experts around the tiny fixture. */
export const DEFAULT_PACK_DIR = resolve(REPO_ROOT, 'models/demo');

export type Env = Record<string, string | undefined>;

/**
 * Parses environment variables with a zod object schema whose keys are the variable names. Empty strings
 * count as unset so defaults apply. Throws one ConfigError listing every problem.
 */
export function parseEnv<Shape extends z.ZodRawShape>(
  service: string,
  shape: Shape,
  env: Env,
): z.infer<z.ZodObject<Shape>> {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(shape)) {
    const value = env[key];
    input[key] = value === undefined || value.trim() === '' ? undefined : value.trim();
  }
  const parsed = z.object(shape).safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      service,
      // A URL's credentials (REDIS_URL's password) never reach the message.
      parsed.error.issues.map((issue) => {
        const value = input[String(issue.path[0])];
        return `${issue.path.join('.')}=${JSON.stringify(value === undefined ? null : value.replace(/\/\/[^/@\s]*@/, '//***@'))}: ${issue.message}`;
      }),
    );
  }
  return parsed.data;
}

/** Variable schemas shared by the services. */
export const env = {
  integer: (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
    z.coerce.number().int().min(min).max(max).default(fallback),
  number: (fallback: number, min: number, max = Number.MAX_VALUE) => z.coerce.number().min(min).max(max).default(fallback),
  string: (fallback: string) => z.string().min(1).default(fallback),
  oneOf: <T extends string>(values: readonly [T, ...T[]], fallback: T) => z.enum(values).default(fallback as never),
  /**
   * Where Redis is: `redis://[[user]:password@]host[:port][/db]`, or `rediss://...` for TLS. ioredis takes
   * the user, password (percent-encoded), database and TLS from the URL itself; a private CA is given to Node
   * with NODE_EXTRA_CA_CERTS. Default `redis://127.0.0.1:6379`. Log it only through redactRedisUrl().
   */
  redisUrl: () =>
    z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .superRefine((url, ctx) => {
        const problem = /^rediss?:\/\//.test(url) ? redisUrlProblem(url) : undefined;
        if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
      })
      .default('redis://127.0.0.1:6379'),
  /**
   * Interface of a service's metrics + health server. Default `127.0.0.1` (loopback only); in Kubernetes the
   * pod IP (downward API `status.podIP`), so Prometheus and the kubelet reach it and nothing else listens.
   */
  metricsHost: () => z.string().min(1).default('127.0.0.1'),
  keyPrefix: () => z.string().regex(/^[A-Za-z0-9_.:{}-]{1,64}$/, 'must be 1-64 of [A-Za-z0-9_.:{}-]').default('rsmoe'),
  /** BullMQ's own key prefix (queues live under `<prefix>:<queue>`). */
  queuePrefix: () => z.string().regex(/^[A-Za-z0-9_.{}-]{1,64}$/, 'must be 1-64 of [A-Za-z0-9_.{}-]').default('bull'),
  packDir: () => z.string().min(1).default(DEFAULT_PACK_DIR).transform((dir) => resolve(dir)),
  /** Port of a service's metrics + health server (Prometheus scrapes it; Kubernetes probes it); 0 picks a free one. */
  metricsPort: () => z.coerce.number().int().min(0).max(65_535).default(9464),
};

/**
 * The settings every mesh service shares, written once: its Redis, the key and queue prefixes, its
 * metrics + health server and its log level. Each service spreads this into its own shape.
 */
export function sharedServiceEnv() {
  return {
    /** `redis://[:password@]host:port[/db]` or `rediss://` for TLS. */
    REDIS_URL: env.redisUrl(),
    KEY_PREFIX: env.keyPrefix(),
    QUEUE_PREFIX: env.queuePrefix(),
    /** Port of the metrics + health server (GET /metrics, /health/live, /health/ready); 0 picks a free one. */
    METRICS_PORT: env.metricsPort(),
    /** Interface that server binds to: loopback by default; the pod IP in Kubernetes. */
    METRICS_HOST: env.metricsHost(),
    LOG_LEVEL: env.oneOf(['debug', 'info', 'warn', 'error'] as const, 'info'),
  };
}

/** What is wrong with a redis:// or rediss:// URL that the scheme check lets through, if anything. */
function redisUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a valid URL (percent-encode special characters of the password)';
  }
  if (!parsed.hostname) return 'names no host';
  if (parsed.pathname.length > 1 && !/^\/\d+$/.test(parsed.pathname)) return 'the path must be a database number, e.g. /0';
  return undefined;
}

/** The URL with its password (and user) replaced by `***`: what logs and error messages may show. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.password && !parsed.username) return url;
    if (parsed.username) parsed.username = '***';
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
