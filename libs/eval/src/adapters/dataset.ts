/** One image to caption, with its reference captions. */
export interface CaptionSample {
  /** Stable id, unique in the dataset (used as the key of results and of resumable runs). */
  id: string;
  /** Image path relative to the images directory. */
  image: string;
  references: string[];
  split?: string;
  /** Scene class when the dataset has one (UCM land-use class, RSICD/NWPU category). */
  category?: string;
}

/** One visual question with its accepted answer(s). */
export interface VqaSample {
  id: string;
  image: string;
  question: string;
  /** Ground-truth answers: one for RSVQA/RSIEval, several for VQA-v2-style data. */
  answers: string[];
  /** Question type (RSVQA: presence, comp, count, rural_urban, area). */
  type: string;
  split?: string;
}

/** A dataset read by an adapter: caption samples, VQA samples, or both (RSIEval, synthetic). */
export interface Dataset {
  format: DatasetFormat;
  captions: CaptionSample[];
  vqa: VqaSample[];
}

/** Supported `--dataset <format>:<path>` formats. */
export type DatasetFormat = 'karpathy' | 'nwpu' | 'rsicap' | 'rsieval' | 'rsvqa';
export const DATASET_FORMATS: readonly DatasetFormat[] = ['karpathy', 'nwpu', 'rsicap', 'rsieval', 'rsvqa'];

/** One referring expression with its box (DIOR-RSVG). */
export interface GroundingSample {
  /** `<annotation file stem>#<object index in that file>`, e.g. `00001#0`. */
  id: string;
  /**
   * Position of the object over the whole annotation folder (files in numeric order, objects in file
   * order): the number DIOR-RSVG's `train.txt`/`val.txt`/`test.txt` list.
   */
  index: number;
  /** Image file name, relative to the images folder (`JPEGImages/`). */
  image: string;
  expression: string;
  /** `[xmin, ymin, xmax, ymax]` in pixels, as written in the annotation. */
  box: [number, number, number, number];
  /** Object class (`<name>`), when present. */
  category?: string;
  /** Image size in pixels from `<size>`, when present. */
  width?: number;
  height?: number;
}

/** A bi-temporal image pair with its change captions (LEVIR-CC). */
export interface ChangeCaptionSample {
  /** The pair's file name (unique across LEVIR-CC's splits: `test_000123.png`). */
  id: string;
  /** Before and after images, relative to the images folder (`<filepath>/A/<filename>`, `<filepath>/B/…`). */
  before: string;
  after: string;
  references: string[];
  split?: string;
  /** LEVIR-CC's `changeflag`: whether the pair shows a change, when present. */
  changed?: boolean;
}

/** A bi-temporal image pair with its binary change mask (LEVIR-CD). */
export interface ChangeMaskSample {
  /** The shared file name (`test_1.png`). */
  id: string;
  /** Paths relative to the split folder: `A/<name>`, `B/<name>`, `label/<name>`. */
  before: string;
  after: string;
  label: string;
}

/** One image of a class-per-folder scene-classification set (UCM, AID). */
export interface ClassificationSample {
  /** `<class>/<file>`. */
  id: string;
  /** Path relative to the dataset root (same as the id). */
  image: string;
  label: string;
}

/** Task tags of RSUniVLM prompts; the tag picks the expert (image, region or pixel level). */
export type RsunivlmTask = 'CAP' | 'VQA' | 'CLS' | 'CCD' | 'VG' | 'REF' | 'SEG';
export const RSUNIVLM_TASKS: readonly RsunivlmTask[] = ['CAP', 'VQA', 'CLS', 'CCD', 'VG', 'REF', 'SEG'];

/** One sample of RSUniVLM's evaluation list. */
export interface RsunivlmSample {
  id: string;
  /** The tag without brackets (`VG` for a prompt starting with `[VG]`). */
  task: RsunivlmTask;
  /** The human turn without its `<image>` placeholders, tag included (`[VG] Where is the windmill?`). */
  prompt: string;
  /** The reference answer (the gpt turn), as written. */
  answer: string;
  /** Image files in prompt order (two for change captioning / change segmentation). */
  images: string[];
  /** The record's `metadata` object, untouched (empty when absent). */
  metadata: Record<string, unknown>;
}
