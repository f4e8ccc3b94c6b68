import { LabelOutOfRangeError } from './errors';
import { assertLabelMask, IGNORE_LABEL, type LabelMask } from './label-mask';

/** One class's share of a label mask. */
export interface ClassArea {
  /** The class name, as in the class list. */
  label: string;
  /** Pixels of this class. */
  pixels: number;
  /** pixels / all pixels that are not IGNORE_LABEL; 0 when every pixel is ignored. */
  fraction: number;
}

/** Every class's area, in class-list order (classes with no pixel included). IGNORE_LABEL pixels count for none. */
export function classAreaFractions(mask: LabelMask, classes: readonly string[]): ClassArea[] {
  assertLabelMask(mask);
  const pixels = new Array<number>(classes.length).fill(0);
  let counted = 0;
  for (const label of mask.data) {
    if (label === IGNORE_LABEL) continue;
    if (label >= classes.length) throw new LabelOutOfRangeError(label, classes.length);
    pixels[label]++;
    counted++;
  }
  return classes.map((label, i) => ({ label, pixels: pixels[i], fraction: counted === 0 ? 0 : pixels[i] / counted }));
}
