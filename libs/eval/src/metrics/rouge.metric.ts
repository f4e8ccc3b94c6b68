import type { MetricResult, ScoredItem } from './scoring-input';

const BETA = 1.2;

/** Length of the longest common subsequence of two token lists. */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const [long, short] = a.length >= b.length ? [a, b] : [b, a];
  let prev = new Array<number>(short.length + 1).fill(0);
  let cur = new Array<number>(short.length + 1).fill(0);
  for (let i = 1; i <= long.length; i++) {
    for (let j = 1; j <= short.length; j++) {
      cur[j] = long[i - 1] === short[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[short.length];
}

/** ROUGE-L of one candidate: max precision and max recall over the references, taken separately, β = 1.2. */
export function rougeLSentence(candidate: string, references: readonly string[]): number {
  // The toolkit splits on single spaces, so an empty candidate is one empty token (length 1), never 0/0.
  const cand = candidate.split(' ');
  let maxPrecision = 0;
  let maxRecall = 0;
  for (const reference of references) {
    const ref = reference.split(' ');
    const lcs = lcsLength(ref, cand);
    maxPrecision = Math.max(maxPrecision, lcs / cand.length);
    maxRecall = Math.max(maxRecall, lcs / ref.length);
  }
  if (maxPrecision === 0 || maxRecall === 0) return 0;
  return ((1 + BETA ** 2) * maxPrecision * maxRecall) / (maxRecall + BETA ** 2 * maxPrecision);
}

/** ROUGE-L as pycocoevalcap's Rouge: the mean of per-image scores. */
export function computeRougeL(items: readonly ScoredItem[]): MetricResult {
  const perImage = items.map((item) => rougeLSentence(item.candidate, item.references));
  const score = perImage.length === 0 ? 0 : perImage.reduce((a, b) => a + b, 0) / perImage.length;
  return { score, perImage };
}
