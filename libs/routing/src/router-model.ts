import type { QuestionType, Task } from '@rsmoe/contracts';

/** What a learned router model sees: the task, the question, and (when the caller has it) the encoded image. */
export interface RouterModelInput {
  task: Task;
  question?: string;
  /** The image as sent (PNG, JPEG, WebP, TIFF bytes). */
  image?: Uint8Array;
}

/** A learned router model's guess; any field may be absent. */
export interface RouterPrediction {
  /** Scene class, e.g. "residential"; fills `{scene}` in prompt templates. */
  sceneClass?: string;
  /** Question type; wins over the rules (but not over one given in the request). */
  questionType?: QuestionType;
}

/**
 * The learned router (the pack's `router.model`). The InstructionRouter also works without one: rules
 * classify questions and `{scene}` stays empty.
 */
export interface RouterModel {
  predict(input: RouterModelInput): Promise<RouterPrediction>;
}
