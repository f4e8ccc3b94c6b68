export { createLogger } from './logger';
export type { LogLevel, Logger } from './logger';
