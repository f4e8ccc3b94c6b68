import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PercentBox } from './box.types';
import { encodeBoxesText, parseBoxesText } from './box-text';
import { InvalidBoxError } from './errors';

const box = (x1: number, y1: number, x2: number, y2: number): PercentBox => ({ unit: 'percent', x1, y1, x2, y2 });

describe('parseBoxesText', () => {
  it('reads several boxes with words around them', () => {
    expect(parseBoxesText('there are two: [12, 30, 40, 55], [60, 10, 80, 20].')).toEqual({
      kind: 'boxes',
      boxes: [box(12, 30, 40, 55), box(60, 10, 80, 20)],
    });
  });

  it('cuts extra values at four and reads decimals in every form', () => {
    expect(parseBoxesText('[1, 2, 3, 4, 5, 6]')).toEqual({ kind: 'boxes', boxes: [box(1, 2, 3, 4)] });
    expect(parseBoxesText('[12.5,.5, 7., 100]')).toEqual({ kind: 'boxes', boxes: [box(12.5, 0.5, 7, 100)] });
  });

  it('skips groups that are not four numbers', () => {
    const text = '[VG] [1, 2, 3] [a, b, c, d] [-1, 2, 3, 4] [1 2 3 4] [1, 2, 3, 4, x] [] [5, 6, 7, 8]';
    expect(parseBoxesText(text)).toEqual({ kind: 'boxes', boxes: [box(5, 6, 7, 8)] });
  });

  it('skips a box without area: a zero width or height is no box', () => {
    expect(parseBoxesText('[47, 30, 47, 38], [10, 10, 20, 20]')).toEqual({ kind: 'boxes', boxes: [box(10, 10, 20, 20)] });
    expect(parseBoxesText('[47, 30, 47, 38]').kind).toBe('unparseable');
    expect(parseBoxesText('[100, 5, 140, 9]').kind).toBe('unparseable');
  });

  it('reads a value over 100 as 100 and keeps corners in the written order', () => {
    expect(parseBoxesText('[80, 90, 140, 10]')).toEqual({ kind: 'boxes', boxes: [box(80, 90, 100, 10)] });
  });

  it('is unparseable without a box, saying whether brackets were seen', () => {
    expect(parseBoxesText('a windmill near the road')).toEqual({ kind: 'unparseable', reason: 'no [x1, y1, x2, y2] box in the answer' });
    expect(parseBoxesText('[1, 2] and [VG]')).toEqual({
      kind: 'unparseable',
      reason: 'none of the 2 bracketed group(s) holds four numbers',
    });
    expect(parseBoxesText(undefined as unknown as string).kind).toBe('unparseable');
  });
});

describe('encodeBoxesText', () => {
  it('writes whole percents by default, the way a [REF] prompt holds them', () => {
    expect(encodeBoxesText([box(1, 20, 9, 30)])).toBe('[1, 20, 9, 30]');
    expect(encodeBoxesText([box(12.4, 30.5, 40, 55), box(60, 10, 80, 20)])).toBe('[12, 31, 40, 55], [60, 10, 80, 20]');
    expect(encodeBoxesText([])).toBe('');
  });

  it('writes up to `decimals` places without trailing zeros', () => {
    expect(encodeBoxesText([box(12.345, 30.5, 40, 99.999)], { decimals: 2 })).toBe('[12.35, 30.5, 40, 100]');
  });

  it('rejects values the format cannot hold and bad options', () => {
    expect(() => encodeBoxesText([box(0, 0, 101, 10)])).toThrow(InvalidBoxError);
    expect(() => encodeBoxesText([box(-1, 0, 1, 10)])).toThrow(InvalidBoxError);
    expect(() => encodeBoxesText([box(NaN, 0, 1, 10)])).toThrow(InvalidBoxError);
    expect(() => encodeBoxesText([box(0, 0, 1, 1)], { decimals: 7 })).toThrow(RangeError);
  });
});

const percent = fc.double({ min: 0, max: 100, noNaN: true });
// Boxes with area (a side of at least 1 %, so that rounding to whole percents keeps it): a box without is not read.
const percentBox = fc
  .tuple(percent, percent, percent, percent)
  .filter(([x1, y1, x2, y2]) => Math.abs(x2 - x1) >= 1 && Math.abs(y2 - y1) >= 1)
  .map(([x1, y1, x2, y2]) => box(x1, y1, x2, y2));
const wholeBox = fc
  .tuple(...Array.from({ length: 4 }, () => fc.integer({ min: 0, max: 100 })))
  .filter(([x1, y1, x2, y2]) => x1 !== x2 && y1 !== y2)
  .map(([x1, y1, x2, y2]) => box(x1, y1, x2, y2));

describe('box text properties', () => {
  it('reads back whole-percent boxes exactly', () => {
    fc.assert(
      fc.property(fc.array(wholeBox, { minLength: 1, maxLength: 5 }), (boxes) => {
        expect(parseBoxesText(encodeBoxesText(boxes))).toEqual({ kind: 'boxes', boxes });
      }),
    );
  });

  it('reads back any box within half of the last written place', () => {
    fc.assert(
      fc.property(fc.array(percentBox, { minLength: 1, maxLength: 5 }), fc.integer({ min: 0, max: 6 }), (boxes, decimals) => {
        const text = encodeBoxesText(boxes, { decimals });
        const parsed = parseBoxesText(text);
        if (parsed.kind !== 'boxes') throw new Error(parsed.reason);
        expect(parsed.boxes).toHaveLength(boxes.length);
        const tolerance = 0.5 * 10 ** -decimals + 1e-9;
        parsed.boxes.forEach((read, i) => {
          for (const key of ['x1', 'y1', 'x2', 'y2'] as const) expect(Math.abs(read[key] - boxes[i][key])).toBeLessThanOrEqual(tolerance);
        });
        expect(encodeBoxesText(parsed.boxes, { decimals })).toBe(text);
      }),
    );
  });

  it('never throws on arbitrary text', () => {
    const boxish = fc
      .array(fc.constantFrom('[', ']', ',', ' ', '.', '-', '1', '42', '100', '1e3', 'box', '\n'), { maxLength: 40 })
      .map((tokens) => tokens.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), boxish), (text) => {
        const parsed = parseBoxesText(text);
        if (parsed.kind === 'unparseable') expect(parsed.reason).not.toBe('');
        else for (const b of parsed.boxes) for (const v of [b.x1, b.y1, b.x2, b.y2]) expect(v >= 0 && v <= 100).toBe(true);
      }),
    );
  });
});
