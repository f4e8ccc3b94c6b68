/** What a request asks for. */
export const TASKS = Object.freeze(['caption', 'vqa'] as const);
export type Task = (typeof TASKS)[number];

/**
 * Question types of RSVQA (LR: presence, comp, rural_urban, count; HR: presence, comp, area, count),
 * plus `other` for a question no rule recognises.
 */
export const QUESTION_TYPES = Object.freeze(['presence', 'count', 'comparison', 'rural_urban', 'area', 'other'] as const);
export type QuestionType = (typeof QUESTION_TYPES)[number];

/** Outcome of one expert for one request. */
export const EXPERT_STATUSES = Object.freeze(['ok', 'failed', 'timed_out', 'skipped'] as const);
export type ExpertStatus = (typeof EXPERT_STATUSES)[number];

/** Why generation stopped: end-of-sequence token, a stop string, or the token limit. */
export const FINISH_REASONS = Object.freeze(['eos', 'stop_string', 'length'] as const);
export type FinishReason = (typeof FINISH_REASONS)[number];

export function isTask(value: unknown): value is Task {
  return (TASKS as readonly unknown[]).includes(value);
}

export function isQuestionType(value: unknown): value is QuestionType {
  return (QUESTION_TYPES as readonly unknown[]).includes(value);
}
