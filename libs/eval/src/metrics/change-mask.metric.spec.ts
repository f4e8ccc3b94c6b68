import { describe, expect, it } from 'vitest';
import { ScoringInputError } from '../errors';
import { changeMaskScores, computeChangeMask } from './change-mask.metric';

const u8 = (values: number[]) => Uint8Array.from(values);

describe('computeChangeMask (LEVIR-CD convention)', () => {
  it('pools the changed-class counts over all pixels of the set; any non-zero value is "changed"', () => {
    // Mask 1: TP at 1 and 4, FN at 2, FP at 3. Mask 2: two FP. → TP 2, FP 3, FN 1
    const r = computeChangeMask([
      { name: 'a', reference: u8([0, 255, 255, 0, 255, 0]), prediction: u8([0, 1, 0, 1, 255, 0]) },
      { name: 'b', reference: u8([0, 0]), prediction: u8([1, 7]) },
    ]);
    expect(r.precision).toBeCloseTo(2 / 5, 12);
    expect(r.recall).toBeCloseTo(2 / 3, 12);
    expect(r.F1).toBeCloseTo(0.5, 12); // 2·2 / (2·2 + 3 + 1)
    expect(r.IoU).toBeCloseTo(1 / 3, 12); // 2 / (2 + 3 + 1)
    expect(Object.keys(r)).toEqual(['F1', 'IoU', 'precision', 'recall']);
  });

  it('defines the 0/0 cases', () => {
    // Nothing changed, nothing predicted: perfect.
    expect(computeChangeMask([{ name: 'a', reference: u8([0, 0]), prediction: u8([0, 0]) }])).toEqual({ F1: 1, IoU: 1, precision: 1, recall: 1 });
    // Nothing changed, something predicted: recall 0/0 → 0, the rest 0 by their formulas.
    expect(changeMaskScores({ truePositive: 0, falsePositive: 4, falseNegative: 0 })).toEqual({ F1: 0, IoU: 0, precision: 0, recall: 0 });
    // Changes missed entirely: precision 0/0 → 0.
    expect(changeMaskScores({ truePositive: 0, falsePositive: 0, falseNegative: 4 })).toEqual({ F1: 0, IoU: 0, precision: 0, recall: 0 });
  });

  it('rejects pairs of different sizes and an empty set', () => {
    expect(() => computeChangeMask([{ name: 'x.png', reference: u8([0]), prediction: u8([0, 0]) }])).toThrow(ScoringInputError);
    expect(() => computeChangeMask([{ name: 'x.png', reference: u8([0]), prediction: u8([0, 0]) }])).toThrow('x.png: the prediction has 2 pixels');
    expect(() => computeChangeMask([])).toThrow('no pixel to score');
  });
});
