import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCocoRle, encodeCocoRle } from './coco-rle';
import { decodeCocoCounts, encodeCocoCounts } from './coco-rle-counts';
import { InvalidCocoRleError, InvalidMaskShapeError } from './errors';

/** A row-major width × height mask with the given rectangles set ([x1, y1, x2, y2), half-open). */
function rectMask(width: number, height: number, rects: [number, number, number, number][]): Uint8Array {
  const mask = new Uint8Array(width * height);
  for (const [x1, y1, x2, y2] of rects) for (let y = y1; y < y2; y++) mask.fill(1, y * width + x1, y * width + x2);
  return mask;
}

// Expected strings are what pycocotools 2.0.11 `mask.encode(np.asfortranarray(m))` returns for the same masks.
const KNOWN: { name: string; width: number; height: number; mask: Uint8Array; counts: string }[] = [
  { name: 'all zeros, 2 × 3', width: 3, height: 2, mask: new Uint8Array(6), counts: '6' },
  { name: 'all ones, 2 × 3 (a leading empty run)', width: 3, height: 2, mask: new Uint8Array(6).fill(1), counts: '06' },
  // pycocotools' documented examples: M = [0 0 1 1 1 0 1] has counts [2 3 1 1], M = [1 1 1 1 1 1 0] has [0 6 1].
  { name: 'documented [0 0 1 1 1 0 1] (negative delta)', width: 1, height: 7, mask: Uint8Array.from([0, 0, 1, 1, 1, 0, 1]), counts: '231N' },
  { name: 'documented [1 1 1 1 1 1 0]', width: 1, height: 7, mask: Uint8Array.from([1, 1, 1, 1, 1, 1, 0]), counts: '061' },
  {
    name: 'column-major order, 3 × 4',
    width: 4,
    height: 3,
    mask: Uint8Array.from([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]),
    counts: '012020N0',
  },
  { name: 'checkerboard, 5 × 5', width: 5, height: 5, mask: Uint8Array.from({ length: 25 }, (_, i) => (Math.floor(i / 5) + (i % 5)) % 2), counts: '1110000000000000000000000' },
  {
    name: 'rectangle, 40 × 50 (multi-character numbers)',
    width: 50,
    height: 40,
    mask: rectMask(50, 40, [[10, 5, 45, 25]]),
    counts: 'e<d0d00000000000000000000000000000000000000000000000000000000000000000000S6',
  },
  {
    name: 'two rectangles, 64 × 48 (large negative deltas)',
    width: 48,
    height: 64,
    mask: rectMask(48, 64, [
      [3, 0, 7, 60],
      [20, 10, 40, 12],
    ]),
    counts: 'P6l1400000Zj0VN`WO0000000000000000000000000000000000000f?',
  },
  { name: 'one set pixel at the end of 300 × 400', width: 400, height: 300, mask: rectMask(400, 300, [[399, 299, 400, 300]]), counts: 'oUe31' },
  { name: 'empty, 0 × 0', width: 0, height: 0, mask: new Uint8Array(0), counts: '0' },
];

describe('COCO RLE', () => {
  it.each(KNOWN)('encodes and decodes as pycocotools: $name', ({ width, height, mask, counts }) => {
    expect(encodeCocoRle(mask, width, height)).toEqual({ size: [height, width], counts });
    // Buffer comparison: a deep toEqual over the 120,000 bytes of the largest case is slow.
    expect(Buffer.compare(decodeCocoRle({ size: [height, width], counts }), mask)).toBe(0);
  });

  it('reads any non-zero byte as foreground', () => {
    expect(encodeCocoRle(Uint8Array.from([0, 0, 255, 7, 1, 0, 200]), 1, 7).counts).toBe('231N');
  });

  it('rejects a mask of the wrong length or size', () => {
    expect(() => encodeCocoRle(new Uint8Array(5), 2, 3)).toThrow(InvalidMaskShapeError);
    expect(() => encodeCocoRle(new Uint8Array(0), -1, 0)).toThrow(InvalidMaskShapeError);
  });

  it('rejects malformed counts', () => {
    const reason = (size: [number, number], counts: string) => {
      try {
        decodeCocoRle({ size, counts });
        return 'decoded';
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidCocoRleError);
        return (error as InvalidCocoRleError).reason;
      }
    };
    expect(reason([7, 1], '231')).toBe('runs cover 6 pixels, the 7 × 1 mask has 7');
    expect(reason([7, 1], '231 ')).toBe('character 3 (" ") is not in the counts alphabet');
    expect(reason([7, 1], '23P')).toBe('counts end inside a number (at character 3)');
    expect(reason([7, 1], 'PPPPPPP0')).toBe('the number ending at character 7 is longer than 7 characters');
    expect(reason([7, 1], '1N')).toBe('count 1 is negative (-2)');
    expect(reason([7.5, 1], '7')).toBe('size must be [height, width] in pixels, got [7.5,1]');
    expect(decodeCocoRle({ size: [2, 2], counts: '0000004' })).toEqual(new Uint8Array(4));
  });
});

describe('COCO RLE properties', () => {
  const masks = fc
    .record({ width: fc.integer({ min: 0, max: 24 }), height: fc.integer({ min: 0, max: 24 }), density: fc.integer({ min: 0, max: 8 }) })
    .chain(({ width, height, density }) =>
      // Values 0..8 against a random density give masks from empty through speckled to full.
      fc.uint8Array({ minLength: width * height, maxLength: width * height, max: 8 }).map((raw) => ({
        width,
        height,
        mask: raw.map((value) => (value < density ? 1 : 0)),
      })),
    );

  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(masks, ({ width, height, mask }) => {
        expect(decodeCocoRle(encodeCocoRle(mask, width, height))).toEqual(mask);
      }),
    );
  });

  it('the counts string codec reads back any counts, up to uint32', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { maxLength: 30 }), (counts) => {
        expect(decodeCocoCounts(encodeCocoCounts(counts))).toEqual(counts);
      }),
    );
  });
});
