import { describe, expect, it } from 'vitest';
import { classAreaFractions } from './class-areas';
import { InvalidMaskShapeError, LabelOutOfRangeError } from './errors';
import { IGNORE_LABEL } from './label-mask';

const CLASSES = ['others', 'water', 'land'];

describe('classAreaFractions', () => {
  it('shares out the pixels that are not ignored, every class listed', () => {
    const data = Uint8Array.from([0, 1, 1, IGNORE_LABEL, 1, 0, IGNORE_LABEL, IGNORE_LABEL]);
    expect(classAreaFractions({ width: 4, height: 2, data }, CLASSES)).toEqual([
      { label: 'others', pixels: 2, fraction: 0.4 },
      { label: 'water', pixels: 3, fraction: 0.6 },
      { label: 'land', pixels: 0, fraction: 0 },
    ]);
  });

  it('gives zero fractions when every pixel is ignored', () => {
    const areas = classAreaFractions({ width: 2, height: 1, data: Uint8Array.from([IGNORE_LABEL, IGNORE_LABEL]) }, CLASSES);
    expect(areas.map((area) => area.fraction)).toEqual([0, 0, 0]);
  });

  it('rejects a label with no class and a mask of the wrong length', () => {
    expect(() => classAreaFractions({ width: 2, height: 1, data: Uint8Array.from([0, 3]) }, CLASSES)).toThrow(LabelOutOfRangeError);
    expect(() => classAreaFractions({ width: 2, height: 2, data: new Uint8Array(3) }, CLASSES)).toThrow(InvalidMaskShapeError);
  });
});
