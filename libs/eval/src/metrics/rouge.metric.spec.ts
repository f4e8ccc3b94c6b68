import { describe, expect, it } from 'vitest';
import { computeRougeL, lcsLength, rougeLSentence } from './rouge.metric';

describe('ROUGE-L', () => {
  it('computes the LCS length', () => {
    expect(lcsLength('the cat is on the mat'.split(' '), 'the cat sat on the mat'.split(' '))).toBe(5);
    expect(lcsLength([], ['a'])).toBe(0);
  });

  it('matches a hand-worked sentence', () => {
    // LCS("the cat sat on the mat", "the cat is on the mat") = 5 → P = R = 5/6 → F = 5/6 for any β.
    expect(rougeLSentence('the cat sat on the mat', ['the cat is on the mat'])).toBeCloseTo(5 / 6, 12);
  });

  it('takes max precision and max recall over references separately (β = 1.2)', () => {
    // ref1 "the cat": LCS 2 → P = 2/6, R = 1.  ref2 "a dog sat on a mat": LCS 3 → P = 1/2, R = 1/2.
    // Pmax = 1/2, Rmax = 1 → F = (1 + 1.44)·0.5·1 / (1 + 1.44·0.5) = 1.22 / 1.72.
    expect(rougeLSentence('the cat sat on the mat', ['the cat', 'a dog sat on a mat'])).toBeCloseTo(1.22 / 1.72, 12);
  });

  it('scores an empty candidate 0 and averages per image', () => {
    expect(rougeLSentence('', ['a b'])).toBe(0);
    const r = computeRougeL([
      { id: '1', candidate: 'a b', references: ['a b'] },
      { id: '2', candidate: '', references: ['a b'] },
    ]);
    expect(r.perImage).toEqual([1, 0]);
    expect(r.score).toBe(0.5);
  });

  it('counts repeated words once per LCS position', () => {
    // "a a a" vs "a": LCS 1 → P = 1/3, R = 1 → F = 2.44·(1/3) / (1 + 1.44/3).
    expect(rougeLSentence('a a a', ['a'])).toBeCloseTo((2.44 / 3) / (1 + 1.44 / 3), 12);
  });
});
