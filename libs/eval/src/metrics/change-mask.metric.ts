import { ScoringInputError } from '../errors';
import type { MaskPair } from './scoring-input';

/**
 * Change-detection scores of the "changed" class (fractions), from the pixel counts of the whole set.
 *
 * Undefined ratios are defined as follows:
 * - no changed pixel in the references AND none predicted (TP + FP + FN = 0): all four are 1, since there
 *   was nothing to find and nothing was claimed;
 * - otherwise a ratio whose denominator is 0 is 0: precision with nothing predicted as changed, recall with
 *   nothing changed in the references (then FP > 0). F1 = 2TP / (2TP + FP + FN) and IoU = TP / (TP + FP + FN)
 *   are then 0 as well.
 * Change-detection code that adds an epsilon to denominators (BIT, ChangeFormer) gives 0 in the first case
 * too; on LEVIR-CD's splits, which always contain changes, both definitions agree.
 */
export interface ChangeMaskResult {
  F1: number;
  IoU: number;
  precision: number;
  recall: number;
}

/** Pixel counts of the changed class. */
export interface ChangeMaskCounts {
  truePositive: number;
  falsePositive: number;
  falseNegative: number;
}

/** The scores of `ChangeMaskResult` from pixel counts, with its 0/0 rules. */
export function changeMaskScores({ truePositive: tp, falsePositive: fp, falseNegative: fn }: ChangeMaskCounts): ChangeMaskResult {
  if (tp + fp + fn === 0) return { F1: 1, IoU: 1, precision: 1, recall: 1 };
  const ratio = (num: number, den: number) => (den === 0 ? 0 : num / den);
  return {
    F1: ratio(2 * tp, 2 * tp + fp + fn),
    IoU: ratio(tp, tp + fp + fn),
    precision: ratio(tp, tp + fp),
    recall: ratio(tp, tp + fn),
  };
}

/**
 * Sums the changed-class confusion counts over a set of binary masks (LEVIR-CD convention: a non-zero
 * pixel is "changed", on both sides; every pixel is scored).
 */
export class ChangeMaskCounter {
  private readonly counts: ChangeMaskCounts = { truePositive: 0, falsePositive: 0, falseNegative: 0 };
  private pixels = 0;

  /** @throws ScoringInputError naming the pair when the lengths differ. */
  add({ name, reference, prediction }: MaskPair): void {
    if (reference.length !== prediction.length) {
      throw new ScoringInputError(`${name}: the prediction has ${prediction.length} pixels, the reference ${reference.length}`);
    }
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < reference.length; i++) {
      const ref = reference[i] !== 0;
      const pred = prediction[i] !== 0;
      if (ref && pred) tp++;
      else if (pred) fp++;
      else if (ref) fn++;
    }
    this.counts.truePositive += tp;
    this.counts.falsePositive += fp;
    this.counts.falseNegative += fn;
    this.pixels += reference.length;
  }

  /** @throws ScoringInputError when no pixel was added. */
  result(): ChangeMaskResult {
    if (this.pixels === 0) throw new ScoringInputError('no pixel to score: no masks');
    return changeMaskScores(this.counts);
  }
}

/** `ChangeMaskCounter` over a list of mask pairs. */
export function computeChangeMask(pairs: Iterable<MaskPair>): ChangeMaskResult {
  const counter = new ChangeMaskCounter();
  for (const pair of pairs) counter.add(pair);
  return counter.result();
}
