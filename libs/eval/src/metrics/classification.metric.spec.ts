import { describe, expect, it } from 'vitest';
import { ScoringInputError } from '../errors';
import { computeClassification, normalizeClassLabel } from './classification.metric';

describe('computeClassification', () => {
  it('computes overall and per-class accuracy, a missing prediction counting as wrong', () => {
    const refs = { 1: 'airport', 2: 'airport', 3: 'beach', 4: 'Beach', 5: 'forest' };
    const preds = { 1: 'Airport.', 2: 'beach', 3: 'beach', 4: ' beach ' };
    // right: 1, 3, 4 → 3/5; airport 1/2, beach 2/2, forest 0/1
    expect(computeClassification(refs, preds)).toEqual({ accuracy: 0.6, perClass: { airport: 0.5, beach: 1, forest: 0 }, count: 5 });
  });

  it('normalises case, spacing and a final period only', () => {
    expect(normalizeClassLabel('  Dense   Residential. ')).toBe('dense residential');
    expect(normalizeClassLabel('denseresidential')).not.toBe(normalizeClassLabel('dense residential'));
  });

  it('rejects ids without references and labels that are not strings', () => {
    expect(() => computeClassification({ a: 'x' }, { b: 'x' })).toThrow(ScoringInputError);
    expect(() => computeClassification({ a: 'x' }, { b: 'x' })).toThrow('ids without references: "b"');
    expect(() => computeClassification({ a: 'x' }, { a: 3 } as never)).toThrow('prediction of id "a" must be a non-empty string, got 3');
    expect(() => computeClassification({ a: ' ' }, {})).toThrow('reference of id "a" must be a non-empty string');
    expect(() => computeClassification({}, {})).toThrow('no samples to score');
  });
});
