export { createLogger } from './logger';
export type { LogLevel, Logger } from './logger';
export { drainOnSignals, runService } from './service-process';
export * from './metric-catalogue';
export { ServiceMetrics, msToSeconds } from './metrics';
export { redisReadiness, startOpsServer } from './ops-server';
export type { OpsServer, OpsServerOptions, ReadinessCheck } from './ops-server';
export { RedisOutageLog } from './redis-outage-log';
export type { RedisErrorEmitter, RedisOutageLogOptions, WatchedRedisClient } from './redis-outage-log';
