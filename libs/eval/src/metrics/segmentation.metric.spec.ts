import { describe, expect, it } from 'vitest';
import { ScoringInputError } from '../errors';
import { computeSegmentation, parseClassList, SegmentationCounter } from './segmentation.metric';

const u8 = (values: number[]) => Uint8Array.from(values);

describe('computeSegmentation (mmsegmentation convention)', () => {
  const classes = ['background', 'building', 'road', 'water'];
  // Mask 1 (8 px) — ref/pred: 0/0 0/1 1/1 1/1 1/2 2/2 255/0 (ignored) 0/255 (no class predicted)
  const mask1 = { name: 'm1.png', reference: u8([0, 0, 1, 1, 1, 2, 255, 0]), prediction: u8([0, 1, 1, 1, 2, 2, 0, 255]) };
  // Mask 2 (4 px) — 2/2 2/0 2/2 0/0
  const mask2 = { name: 'm2.png', reference: u8([2, 2, 2, 0]), prediction: u8([2, 0, 2, 0]) };

  it('sums intersections and unions over the set and leaves out classes with an empty union', () => {
    // Totals — reference area [4, 3, 4, 0], predicted area [3, 3, 4, 0], intersection [2, 2, 3, 0]
    // IoU: background 2/(3+4−2) = 0.4, building 2/(3+3−2) = 0.5, road 3/(4+4−3) = 0.6, water: union 0 → null
    const r = computeSegmentation([mask1, mask2], classes);
    expect(r.perClassIoU.background).toBeCloseTo(0.4, 12);
    expect(r.perClassIoU.building).toBeCloseTo(0.5, 12);
    expect(r.perClassIoU.road).toBeCloseTo(0.6, 12);
    expect(r.perClassIoU.water).toBeNull();
    expect(r.mIoU).toBeCloseTo(0.5, 12); // (0.4 + 0.5 + 0.6) / 3, water left out
    expect(r.pixelAccuracy).toBeCloseTo(7 / 11, 12);
  });

  it('keeps a class that is only predicted, with IoU 0', () => {
    // background: 3 / (3 + 4 − 3) = 0.75; building: predicted once, never present → 0; road: null
    const r = computeSegmentation([{ name: 'x', reference: u8([0, 0, 0, 0]), prediction: u8([0, 0, 1, 0]) }], ['background', 'building', 'road']);
    expect(r).toEqual({ mIoU: 0.375, perClassIoU: { background: 0.75, building: 0, road: null }, pixelAccuracy: 0.75 });
  });

  it('accumulates pair by pair like the one-shot function', () => {
    const counter = new SegmentationCounter(classes);
    counter.add(mask2);
    counter.add(mask1);
    expect(counter.result()).toEqual(computeSegmentation([mask1, mask2], classes));
  });

  it('names the mask whose values do not fit the class list, or whose size differs', () => {
    const three = ['a', 'b', 'c'];
    expect(() => computeSegmentation([{ name: 'r.png', reference: u8([3]), prediction: u8([0]) }], three)).toThrow(ScoringInputError);
    expect(() => computeSegmentation([{ name: 'r.png', reference: u8([3]), prediction: u8([0]) }], three)).toThrow(
      'reference r.png: value 3 is neither a class index (0–2) nor 255 (ignore)',
    );
    expect(() => computeSegmentation([{ name: 'p.png', reference: u8([0]), prediction: u8([9]) }], three)).toThrow('prediction p.png: value 9');
    expect(() => computeSegmentation([{ name: 's.png', reference: u8([0, 0]), prediction: u8([0]) }], three)).toThrow('s.png: the prediction has 1 pixels, the reference 2');
    expect(() => computeSegmentation([{ name: 'i.png', reference: u8([255, 255]), prediction: u8([0, 1]) }], three)).toThrow('no pixel to score');
    expect(() => computeSegmentation([], three)).toThrow('no pixel to score');
  });
});

describe('parseClassList', () => {
  it('accepts 1 to 255 distinct names', () => {
    expect(parseClassList(['background', 'building'])).toEqual(['background', 'building']);
    expect(parseClassList(Array.from({ length: 255 }, (_, i) => `c${i}`))).toHaveLength(255);
  });

  it('rejects anything else', () => {
    expect(() => parseClassList({ 0: 'background' })).toThrow('classes must be a JSON array of 1 to 255 class names');
    expect(() => parseClassList([])).toThrow('classes must be a JSON array');
    expect(() => parseClassList(Array.from({ length: 256 }, (_, i) => `c${i}`))).toThrow('classes must be a JSON array');
    expect(() => parseClassList(['a', 2])).toThrow('classes[1] must be a non-empty string, got 2');
    expect(() => parseClassList(['a', 'b', 'a'])).toThrow('classes[2]: duplicate class name "a"');
  });
});
