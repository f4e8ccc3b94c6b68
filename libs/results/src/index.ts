export { buildResult } from './result-builder';
export type { ChildOutcomes } from './result-builder';
export { RedisResultStore } from './redis-result-store.adapter';
