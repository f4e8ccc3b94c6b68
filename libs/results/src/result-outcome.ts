import type { InferenceResultJson } from '@rsmoe/contracts';

/** How a stored result turned out: every expert answered, some are missing, or none answered. */
export const RESULT_OUTCOMES = Object.freeze(['complete', 'degraded', 'failed'] as const);
export type ResultOutcome = (typeof RESULT_OUTCOMES)[number];

export function outcomeOf(result: InferenceResultJson): ResultOutcome {
  if (!result.degraded) return 'complete';
  return result.experts.some((expert) => expert.status === 'ok') ? 'degraded' : 'failed';
}
