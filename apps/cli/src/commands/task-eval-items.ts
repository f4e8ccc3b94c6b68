import type { ImageSize, LabelMask } from '@rsmoe/region-outputs';

/**
 * The tasks `rsmoe eval` sends through the gateway's RSUniVLM endpoints. Scored as `rsmoe score --task` scores
 * them: `change-caption` and `referring` with the caption metrics (`--task caption`).
 */
export const EVAL_TASKS = ['grounding', 'classification', 'change-caption', 'change-mask', 'segmentation', 'referring'] as const;
export type EvalTask = (typeof EVAL_TASKS)[number];

/** Class names are matched as RSUniVLM matches them: trimmed, lower case, inner whitespace as one space. */
export function classKey(name: string): string {
  return name.trim().toLowerCase().replace(/\s+/g, ' ');
}

/** `[x1, y1, x2, y2]`. */
export type Corners = [number, number, number, number];

/** A reference mask written as RSUniVLM's mask text: the grid, its values indices into `labels` (`others` first). */
export interface TextMask {
  grid: LabelMask;
  labels: string[];
  /** The image's size, to which the grid is stretched (nearest neighbour, as the gateway renders answers). */
  size: ImageSize;
}

/** Image paths are absolute (resolved when the dataset is read). */
interface Sample {
  /** The dataset's sample id: the key of the results file and of the written predictions. */
  id: string;
}

export interface GroundingItem extends Sample {
  task: 'grounding';
  image: string;
  query: string;
  /** Pixel boxes, continuous coordinates (RSUniVLM's percent boxes converted with the image's size). */
  reference: Corners[];
}

export interface ClassificationItem extends Sample {
  task: 'classification';
  image: string;
  label: string;
}

export interface ChangeCaptionItem extends Sample {
  task: 'change-caption';
  before: string;
  after: string;
  references: string[];
}

export interface ReferringItem extends Sample {
  task: 'referring';
  image: string;
  /** The region asked about, in [0, 1] of the image. */
  box: Corners;
  references: string[];
}

export interface ChangeMaskItem extends Sample {
  task: 'change-mask';
  before: string;
  after: string;
  /** A label PNG (LEVIR-CD, non-zero = changed), or mask text (`others` = unchanged, any other label = changed). */
  reference: { kind: 'png'; file: string } | { kind: 'text'; mask: TextMask };
}

export interface SegmentationItem extends Sample {
  task: 'segmentation';
  image: string;
  /** What the gateway is asked for: class names, or a phrase (scored as one class against `others`). */
  request: { classes: string[] } | { query: string };
  reference: TextMask;
}

/** One sample, ready for its endpoint. */
export type EvalItem = GroundingItem | ClassificationItem | ChangeCaptionItem | ReferringItem | ChangeMaskItem | SegmentationItem;

/** A dataset read for `rsmoe eval`: its samples in order, and how many were left out, by reason. */
export interface EvalPlan {
  /** Shown in the report, e.g. `dior-rsvg:/data/DIOR-RSVG (test)`. */
  label: string;
  items: EvalItem[];
  skipped: Record<string, number>;
}

/** A mask answer kept for the predictions: the gateway's PNG (path relative to the task folder) and its class names by pixel value. */
export interface MaskAnswerFile {
  file: string;
  classes: string[];
}

/** One line of the results file (`results.jsonl`): the outcome of one sample. */
export interface TaskEvalRecord {
  task: EvalTask;
  id: string;
  status: 'ok' | 'failed';
  /**
   * What was answered, as the task's predictions hold it: a label or caption, pixel boxes, or a mask file.
   * Null when the answer lacks it (a degraded answer); absent when the request failed.
   */
  prediction?: string | Corners[] | MaskAnswerFile | null;
  /** Wall time seen by the client, retries included, in milliseconds. */
  clientMs: number;
  /** The gateway's `timings.totalMs`. */
  serverMs?: number;
  degraded?: boolean;
  requestId?: string;
  /** Why the request failed: the gateway's error code and message, and its HTTP status (0: no answer). */
  error?: { code: string; message: string; httpStatus?: number };
}
