import { describe, expect, it } from 'vitest';
import { computeCider } from './cider.metric';

describe('computeCider', () => {
  it('is 0 for a one-image set, even for a perfect candidate', () => {
    // N = 1: every weight is log(1) − log(max(1, df)) = 0.
    expect(computeCider([{ id: '1', candidate: 'a b c', references: ['a b c'] }]).score).toBe(0);
  });

  it('matches a hand-worked two-image set', () => {
    // N = 2, log N = ln 2. Image A: cand "a b", ref "a b"; image B: cand "c d", ref "e f".
    // df = 1 for every reference n-gram, so each weight is ln 2 − ln 1 = ln 2.
    // A: 1-grams cosine 1, 2-grams cosine 1, 3-/4-grams empty (0); same bigram count, penalty 1.
    //    mean over n = (1 + 1 + 0 + 0) / 4 = 0.5, one reference, ×10 → 5.
    // B: no shared n-gram → 0. Corpus = (5 + 0) / 2 = 2.5.
    const r = computeCider([
      { id: 'A', candidate: 'a b', references: ['a b'] },
      { id: 'B', candidate: 'c d', references: ['e f'] },
    ]);
    expect(r.perImage[0]).toBeCloseTo(5, 12);
    expect(r.perImage[1]).toBe(0);
    expect(r.score).toBeCloseTo(2.5, 12);
  });

  it('applies the Gaussian length penalty on the bigram-count difference (σ = 6)', () => {
    // As above, but A's candidate "a b b" adds one bigram "b b": 1-gram vector (ln2, 2ln2) vs (ln2, ln2):
    // cos1 = (ln2·ln2 + ln2·ln2) / (√5 ln2 · √2 ln2) = 2/√10 (clipping keeps min(2ln2, ln2) = ln2).
    // 2-grams: hyp ("a b", "b b") · ref ("a b") = ln2² / (√2 ln2 · ln2) = 1/√2.
    // bigram counts 2 vs 1 → penalty e^(−1/72).
    const r = computeCider([
      { id: 'A', candidate: 'a b b', references: ['a b'] },
      { id: 'B', candidate: 'c d', references: ['e f'] },
    ]);
    const expected = ((2 / Math.sqrt(10) + 1 / Math.SQRT2) / 4) * 10 * Math.exp(-1 / 72);
    expect(r.perImage[0]).toBeCloseTo(expected, 12);
  });

  it('keeps an empty candidate in N and scores it 0', () => {
    const r = computeCider([
      { id: 'A', candidate: 'a b', references: ['a b'] },
      { id: 'B', candidate: '', references: ['e f'] },
    ]);
    expect(r.perImage).toEqual([expect.closeTo(5, 12), 0]);
    expect(r.score).toBeCloseTo(2.5, 12);
  });
});
