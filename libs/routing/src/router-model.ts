import type { QuestionType, Task } from '@rsmoe/contracts';

/** What a learned router model sees: the task, the question, and (when the caller has them) image features. */
export interface RouterModelInput {
  task: Task;
  question?: string;
  /** Pooled image features from the shared vision encoder; opaque to the router. */
  imageFeatures?: Float32Array;
}

/** A learned router model's guess; any field may be absent. */
export interface RouterPrediction {
  /** Scene class, e.g. "residential"; fills `{scene}` in prompt templates. */
  sceneClass?: string;
  /** Question type; wins over the rules (but not over one given in the request). */
  questionType?: QuestionType;
}

/**
 * The seam for the learned router of a later issue (the pack's `router.model`). The InstructionRouter
 * works without one: rules classify questions and `{scene}` stays empty.
 */
export interface RouterModel {
  predict(input: RouterModelInput): Promise<RouterPrediction>;
}
