import { describe, expect, it } from 'vitest';
import { normalizeVqaAnswer, rsvqaAccuracy, vqaProcessPunctuation, vqaV2Accuracy, vqaV2Summary } from './vqa-accuracy.metric';

describe('RSVQA accuracy', () => {
  it('computes per-type, average (mean over types) and overall (pooled) accuracy', () => {
    // presence: 2 of 3 right; count: 1 of 1 → AA = (2/3 + 1) / 2 = 5/6, OA = 3/4.
    const r = rsvqaAccuracy([
      { type: 'presence', answer: 'yes', prediction: 'Yes' },
      { type: 'presence', answer: 'no', prediction: 'no.' },
      { type: 'presence', answer: 'no', prediction: 'yes' },
      { type: 'count', answer: '12', prediction: ' 12 ' },
    ]);
    expect(r.perType.presence).toEqual({ correct: 2, total: 3, accuracy: 2 / 3 });
    expect(r.averageAccuracy).toBeCloseTo(5 / 6, 12);
    expect(r.overallAccuracy).toBe(0.75);
  });
});

describe('VQA-v2 accuracy', () => {
  const tenOf = (pairs: Array<[string, number]>) => pairs.flatMap(([a, n]) => new Array<string>(n).fill(a));

  it('averages min(1, matches/3) over the ten leave-one-out subsets', () => {
    // 2 humans said "2": leaving out one of them → 1 match → 1/3 (2 subsets); leaving out another → 2/3 (8 subsets).
    // (2·1/3 + 8·2/3) / 10 = 0.6
    expect(vqaV2Accuracy('2', tenOf([['2', 2], ['3', 8]]))).toBeCloseTo(0.6, 12);
    // 3 matches: leaving one of them out → 2/3 (3 subsets), else 1 (7) → (2 + 7) / 10 = 0.9
    expect(vqaV2Accuracy('two', tenOf([['2', 3], ['3', 7]]))).toBeCloseTo(0.9, 12);
    expect(vqaV2Accuracy('yes', tenOf([['yes', 10]]))).toBe(1);
    expect(vqaV2Accuracy('no', tenOf([['yes', 10]]))).toBe(0);
  });

  it('applies the official answer normalisation', () => {
    expect(normalizeVqaAnswer('The Two dogs.')).toBe('2 dogs');
    expect(normalizeVqaAnswer('dont')).toBe('don’t');
    expect(vqaProcessPunctuation('1,000')).toBe('1000');
    expect(vqaProcessPunctuation('red/white')).toBe('red white');
    const s = vqaV2Summary([{ type: 'how many', answers: tenOf([['2', 10]]), prediction: 'two' }]);
    expect(s).toEqual({ overall: 1, perType: { 'how many': 1 } });
  });
});
