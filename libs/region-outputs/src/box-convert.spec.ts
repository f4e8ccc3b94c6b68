import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { boxNorm, boxPercentFromNorm, boxPercentFromPx, boxPx } from './box-convert';
import type { PercentBox } from './box.types';
import { encodeBoxesText, parseBoxesText } from './box-text';
import { InvalidBoxError, InvalidImageSizeError } from './errors';

const box = (x1: number, y1: number, x2: number, y2: number): PercentBox => ({ unit: 'percent', x1, y1, x2, y2 });

describe('box conversions', () => {
  it('scales percent to continuous pixels of the image', () => {
    expect(boxPx(box(10, 20, 50, 100), { width: 200, height: 100 })).toEqual({ unit: 'px', x1: 20, y1: 20, x2: 100, y2: 100 });
    expect(boxPx(box(0, 0, 100, 100), { width: 7, height: 3 })).toEqual({ unit: 'px', x1: 0, y1: 0, x2: 7, y2: 3 });
  });

  it('orders corners written the other way round', () => {
    expect(boxPx(box(50, 100, 10, 20), { width: 200, height: 100 })).toEqual({ unit: 'px', x1: 20, y1: 20, x2: 100, y2: 100 });
    expect(boxNorm(box(75, 50, 25, 0))).toEqual({ unit: 'norm', x1: 0.25, y1: 0, x2: 0.75, y2: 0.5 });
  });

  it('turns a pixel box into percent for a [REF] prompt, clamped to the image', () => {
    expect(boxPercentFromPx({ unit: 'px', x1: 64, y1: 48, x2: 320, y2: 240 }, { width: 640, height: 480 })).toEqual(box(10, 10, 50, 50));
    expect(boxPercentFromPx({ unit: 'px', x1: 700, y1: -5, x2: 320, y2: 480 }, { width: 640, height: 480 })).toEqual(box(50, 0, 100, 100));
    expect(boxPercentFromNorm({ unit: 'norm', x1: 0.5, y1: 0.25, x2: 1.5, y2: 0 })).toEqual(box(50, 0, 100, 25));
  });

  it('rejects an image size that is not positive integers and non-finite values', () => {
    expect(() => boxPx(box(0, 0, 1, 1), { width: 0, height: 10 })).toThrow(InvalidImageSizeError);
    expect(() => boxPercentFromPx({ unit: 'px', x1: 0, y1: 0, x2: 1, y2: 1 }, { width: 10.5, height: 10 })).toThrow(InvalidImageSizeError);
    expect(() => boxPercentFromPx({ unit: 'px', x1: NaN, y1: 0, x2: 1, y2: 1 }, { width: 10, height: 10 })).toThrow(InvalidBoxError);
  });
});

const percent = fc.double({ min: 0, max: 100, noNaN: true });
const percentBox = fc.tuple(percent, percent, percent, percent).map(([x1, y1, x2, y2]) => box(x1, y1, x2, y2));
const imageSize = fc.record({ width: fc.integer({ min: 1, max: 10_000 }), height: fc.integer({ min: 1, max: 10_000 }) });
const orderedBox = (b: PercentBox): PercentBox => box(Math.min(b.x1, b.x2), Math.min(b.y1, b.y2), Math.max(b.x1, b.x2), Math.max(b.y1, b.y2));

function expectClose(actual: PercentBox, expected: PercentBox, tolerance: number): void {
  for (const key of ['x1', 'y1', 'x2', 'y2'] as const) expect(Math.abs(actual[key] - expected[key])).toBeLessThanOrEqual(tolerance);
}

describe('box conversion properties', () => {
  it('pixels and fractions convert back to the (ordered) percent box', () => {
    fc.assert(
      fc.property(percentBox, imageSize, (b, size) => {
        const px = boxPx(b, size);
        expect(px.x1 >= 0 && px.x1 <= px.x2 && px.x2 <= size.width && px.y1 >= 0 && px.y1 <= px.y2 && px.y2 <= size.height).toBe(true);
        expectClose(boxPercentFromPx(px, size), orderedBox(b), 1e-9);
        expectClose(boxPercentFromNorm(boxNorm(b)), orderedBox(b), 1e-9);
      }),
    );
  });

  it('a pixel query box written for [REF] and read back lands within half a percent of the image', () => {
    fc.assert(
      // A box of at least 1 % a side: written in whole percents it keeps its area (a box without area is not read).
      fc.property(percentBox.filter((b) => Math.abs(b.x2 - b.x1) >= 1 && Math.abs(b.y2 - b.y1) >= 1), imageSize, (b, size) => {
        const query = boxPx(b, size);
        const parsed = parseBoxesText(encodeBoxesText([boxPercentFromPx(query, size)]));
        if (parsed.kind !== 'boxes') throw new Error(parsed.reason);
        const back = boxPx(parsed.boxes[0], size);
        for (const key of ['x1', 'x2'] as const) expect(Math.abs(back[key] - query[key])).toBeLessThanOrEqual(0.005 * size.width + 1e-9);
        for (const key of ['y1', 'y2'] as const) expect(Math.abs(back[key] - query[key])).toBeLessThanOrEqual(0.005 * size.height + 1e-9);
      }),
    );
  });
});
