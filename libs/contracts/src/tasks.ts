/**
 * What a request asks for: RS-MoE's captions and answers, and RSUniVLM's image-, region- and pixel-level
 * tasks. `change` compares two images (a change caption, a change mask, or both).
 */
export const TASKS = Object.freeze(['caption', 'vqa', 'classification', 'grounding', 'referring', 'segmentation', 'change'] as const);
export type Task = (typeof TASKS)[number];

/**
 * What one expert is asked to do, as a key of its prompt templates in the pack manifest: a request's task,
 * except that `change` is split into its caption (`change_caption`) and its mask (`change_mask`), which
 * RSUniVLM gives to different experts.
 */
export const EXPERT_TASKS = Object.freeze([
  'caption',
  'vqa',
  'classification',
  'grounding',
  'referring',
  'segmentation',
  'change_caption',
  'change_mask',
] as const);
export type ExpertTask = (typeof EXPERT_TASKS)[number];

/** RSUniVLM's granularity experts: the image, a region of it, or its pixels. */
export const GRANULARITIES = Object.freeze(['image', 'region', 'pixel'] as const);
export type Granularity = (typeof GRANULARITIES)[number];

/** RSUniVLM's task tags, which start its prompts and choose its expert. */
export const TASK_TAGS: Readonly<Record<ExpertTask, string>> = Object.freeze({
  caption: '[CAP]',
  vqa: '[VQA]',
  classification: '[CLS]',
  change_caption: '[CCD]',
  grounding: '[VG]',
  referring: '[REF]',
  segmentation: '[SEG]',
  change_mask: '[SEG]',
});

/** The granularity expert RSUniVLM routes each expert task to. */
export const TASK_GRANULARITY: Readonly<Record<ExpertTask, Granularity>> = Object.freeze({
  caption: 'image',
  vqa: 'image',
  classification: 'image',
  change_caption: 'image',
  grounding: 'region',
  referring: 'region',
  segmentation: 'pixel',
  change_mask: 'pixel',
});

/** What a `change` request wants back. */
export const CHANGE_OUTPUTS = Object.freeze(['caption', 'mask', 'both'] as const);
export type ChangeOutput = (typeof CHANGE_OUTPUTS)[number];

/** The expert tasks one request of `task` runs (a `change` request: those its output asks for). */
export function expertTasksOf(task: Task, changeOutput: ChangeOutput = 'both'): ExpertTask[] {
  if (task !== 'change') return [task];
  if (changeOutput === 'caption') return ['change_caption'];
  if (changeOutput === 'mask') return ['change_mask'];
  return ['change_caption', 'change_mask'];
}

/**
 * Tasks whose expert writes a mask as text (segmentation, and a change request, whose mask may be asked
 * for): answers of hundreds of tokens, so their default and longest deadlines are their own
 * (RSUniVLM's demo takes 15-30 s per mask on a laptop GPU).
 */
export const LONG_TASKS: readonly Task[] = Object.freeze(['segmentation', 'change']);

export function isLongTask(task: Task): boolean {
  return LONG_TASKS.includes(task);
}

/** The label of a change mask's changed pixels; unchanged pixels are `others`, RSUniVLM's background. */
export const CHANGE_MASK_CLASSES = Object.freeze(['others', 'changed'] as const);
/** RSUniVLM's background label in mask text. */
export const MASK_BACKGROUND_LABEL = 'others';

/**
 * Question types of RSVQA (LR: presence, comp, rural_urban, count; HR: presence, comp, area, count),
 * plus `other` for a question no rule recognises.
 */
export const QUESTION_TYPES = Object.freeze(['presence', 'count', 'comparison', 'rural_urban', 'area', 'other'] as const);
export type QuestionType = (typeof QUESTION_TYPES)[number];

/**
 * Outcome of one expert for one request. `unparseable`: the expert answered, but its text is not the
 * structured output its task needs (boxes, a mask, a known label); the raw text is kept.
 */
export const EXPERT_STATUSES = Object.freeze(['ok', 'failed', 'timed_out', 'skipped', 'unparseable'] as const);
export type ExpertStatus = (typeof EXPERT_STATUSES)[number];

/**
 * Why an expert's output is missing (the proto's ExpertErrorCode in snake case); `error` holds the detail.
 * `invalid_image`: undecodable bytes; `image_missing`: not in the blob store; `invalid_params`: bad decoding
 * parameters or payload; `deadline_exceeded`: no output by the fuse point; `cancelled`: the request was
 * cancelled; `expert_unavailable`: no live worker, routed around; `overloaded`: over its admission limit;
 * `internal`: anything else; `unparseable_output`: the text is not the task's output (status `unparseable`). Outputs of experts that predate the code carry none.
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
  'unparseable_output',
] as const);
export type ExpertErrorCode = (typeof EXPERT_ERROR_CODES)[number];

export function isExpertErrorCode(value: unknown): value is ExpertErrorCode {
  return (EXPERT_ERROR_CODES as readonly unknown[]).includes(value);
}

/** Why generation stopped: end-of-sequence token, a stop string, or the token limit. */
export const FINISH_REASONS = Object.freeze(['eos', 'stop_string', 'length'] as const);
export type FinishReason = (typeof FINISH_REASONS)[number];

export function isExpertTask(value: unknown): value is ExpertTask {
  return (EXPERT_TASKS as readonly unknown[]).includes(value);
}

export function isTask(value: unknown): value is Task {
  return (TASKS as readonly unknown[]).includes(value);
}

export function isQuestionType(value: unknown): value is QuestionType {
  return (QUESTION_TYPES as readonly unknown[]).includes(value);
}
