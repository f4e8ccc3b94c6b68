import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidImageSizeError, InvalidMaskShapeError } from './errors';
import { assertLabelMask, resizeNearest, type LabelMask } from './label-mask';

/** A 4 × 3 grid whose values are their own row-major index. */
const GRID: LabelMask = { width: 4, height: 3, data: Uint8Array.from({ length: 12 }, (_, i) => i) };

const rows = (mask: LabelMask): number[][] =>
  Array.from({ length: mask.height }, (_, y) => [...mask.data.subarray(y * mask.width, (y + 1) * mask.width)]);

describe('resizeNearest', () => {
  // Expected values are OpenCV 5.0's cv2.resize(GRID, (width, height), interpolation=INTER_NEAREST), which RSUniVLM
  // uses; for these sizes its floating-point rounding and the exact rule agree.
  it('picks source pixels as OpenCV INTER_NEAREST does', () => {
    expect(rows(resizeNearest(GRID, { width: 5, height: 7 }))).toEqual([
      [0, 0, 1, 2, 3],
      [0, 0, 1, 2, 3],
      [0, 0, 1, 2, 3],
      [4, 4, 5, 6, 7],
      [4, 4, 5, 6, 7],
      [8, 8, 9, 10, 11],
      [8, 8, 9, 10, 11],
    ]);
    expect(rows(resizeNearest(GRID, { width: 2, height: 2 }))).toEqual([
      [0, 2],
      [4, 6],
    ]);
    expect(rows(resizeNearest(GRID, { width: 10, height: 1 }))).toEqual([[0, 0, 0, 1, 1, 2, 2, 2, 3, 3]]);
  });

  it('uses exact arithmetic where OpenCV rounds below a whole number', () => {
    // 332 × 26 / 664 = 13 exactly; OpenCV's 332 × (1 / (664 / 26)) is 12.999…, so it picks column 12.
    const ramp: LabelMask = { width: 26, height: 1, data: Uint8Array.from({ length: 26 }, (_, i) => i) };
    expect(resizeNearest(ramp, { width: 664, height: 1 }).data[332]).toBe(13);
  });

  it('keeps a mask of the same size as it is', () => {
    expect(resizeNearest(GRID, { width: 4, height: 3 })).toEqual(GRID);
  });

  it('rejects bad sizes and data of the wrong length', () => {
    expect(() => resizeNearest(GRID, { width: 0, height: 2 })).toThrow(InvalidImageSizeError);
    expect(() => assertLabelMask({ width: 4, height: 3, data: new Uint8Array(11) })).toThrow(InvalidMaskShapeError);
  });

  it('enlarging by whole factors repeats each cell as a block', () => {
    const grids = fc
      .record({ width: fc.integer({ min: 1, max: 8 }), height: fc.integer({ min: 1, max: 8 }) })
      .chain(({ width, height }) => fc.uint8Array({ minLength: width * height, maxLength: width * height }).map((data) => ({ width, height, data })));
    fc.assert(
      fc.property(grids, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), (grid, kx, ky) => {
        const big = resizeNearest(grid, { width: grid.width * kx, height: grid.height * ky });
        for (let y = 0; y < big.height; y++) {
          for (let x = 0; x < big.width; x++) {
            expect(big.data[y * big.width + x]).toBe(grid.data[Math.floor(y / ky) * grid.width + Math.floor(x / kx)]);
          }
        }
      }),
    );
  });
});
