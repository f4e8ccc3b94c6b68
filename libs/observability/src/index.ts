export { createLogger } from './logger';
export type { LogLevel, Logger } from './logger';
export { drainOnSignals, runService } from './service-process';
