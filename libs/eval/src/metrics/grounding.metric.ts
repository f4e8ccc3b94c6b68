import { ScoringInputError } from '../errors';
import { asIdRecord, referenceIdsCoveringPredictions } from './scoring-input';

/** An axis-aligned box `[x1, y1, x2, y2]` in pixels, continuous coordinates (x2 ≥ x1, y2 ≥ y1). */
export type Box = readonly [number, number, number, number];

/** Boxes per sample id: `{"<id>": [[x1, y1, x2, y2], …]}`. */
export type BoxSet = Readonly<Record<string, readonly (readonly number[])[]>>;

/** Visual-grounding scores (fractions). */
export interface GroundingResult {
  /** Share of reference samples whose first predicted box has IoU ≥ 0.5 with any reference box. */
  'acc@0.5': number;
  /** Mean over reference samples of the first predicted box's best IoU (0 for a sample without prediction). */
  meanIoU: number;
  /** Number of reference samples. */
  count: number;
}

/** IoU threshold of the DIOR-RSVG / RSVG protocol. */
export const GROUNDING_IOU_THRESHOLD = 0.5;

/**
 * Intersection over union of two boxes in continuous coordinates (area = (x2 − x1)·(y2 − y1), no +1).
 * Two zero-area boxes have IoU 0.
 */
export function boxIoU(a: Box, b: Box): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  const intersection = iw > 0 && ih > 0 ? iw * ih : 0;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection;
  return union > 0 ? intersection / union : 0;
}

function checkedBoxes(value: unknown, id: string, what: string): Box[] {
  const where = `${what} of id ${JSON.stringify(id)}`;
  if (!Array.isArray(value)) throw new ScoringInputError(`${where} must be an array of [x1, y1, x2, y2] boxes`);
  return value.map((box: unknown, k) => {
    if (!Array.isArray(box) || box.length !== 4 || box.some((c) => typeof c !== 'number' || !Number.isFinite(c))) {
      throw new ScoringInputError(`${where}: box ${k} must be [x1, y1, x2, y2] with four finite numbers, got ${JSON.stringify(box)}`);
    }
    const [x1, y1, x2, y2] = box as number[];
    if (x2 < x1 || y2 < y1) throw new ScoringInputError(`${where}: box ${k} ${JSON.stringify(box)} is malformed (needs x2 ≥ x1 and y2 ≥ y1)`);
    return [x1, y1, x2, y2] as const;
  });
}

/**
 * Visual-grounding accuracy as in DIOR-RSVG / RSVG: for each reference sample, the FIRST predicted box is
 * compared with every reference box; the sample counts as correct when its best IoU is ≥ 0.5. A sample with
 * no prediction (id absent or an empty list) scores IoU 0. Every box on both sides is checked.
 * @throws ScoringInputError for prediction ids without a reference, a reference without boxes, or a
 *   malformed box (naming the id).
 */
export function computeGrounding(references: BoxSet, predictions: BoxSet): GroundingResult {
  const refs = asIdRecord(references, 'references');
  const preds = asIdRecord(predictions, 'predictions');
  const ids = referenceIdsCoveringPredictions(refs, preds);
  const predBoxes = new Map(Object.entries(preds).map(([id, boxes]) => [id, checkedBoxes(boxes, id, 'predictions')]));
  let hits = 0;
  let iouSum = 0;
  for (const id of ids) {
    const refBoxes = checkedBoxes(refs[id], id, 'references');
    if (refBoxes.length === 0) throw new ScoringInputError(`references of id ${JSON.stringify(id)} must hold at least one box`);
    const first = predBoxes.get(id)?.[0];
    const best = first === undefined ? 0 : Math.max(...refBoxes.map((ref) => boxIoU(first, ref)));
    iouSum += best;
    if (best >= GROUNDING_IOU_THRESHOLD) hits++;
  }
  return { 'acc@0.5': hits / ids.length, meanIoU: iouSum / ids.length, count: ids.length };
}
