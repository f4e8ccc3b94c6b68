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

/**
 * Why an expert's output is missing (the proto's ExpertErrorCode in snake case); `error` holds the detail.
 * `invalid_image`: undecodable bytes; `image_missing`: not in the blob store; `invalid_params`: bad decoding
 * parameters or payload; `deadline_exceeded`: no output by the fuse point; `cancelled`: the request was
 * cancelled; `expert_unavailable`: no live worker, routed around; `overloaded`: over its admission limit;
 * `internal`: anything else. Outputs of experts that predate the code carry none.
 */
export const EXPERT_ERROR_CODES = Object.freeze([
  'invalid_image',
  'image_missing',
  'invalid_params',
  'deadline_exceeded',
  'cancelled',
  'expert_unavailable',
  'overloaded',
  'internal',
] as const);
export type ExpertErrorCode = (typeof EXPERT_ERROR_CODES)[number];

export function isExpertErrorCode(value: unknown): value is ExpertErrorCode {
  return (EXPERT_ERROR_CODES as readonly unknown[]).includes(value);
}

/** Why generation stopped: end-of-sequence token, a stop string, or the token limit. */
export const FINISH_REASONS = Object.freeze(['eos', 'stop_string', 'length'] as const);
export type FinishReason = (typeof FINISH_REASONS)[number];

export function isTask(value: unknown): value is Task {
  return (TASKS as readonly unknown[]).includes(value);
}

export function isQuestionType(value: unknown): value is QuestionType {
  return (QUESTION_TYPES as readonly unknown[]).includes(value);
}
