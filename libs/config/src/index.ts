export { ConfigError, DEFAULT_PACK_DIR, REPO_ROOT, env, parseEnv, redactRedisUrl, sharedServiceEnv } from './config';
export type { Env } from './config';
