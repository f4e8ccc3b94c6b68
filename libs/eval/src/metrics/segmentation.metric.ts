import { ScoringInputError } from '../errors';
import type { MaskPair } from './scoring-input';

/** Label value of reference pixels that are not scored (mmsegmentation's `ignore_index`). */
export const IGNORE_LABEL = 255;

/** Semantic-segmentation scores (fractions). */
export interface SegmentationResult {
  /** Mean IoU over the classes whose union is non-empty. */
  mIoU: number;
  /** IoU per class name; null for a class whose union is empty over the whole set (left out of mIoU). */
  perClassIoU: Record<string, number | null>;
  /** Correct pixels over scored (non-ignored) reference pixels. */
  pixelAccuracy: number;
}

/**
 * Checks a class list (`["background", …]`, index = pixel value): 1 to 255 distinct non-empty names, since
 * value 255 is reserved for "ignore".
 * @throws ScoringInputError saying what is wrong.
 */
export function parseClassList(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > IGNORE_LABEL) {
    throw new ScoringInputError(`classes must be a JSON array of 1 to ${IGNORE_LABEL} class names (index = pixel value)`);
  }
  const seen = new Set<string>();
  return value.map((name: unknown, i) => {
    if (typeof name !== 'string' || name.trim().length === 0) throw new ScoringInputError(`classes[${i}] must be a non-empty string, got ${JSON.stringify(name)}`);
    if (seen.has(name)) throw new ScoringInputError(`classes[${i}]: duplicate class name ${JSON.stringify(name)}`);
    seen.add(name);
    return name;
  });
}

/**
 * Sums mmsegmentation's `intersect_and_union` over a set of masks: per class, the intersection, the
 * predicted area and the reference area, reference pixels equal to 255 left out. A reference value must be a
 * class index or 255; a predicted value must be a class index or 255 (no class: counts against the
 * reference class, as out-of-range predictions do in mmsegmentation); anything else means the class list
 * does not fit the masks and is an error.
 */
export class SegmentationCounter {
  readonly classes: readonly string[];
  private readonly intersection: Float64Array;
  private readonly predicted: Float64Array;
  private readonly reference: Float64Array;

  constructor(classes: readonly string[]) {
    this.classes = parseClassList(classes);
    this.intersection = new Float64Array(this.classes.length);
    this.predicted = new Float64Array(this.classes.length);
    this.reference = new Float64Array(this.classes.length);
  }

  /** @throws ScoringInputError naming the pair for a length mismatch or a value outside the class list. */
  add({ name, reference, prediction }: MaskPair): void {
    if (reference.length !== prediction.length) {
      throw new ScoringInputError(`${name}: the prediction has ${prediction.length} pixels, the reference ${reference.length}`);
    }
    const n = this.classes.length;
    for (let i = 0; i < reference.length; i++) {
      const ref = reference[i];
      if (ref === IGNORE_LABEL) continue;
      const pred = prediction[i];
      if (ref >= n) throw new ScoringInputError(`reference ${name}: value ${ref} is neither a class index (0–${n - 1}) nor ${IGNORE_LABEL} (ignore)`);
      this.reference[ref]++;
      if (pred < n) {
        this.predicted[pred]++;
        if (pred === ref) this.intersection[ref]++;
      } else if (pred !== IGNORE_LABEL) {
        throw new ScoringInputError(`prediction ${name}: value ${pred} is neither a class index (0–${n - 1}) nor ${IGNORE_LABEL}`);
      }
    }
  }

  /**
   * mIoU, per-class IoU and pixel accuracy of everything added so far.
   * @throws ScoringInputError when no pixel was scored (no masks, or every reference pixel is 255).
   */
  result(): SegmentationResult {
    let correct = 0;
    let scored = 0;
    let iouSum = 0;
    let present = 0;
    const perClassIoU: Record<string, number | null> = {};
    this.classes.forEach((name, c) => {
      correct += this.intersection[c];
      scored += this.reference[c];
      const union = this.predicted[c] + this.reference[c] - this.intersection[c];
      if (union === 0) {
        perClassIoU[name] = null;
        return;
      }
      const iou = this.intersection[c] / union;
      perClassIoU[name] = iou;
      iouSum += iou;
      present++;
    });
    if (scored === 0) throw new ScoringInputError('no pixel to score: no masks, or every reference pixel is 255 (ignore)');
    return { mIoU: iouSum / present, perClassIoU, pixelAccuracy: correct / scored };
  }
}

/** `SegmentationCounter` over a list of mask pairs. */
export function computeSegmentation(pairs: Iterable<MaskPair>, classes: readonly string[]): SegmentationResult {
  const counter = new SegmentationCounter(classes);
  for (const pair of pairs) counter.add(pair);
  return counter.result();
}
