import { describe, expect, it } from 'vitest';
import { MeteorAligner, computeMeteor, meteorScoreFromStats } from './meteor.metric';

describe('METEOR (exact + stem)', () => {
  it('gives 1 to a candidate equal to its reference (no fragmentation penalty)', () => {
    const r = computeMeteor([{ id: '1', candidate: 'a large green lake', references: ['a large green lake'] }]);
    expect(r.score).toBeCloseTo(1, 12);
  });

  it('matches a hand-worked exact + stem alignment', () => {
    // cand "cats sat", ref "the cat sat". Matches: cats~cat (stem, weight 0.6), sat=sat (exact, 1.0); one chunk.
    // Function words: "the" (ref only). δ = 0.75.
    // P = (1·1.0·0.75 + 1·0.6·0.75) / (0.75·2) = 1.2 / 1.5 = 0.8
    // R = 1.2 / (0.75·2 + 0.25·1) = 1.2 / 1.75
    // Fmean = 1 / (0.15/P + 0.85/R); frag = 1 chunk / ((2 + 2)/2) = 0.5; penalty = 0.6 · 0.5^0.2
    const stats = new MeteorAligner().stats(['cats', 'sat'], ['the', 'cat', 'sat']);
    expect(stats.testStageMatchesContent.slice(0, 2)).toEqual([1, 1]);
    expect(stats.chunks).toBe(1);
    const p = 0.8;
    const r = 1.2 / 1.75;
    const fMean = 1 / (0.15 / p + 0.85 / r);
    expect(meteorScoreFromStats(stats)).toBeCloseTo(fMean * (1 - 0.6 * 0.5 ** 0.2), 12);
  });

  it('keeps the best reference per image and aggregates statistics for the corpus', () => {
    const items = [
      { id: '1', candidate: 'a red roof', references: ['a blue car', 'a red roof'] },
      { id: '2', candidate: 'some trees', references: ['a river'] },
    ];
    const r = computeMeteor(items);
    expect(r.perImage[0]).toBeCloseTo(1, 12);
    expect(r.perImage[1]).toBe(0);
    // Aggregated: 3 of 5 test words and 3 of 6 reference words matched — not the mean of 1 and 0.
    expect(r.score).toBeGreaterThan(0);
    expect(r.score).not.toBeCloseTo(0.5, 3);
  });

  it('scores an empty candidate 0', () => {
    expect(computeMeteor([{ id: '1', candidate: '', references: ['a b'] }]).score).toBe(0);
  });

  it('lowercases and tokenizes like Meteor -norm (hyphens split, punctuation separated)', () => {
    const r = computeMeteor([{ id: '1', candidate: 'Tree-Lined road.', references: ['tree lined road .'] }]);
    expect(r.score).toBeCloseTo(1, 12);
  });
});
