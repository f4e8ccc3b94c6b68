export { buildResult } from './result-builder';
export type { ChildOutcomes } from './result-builder';
export { RedisResultStore } from './redis-result-store.adapter';
export { RESULT_OUTCOMES, outcomeOf } from './result-outcome';
export type { ResultOutcome } from './result-outcome';
