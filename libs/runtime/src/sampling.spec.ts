import { describe, expect, it } from 'vitest';
import { applyRepetitionPenalty, argmax, createRng, logSoftmax, sampleToken, topKIndices } from './sampling';

describe('sampling helpers', () => {
  it('the seeded generator repeats itself and stays in [0, 1)', () => {
    const a = createRng(42);
    const b = createRng(42);
    const draws = Array.from({ length: 1000 }, () => a());
    expect(draws).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(draws.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(createRng(43)()).not.toBe(createRng(42)());
  });

  it('applies the repetition penalty as Hugging Face does', () => {
    const logits = Float32Array.from([2, -2, 1]);
    applyRepetitionPenalty(logits, [0, 1], 2);
    // positive logits are divided, negative ones multiplied; unseen tokens untouched
    expect(Array.from(logits)).toEqual([1, -4, 1]);
  });

  it('argmax and top-k break ties towards the lower index', () => {
    expect(argmax(Float32Array.from([1, 3, 3, 2]))).toBe(1);
    expect(topKIndices([1, 3, 3, 2], 3)).toEqual([1, 2, 3]);
  });

  it('the shortlist top-k equals a full sort on a large vocabulary', () => {
    const random = createRng(1);
    const values = Array.from({ length: 5000 }, () => Math.round(random() * 100));
    const full = Array.from(values.keys()).sort((a, b) => values[b] - values[a] || a - b);
    expect(topKIndices(values, 7)).toEqual(full.slice(0, 7));
  });

  it('log-softmax sums to one in probability space', () => {
    const logProbs = logSoftmax(Float32Array.from([1, 2, 3, 1000]));
    expect(Array.from(logProbs).reduce((sum, lp) => sum + Math.exp(lp), 0)).toBeCloseTo(1, 12);
    expect(logProbs[3]).toBeCloseTo(0, 12);
  });

  it('samples only inside the top-k and nucleus sets, in proportion to probability', () => {
    const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
    const random = createRng(9);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20_000; i++) counts[sampleToken(logits, { temperature: 1, topK: 0, topP: 1 }, random)]++;
    expect(counts[0] / 20_000).toBeCloseTo(0.5, 1);
    expect(counts[3] / 20_000).toBeCloseTo(0.05, 1);
    const topTwo = new Set(Array.from({ length: 2000 }, () => sampleToken(logits, { temperature: 1, topK: 2, topP: 1 }, random)));
    expect([...topTwo].sort()).toEqual([0, 1]);
    // nucleus 0.75: 0.5 + 0.3 reaches it, so tokens 2 and 3 are never drawn
    const nucleus = new Set(Array.from({ length: 2000 }, () => sampleToken(logits, { temperature: 1, topK: 0, topP: 0.75 }, random)));
    expect([...nucleus].sort()).toEqual([0, 1]);
  });
});
