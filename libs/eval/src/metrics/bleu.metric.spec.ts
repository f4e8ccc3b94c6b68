import { describe, expect, it } from 'vitest';
import { computeBleu } from './bleu.metric';

const SMALL = 1e-9;
const TINY = 1e-15;
const item = (candidate: string, references: string[], id = 'x') => ({ id, candidate, references });

describe('computeBleu', () => {
  it('matches a hand-worked sentence', () => {
    // cand "the cat sat on the mat" (6 words), ref "the cat is on the mat" (6 words)
    // 1-grams: the×2 cat on mat clip to 5 of 6        p1 = 5/6
    // 2-grams: "the cat" "on the" "the mat" = 3 of 5  p2 = 3/5
    // 3-grams: "on the mat" = 1 of 4                   p3 = 1/4
    // 4-grams: none of 3                               p4 = (0 + tiny) / (3 + small)
    // Equal lengths, yet the toolkit's ratio (6 + tiny) / (6 + small) is just below 1: a brevity penalty of
    // exp(1 − 1/ratio) ≈ 1 − 1.7e-10 still applies (kept, it is what the toolkit prints).
    const { scores } = computeBleu([item('the cat sat on the mat', ['the cat is on the mat'])]);
    const bp = Math.exp(1 - (6 + SMALL) / (6 + TINY));
    const p = [(5 + TINY) / (6 + SMALL), (3 + TINY) / (5 + SMALL), (1 + TINY) / (4 + SMALL), TINY / (3 + SMALL)];
    expect(scores[0]).toBeCloseTo(p[0] * bp, 15); // 5/6 up to the smoothing constants
    expect(scores[0]).toBeCloseTo(5 / 6, 8);
    expect(scores[1]).toBeCloseTo(Math.sqrt(p[0] * p[1]) * bp, 15);
    expect(scores[1]).toBeCloseTo(Math.sqrt(0.5), 8); // sqrt(5/6 · 3/5)
    expect(scores[2]).toBeCloseTo(Math.cbrt(p[0] * p[1] * p[2]) * bp, 15);
    expect(scores[2]).toBeCloseTo(0.5, 8); // cbrt(5/6 · 3/5 · 1/4) = cbrt(1/8)
    expect(scores[3]).toBeCloseTo((p[0] * p[1] * p[2] * p[3]) ** 0.25 * bp, 15);
    expect(scores[3]).toBeLessThan(1e-4);
  });

  it('applies the brevity penalty from the closest reference length', () => {
    // cand "the cat" (2), ref of 6 words: BP = exp(1 − 6/2) = e^−2, p1 = 2/2.
    const short = computeBleu([item('the cat', ['the cat sat on the mat'])]);
    expect(short.scores[0]).toBeCloseTo(Math.exp(-2), 6);
    // cand of 5 words, refs of 3 and 7: both 2 away, the shorter (3) is taken, so no penalty.
    const tie = computeBleu([item('a b c d e', ['a b c', 'a b c d e f g'])]);
    expect(tie.scores[0]).toBeCloseTo(1, 6);
  });

  it('sums clipped counts and lengths over the corpus before combining', () => {
    // image 1: "a a a" vs "a" → 1-gram clipped 1 of 3, closest ref length 1
    // image 2: "b" vs "b"     → 1 of 1
    // corpus p1 = (1 + 1) / (3 + 1) = 0.5; lengths 4 vs 2: no penalty. The mean of per-image values would differ.
    const r = computeBleu([item('a a a', ['a'], '1'), item('b', ['b'], '2')]);
    expect(r.scores[0]).toBeCloseTo(0.5, 6);
    expect(r.perImage[0][0]).toBeCloseTo(1 / 3, 6);
    expect(r.perImage[1][0]).toBeCloseTo(1, 6);
  });

  it('scores an empty candidate 0 and keeps its reference length in the corpus', () => {
    // image 1 perfect (4 words), image 2 empty vs a 4-word reference: c = 4, r = 8 → BP = e^(1 − 2) = e^−1.
    const r = computeBleu([item('a b c d', ['a b c d'], '1'), item('', ['e f g h'], '2')]);
    expect(r.perImage[1]).toEqual([0, 0, 0, 0].map((v, k) => expect.closeTo(v, 9 - k)));
    expect(r.scores[0]).toBeCloseTo(Math.exp(-1), 6);
    expect(r.scores[3]).toBeCloseTo(Math.exp(-1), 6);
  });

  it('gives 1 to a candidate equal to a reference and handles single words', () => {
    const same = computeBleu([item('a large green lake', ['a large green lake', 'some water'])]);
    expect(same.scores[3]).toBeCloseTo(1, 6);
    const single = computeBleu([item('lake', ['lake'])]);
    expect(single.scores[0]).toBeCloseTo(1, 6);
    // no 2-grams at all: (0 + tiny) / (0 + small) = 1e-6 for p2
    expect(single.scores[1]).toBeCloseTo(Math.sqrt(1e-6), 9);
  });
});
