import { describe, expect, it } from 'vitest';
import { ScoringInputError } from '../errors';
import { boxIoU, computeGrounding } from './grounding.metric';

describe('boxIoU', () => {
  it('uses continuous coordinates (no +1)', () => {
    // 10×10 boxes overlapping on 5×5: 25 / (100 + 100 − 25) = 1/7.
    expect(boxIoU([0, 0, 10, 10], [5, 5, 15, 15])).toBeCloseTo(1 / 7, 12);
    // Half of the reference: 50 / 100, exactly 0.5.
    expect(boxIoU([0, 0, 10, 5], [0, 0, 10, 10])).toBe(0.5);
    // Touching edges share no area; zero-area boxes have IoU 0.
    expect(boxIoU([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(boxIoU([3, 3, 3, 3], [3, 3, 3, 3])).toBe(0);
    expect(boxIoU([1.5, 2.5, 4.5, 6.5], [1.5, 2.5, 4.5, 6.5])).toBe(1);
  });
});

describe('computeGrounding (DIOR-RSVG protocol)', () => {
  const refs = {
    a: [[0, 0, 10, 10]],
    b: [[0, 0, 10, 10], [20, 20, 30, 30]],
    c: [[0, 0, 4, 4]],
    d: [[0, 0, 10, 10]],
  };

  it('scores the first predicted box against its best reference box', () => {
    const preds = {
      a: [[0, 0, 10, 5], [0, 0, 10, 10]], // first box IoU 0.5 (counts: ≥ 0.5); the perfect second box is not looked at
      b: [[20, 20, 30, 30]], // matches the second reference box: 1
      c: [[2, 2, 6, 6]], // 4 / (16 + 16 − 4) = 1/7: a miss
      // d: no prediction, scores 0
    };
    const r = computeGrounding(refs, preds);
    expect(r['acc@0.5']).toBe(0.5);
    // (0.5 + 1 + 1/7 + 0) / 4 = 23/56
    expect(r.meanIoU).toBeCloseTo(23 / 56, 12);
    expect(r.count).toBe(4);
    expect(Object.keys(r)).toEqual(['acc@0.5', 'meanIoU', 'count']);
  });

  it('scores an empty prediction list as no prediction', () => {
    expect(computeGrounding({ a: [[0, 0, 1, 1]] }, { a: [] })).toEqual({ 'acc@0.5': 0, meanIoU: 0, count: 1 });
    expect(computeGrounding({ a: [[0, 0, 1, 1]] }, {})).toEqual({ 'acc@0.5': 0, meanIoU: 0, count: 1 });
  });

  it('rejects malformed boxes naming the id, and ids without references', () => {
    expect(() => computeGrounding(refs, { c: [[5, 0, 4, 4]] })).toThrow(ScoringInputError);
    expect(() => computeGrounding(refs, { c: [[5, 0, 4, 4]] })).toThrow('predictions of id "c": box 0 [5,0,4,4] is malformed (needs x2 ≥ x1 and y2 ≥ y1)');
    expect(() => computeGrounding(refs, { a: [[0, 0, 1, 1], [0, 0, 1]] })).toThrow('predictions of id "a": box 1 must be [x1, y1, x2, y2]');
    expect(() => computeGrounding({ ...refs, e: [[0, 5, 1, 4]] }, {})).toThrow('references of id "e": box 0 [0,5,1,4] is malformed');
    expect(() => computeGrounding({ e: [] }, {})).toThrow('references of id "e" must hold at least one box');
    expect(() => computeGrounding(refs, { a: [0, 0, 1, 1] } as never)).toThrow('predictions of id "a": box 0 must be');
    expect(() => computeGrounding(refs, { z: [[0, 0, 1, 1]] })).toThrow('ids without references: "z"');
    expect(() => computeGrounding({}, {})).toThrow('no samples to score');
    expect(() => computeGrounding([] as never, {})).toThrow('references must be a JSON object keyed by sample id');
  });
});
