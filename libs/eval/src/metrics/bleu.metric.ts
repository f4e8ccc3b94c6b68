import { splitWords } from '../text/whitespace';
import type { ScoredItem } from './scoring-input';

/** BLEU-1..4 as pycocoevalcap's BleuScorer with option 'closest'. */
export interface BleuResult {
  /** Corpus BLEU-1..4 (fractions): clipped counts and lengths summed over the set, then combined. */
  scores: [number, number, number, number];
  /** Per image [BLEU-1..4], with the toolkit's smoothing constants and a per-image brevity penalty. */
  perImage: Array<[number, number, number, number]>;
}

const N = 4;
// The toolkit's constants: `tiny` keeps a zero count at zero after the power, `small` avoids 0/0.
const SMALL = 1e-9;
const TINY = 1e-15;

function ngramCounts(words: string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let k = 1; k <= n; k++) {
    for (let i = 0; i + k <= words.length; i++) {
      const key = words.slice(i, i + k).join(' ');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

interface Cooked {
  testLength: number;
  refLength: number;
  guess: number[];
  correct: number[];
}

function cook(item: ScoredItem): Cooked {
  const refLengths: number[] = [];
  const maxRefCounts = new Map<string, number>();
  for (const reference of item.references) {
    const words = splitWords(reference);
    refLengths.push(words.length);
    for (const [ngram, count] of ngramCounts(words, N)) {
      maxRefCounts.set(ngram, Math.max(maxRefCounts.get(ngram) ?? 0, count));
    }
  }
  const words = splitWords(item.candidate);
  const testLength = words.length;
  // 'closest': the reference length nearest to the candidate's; ties go to the shorter one.
  let refLength = refLengths[0];
  for (const length of refLengths) {
    const d = Math.abs(length - testLength);
    const best = Math.abs(refLength - testLength);
    if (d < best || (d === best && length < refLength)) refLength = length;
  }
  const guess = Array.from({ length: N }, (_, k) => Math.max(0, testLength - k));
  const correct = new Array<number>(N).fill(0);
  for (const [ngram, count] of ngramCounts(words, N)) {
    const order = ngram.split(' ').length;
    correct[order - 1] += Math.min(maxRefCounts.get(ngram) ?? 0, count);
  }
  return { testLength, refLength, guess, correct };
}

function combine(correct: number[], guess: number[], testLength: number, refLength: number): [number, number, number, number] {
  const out: number[] = [];
  let product = 1;
  for (let k = 0; k < N; k++) {
    product *= (correct[k] + TINY) / (guess[k] + SMALL);
    out.push(product ** (1 / (k + 1)));
  }
  const ratio = (testLength + TINY) / (refLength + SMALL);
  if (ratio < 1) {
    const penalty = Math.exp(1 - 1 / ratio);
    for (let k = 0; k < N; k++) out[k] *= penalty;
  }
  return out as [number, number, number, number];
}

/** Corpus and per-image BLEU-1..4 of tokenized items (pycocoevalcap `Bleu(4)`). */
export function computeBleu(items: readonly ScoredItem[]): BleuResult {
  const totalGuess = new Array<number>(N).fill(0);
  const totalCorrect = new Array<number>(N).fill(0);
  let totalTest = 0;
  let totalRef = 0;
  const perImage: BleuResult['perImage'] = [];
  for (const item of items) {
    const c = cook(item);
    totalTest += c.testLength;
    totalRef += c.refLength;
    for (let k = 0; k < N; k++) {
      totalGuess[k] += c.guess[k];
      totalCorrect[k] += c.correct[k];
    }
    perImage.push(combine(c.correct, c.guess, c.testLength, c.refLength));
  }
  return { scores: combine(totalCorrect, totalGuess, totalTest, totalRef), perImage };
}
