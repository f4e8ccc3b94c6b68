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
