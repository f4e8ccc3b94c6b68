import { splitWords } from '../text/whitespace';
import type { MetricResult, ScoredItem } from './scoring-input';

const N = 4;
const SIGMA = 6;

type Counts = Map<string, number>;

function ngramCounts(text: string): Counts {
  const words = splitWords(text);
  const counts: Counts = new Map();
  for (let k = 1; k <= N; k++) {
    for (let i = 0; i + k <= words.length; i++) {
      const key = words.slice(i, i + k).join(' ');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

interface TfIdf {
  vec: Array<Map<string, number>>;
  norm: number[];
  /** The toolkit's "length": the number of *bigrams* (its `n == 1` index), which drives the length penalty. */
  length: number;
}

/**
 * CIDEr-D exactly as pycocoevalcap's CiderScorer computes it: n = 1..4, document frequencies from the
 * references of this set, clipped TF-IDF cosine, Gaussian length penalty (σ = 6), ×10, mean over n and
 * over references. A set of one image scores 0 (every idf is log(1) − log(1)).
 */
export function computeCider(items: readonly ScoredItem[]): MetricResult {
  const refCounts = items.map((item) => item.references.map(ngramCounts));
  const testCounts = items.map((item) => ngramCounts(item.candidate));

  const documentFrequency = new Map<string, number>();
  for (const refs of refCounts) {
    const seen = new Set<string>();
    for (const counts of refs) for (const ngram of counts.keys()) seen.add(ngram);
    for (const ngram of seen) documentFrequency.set(ngram, (documentFrequency.get(ngram) ?? 0) + 1);
  }
  const refLen = Math.log(items.length);

  const toVector = (counts: Counts): TfIdf => {
    const vec = Array.from({ length: N }, () => new Map<string, number>());
    const norm = new Array<number>(N).fill(0);
    let length = 0;
    for (const [ngram, termFreq] of counts) {
      const df = Math.log(Math.max(1, documentFrequency.get(ngram) ?? 0));
      const n = ngram.split(' ').length - 1;
      const value = termFreq * (refLen - df);
      vec[n].set(ngram, value);
      norm[n] += value ** 2;
      if (n === 1) length += termFreq;
    }
    return { vec, norm: norm.map(Math.sqrt), length };
  };

  const similarity = (hyp: TfIdf, ref: TfIdf): number[] => {
    const delta = hyp.length - ref.length;
    const val = new Array<number>(N).fill(0);
    for (let n = 0; n < N; n++) {
      for (const [ngram, h] of hyp.vec[n]) {
        const r = ref.vec[n].get(ngram) ?? 0;
        val[n] += Math.min(h, r) * r;
      }
      if (hyp.norm[n] !== 0 && ref.norm[n] !== 0) val[n] /= hyp.norm[n] * ref.norm[n];
      val[n] *= Math.E ** (-(delta ** 2) / (2 * SIGMA ** 2));
    }
    return val;
  };

  const perImage = items.map((_, i) => {
    const hyp = toVector(testCounts[i]);
    const score = new Array<number>(N).fill(0);
    for (const counts of refCounts[i]) {
      const sim = similarity(hyp, toVector(counts));
      for (let n = 0; n < N; n++) score[n] += sim[n];
    }
    let mean = 0;
    for (let n = 0; n < N; n++) mean += score[n];
    return ((mean / N) / refCounts[i].length) * 10;
  });
  return { score: mean(perImage), perImage };
}

function mean(values: number[]): number {
  if (values.length === 0) return 0;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}
