import porter2 from 'wink-porter2-stemmer';
import { meteorNormalize } from '../text/meteor-normalizer';
import { ENGLISH_FUNCTION_WORDS } from './meteor-function-words';
import type { MetricResult, ScoredItem } from './scoring-input';

/**
 * Meteor 1.5 parameters for English (task "rank", the default): α, β, γ, δ and the scoring weights of the
 * exact, stem, synonym and paraphrase modules. Only exact and stem matching are implemented here.
 */
export const METEOR_EN_PARAMETERS = {
  alpha: 0.85,
  beta: 0.2,
  gamma: 0.6,
  delta: 0.75,
  moduleWeights: [1.0, 0.6, 0.8, 0.6],
} as const;

const MODULE_EXACT = 0;
const MODULE_STEM = 1;
const MAX_MODULES = 4;
const BEAM_SIZE = 40;
// Meteor overrides the aligner's weights with these "best weights for evaluation" when it ranks alignments.
const ALIGNMENT_WEIGHTS = [1.0, 0.5, 0.5, 0.5];

interface Match {
  module: number;
  /** Index in the reference (line 2). */
  start: number;
  length: number;
  /** Index in the candidate (line 1). */
  matchStart: number;
  matchLength: number;
}

interface Path {
  matches: Array<Match | null>;
  used1: boolean[];
  used2: boolean[];
  // Meteor keeps these as Java ints, so `+= length × 0.5` for a stem match truncates to no change:
  // only exact matches count when alignments are ranked.
  matches1: number;
  matches2: number;
  chunks: number;
  idx: number;
  distance: number;
  lastMatchEnd: number;
}

function copyPath(p: Path): Path {
  return { ...p, matches: p.matches.slice(), used1: p.used1.slice(), used2: p.used2.slice() };
}

function comparePaths(x: Path, y: Path): number {
  const matchDiff = y.matches1 + y.matches2 - (x.matches1 + x.matches2);
  if (matchDiff > 0) return 1;
  if (matchDiff < 0) return -1;
  if (x.chunks !== y.chunks) return x.chunks - y.chunks;
  return x.distance - y.distance;
}

function addTruncated(value: number, increment: number): number {
  return Math.trunc(value + increment);
}

/** Sufficient statistics of one segment (Meteor's MeteorStats, word-based), for up to 4 modules. */
export interface MeteorStats {
  testLength: number;
  referenceLength: number;
  testFunctionWords: number;
  referenceFunctionWords: number;
  testStageMatchesContent: number[];
  referenceStageMatchesContent: number[];
  testStageMatchesFunction: number[];
  referenceStageMatchesFunction: number[];
  chunks: number;
  testWordMatches: number;
  referenceWordMatches: number;
}

function emptyStats(): MeteorStats {
  const zeros = () => new Array<number>(MAX_MODULES).fill(0);
  return {
    testLength: 0,
    referenceLength: 0,
    testFunctionWords: 0,
    referenceFunctionWords: 0,
    testStageMatchesContent: zeros(),
    referenceStageMatchesContent: zeros(),
    testStageMatchesFunction: zeros(),
    referenceStageMatchesFunction: zeros(),
    chunks: 0,
    testWordMatches: 0,
    referenceWordMatches: 0,
  };
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
const totalTestMatches = (s: MeteorStats) => sum(s.testStageMatchesContent) + sum(s.testStageMatchesFunction);
const totalRefMatches = (s: MeteorStats) => sum(s.referenceStageMatchesContent) + sum(s.referenceStageMatchesFunction);
const isPerfect = (s: MeteorStats) =>
  totalTestMatches(s) === s.testLength && totalRefMatches(s) === s.referenceLength && s.chunks === 1;

/** Meteor's `computeMetrics`: the score of a (segment or aggregated) set of statistics. */
export function meteorScoreFromStats(s: MeteorStats): number {
  const { alpha, beta, gamma, delta, moduleWeights } = METEOR_EN_PARAMETERS;
  const testWeightedLength = delta * (s.testLength - s.testFunctionWords) + (1 - delta) * s.testFunctionWords;
  const refWeightedLength = delta * (s.referenceLength - s.referenceFunctionWords) + (1 - delta) * s.referenceFunctionWords;
  let testWeighted = 0;
  let refWeighted = 0;
  for (let i = 0; i < MAX_MODULES; i++) testWeighted += s.testStageMatchesContent[i] * moduleWeights[i] * delta;
  for (let i = 0; i < MAX_MODULES; i++) refWeighted += s.referenceStageMatchesContent[i] * moduleWeights[i] * delta;
  for (let i = 0; i < MAX_MODULES; i++) testWeighted += s.testStageMatchesFunction[i] * moduleWeights[i] * (1 - delta);
  for (let i = 0; i < MAX_MODULES; i++) refWeighted += s.referenceStageMatchesFunction[i] * moduleWeights[i] * (1 - delta);
  const precision = testWeighted / testWeightedLength;
  const recall = refWeighted / refWeightedLength;
  const fMean = 1 / ((1 - alpha) / precision + alpha / recall);
  const frag = isPerfect(s) ? 0 : s.chunks / ((s.testWordMatches + s.referenceWordMatches) / 2);
  const score = fMean * (1 - gamma * frag ** beta);
  return Number.isNaN(score) ? 0 : Math.max(score, 0);
}

/** Meteor's `addStats`: sums statistics; chunks of perfectly matched segments are not added. */
export function addMeteorStats(into: MeteorStats, s: MeteorStats): void {
  into.testLength += s.testLength;
  into.referenceLength += s.referenceLength;
  into.testFunctionWords += s.testFunctionWords;
  into.referenceFunctionWords += s.referenceFunctionWords;
  for (let i = 0; i < MAX_MODULES; i++) {
    into.testStageMatchesContent[i] += s.testStageMatchesContent[i];
    into.referenceStageMatchesContent[i] += s.referenceStageMatchesContent[i];
    into.testStageMatchesFunction[i] += s.testStageMatchesFunction[i];
    into.referenceStageMatchesFunction[i] += s.referenceStageMatchesFunction[i];
  }
  if (!isPerfect(s)) into.chunks += s.chunks;
  into.testWordMatches += s.testWordMatches;
  into.referenceWordMatches += s.referenceWordMatches;
}

export class MeteorAligner {
  private readonly stemCache = new Map<string, string>();

  constructor(private readonly functionWords: ReadonlySet<string> = ENGLISH_FUNCTION_WORDS) {}

  private stem(word: string): string {
    let stem = this.stemCache.get(word);
    if (stem === undefined) {
      stem = porter2(word);
      this.stemCache.set(word, stem);
    }
    return stem;
  }

  /** Aligns candidate words (line 1) with reference words (line 2) and returns their statistics. */
  stats(words1: readonly string[], words2: readonly string[]): MeteorStats {
    const matchesAt: Match[][] = words2.map(() => []);
    const coverage1 = new Array<number>(words1.length).fill(0);
    const coverage2 = new Array<number>(words2.length).fill(0);
    const add = (module: number, i: number, j: number) => {
      matchesAt[j].push({ module, start: j, length: 1, matchStart: i, matchLength: 1 });
      coverage1[i]++;
      coverage2[j]++;
    };
    for (let j = 0; j < words2.length; j++) for (let i = 0; i < words1.length; i++) if (words1[i] === words2[j]) add(MODULE_EXACT, i, j);
    // Identical sentences use exact matching only, which avoids beam search errors.
    const identical = words1.length === words2.length && words1.every((w, i) => w === words2[i]);
    if (!identical) {
      const stems1 = words1.map((w) => this.stem(w));
      const stems2 = words2.map((w) => this.stem(w));
      for (let j = 0; j < words2.length; j++) {
        for (let i = 0; i < words1.length; i++) {
          if (stems1[i] === stems2[j] && words1[i] !== words2[j]) add(MODULE_STEM, i, j);
        }
      }
    }

    const initial: Path = {
      matches: new Array<Match | null>(words2.length).fill(null),
      used1: new Array<boolean>(words1.length).fill(false),
      used2: new Array<boolean>(words2.length).fill(false),
      matches1: 0,
      matches2: 0,
      chunks: 0,
      idx: 0,
      distance: 0,
      lastMatchEnd: -1,
    };
    // One-to-one, non-overlapping matches are definite.
    for (let j = 0; j < matchesAt.length; j++) {
      if (matchesAt[j].length !== 1) continue;
      const m = matchesAt[j][0];
      if (coverage2[j] !== 1 || coverage1[m.matchStart] !== 1) continue;
      initial.matches[j] = m;
      initial.used2[j] = true;
      initial.used1[m.matchStart] = true;
    }
    const best = this.resolve(matchesAt, initial);

    const isFunction1 = words1.map((w) => this.functionWords.has(w.toLowerCase()));
    const isFunction2 = words2.map((w) => this.functionWords.has(w.toLowerCase()));
    const s = emptyStats();
    s.testLength = words1.length;
    s.referenceLength = words2.length;
    s.testFunctionWords = isFunction1.filter(Boolean).length;
    s.referenceFunctionWords = isFunction2.filter(Boolean).length;
    for (const m of best.matches) {
      if (m === null) continue;
      if (isFunction1[m.matchStart]) s.testStageMatchesFunction[m.module]++;
      else s.testStageMatchesContent[m.module]++;
      if (isFunction2[m.start]) s.referenceStageMatchesFunction[m.module]++;
      else s.referenceStageMatchesContent[m.module]++;
    }
    s.chunks = countChunks(best.matches);
    s.testWordMatches = totalTestMatches(s);
    s.referenceWordMatches = totalRefMatches(s);
    return s;
  }

  // Meteor's beam search over the reference positions, left to right, keeping its quirks (stable sort,
  // distance added to the parent path when a match is chosen).
  private resolve(matchesAt: Match[][], start: Path): Path {
    let nextPaths: Path[] = [start];
    for (let current = 0; current <= matchesAt.length; current++) {
      const paths = nextPaths.sort(comparePaths);
      nextPaths = [];
      for (let rank = 0; rank < BEAM_SIZE && rank < paths.length; rank++) {
        const path = paths[rank];
        if (current === matchesAt.length) {
          if (path.lastMatchEnd !== -1) path.chunks++;
          nextPaths.push(path);
          continue;
        }
        if (path.used2[current]) {
          if (current < path.idx) {
            nextPaths.push(path);
          } else {
            const m = path.matches[path.idx];
            if (m) {
              path.matches1 = addTruncated(path.matches1, m.matchLength * ALIGNMENT_WEIGHTS[m.module]);
              path.matches2 = addTruncated(path.matches2, m.length * ALIGNMENT_WEIGHTS[m.module]);
              if (path.lastMatchEnd !== -1 && m.matchStart !== path.lastMatchEnd) path.chunks++;
              path.idx = m.start + m.length;
              path.lastMatchEnd = m.matchStart + m.matchLength;
              path.distance += Math.abs(m.start - m.matchStart);
              nextPaths.push(path);
            }
          }
          continue;
        }
        for (const m of matchesAt[current]) {
          if (isUsed(path, m)) continue;
          const next = copyPath(path);
          for (let k = 0; k < m.length; k++) next.used2[m.start + k] = true;
          for (let k = 0; k < m.matchLength; k++) next.used1[m.matchStart + k] = true;
          next.matches[current] = m;
          next.matches1 = addTruncated(next.matches1, m.matchLength * ALIGNMENT_WEIGHTS[m.module]);
          next.matches2 = addTruncated(next.matches2, m.length * ALIGNMENT_WEIGHTS[m.module]);
          if (next.lastMatchEnd !== -1 && m.matchStart !== next.lastMatchEnd) next.chunks++;
          next.idx = m.start + m.length;
          next.lastMatchEnd = m.matchStart + m.matchLength;
          path.distance += Math.abs(m.start - m.matchStart);
          nextPaths.push(next);
        }
        if (path.lastMatchEnd !== -1) {
          path.chunks++;
          path.lastMatchEnd = -1;
        }
        path.idx++;
        nextPaths.push(path);
      }
      if (nextPaths.length === 0) nextPaths.push(paths[0]);
    }
    return nextPaths.sort(comparePaths)[0];
  }
}

function isUsed(path: Path, m: Match): boolean {
  for (let k = 0; k < m.length; k++) if (path.used2[m.start + k]) return true;
  for (let k = 0; k < m.matchLength; k++) if (path.used1[m.matchStart + k]) return true;
  return false;
}

function countChunks(matches: ReadonlyArray<Match | null>): number {
  let chunks = 0;
  let idx = 0;
  let lastMatchEnd = -1;
  while (idx < matches.length) {
    const m = matches[idx];
    if (m === null) {
      if (lastMatchEnd !== -1) {
        chunks++;
        lastMatchEnd = -1;
      }
      idx++;
    } else {
      if (lastMatchEnd !== -1 && m.matchStart !== lastMatchEnd) chunks++;
      idx = m.start + m.length;
      lastMatchEnd = m.matchStart + m.matchLength;
    }
  }
  if (lastMatchEnd !== -1) chunks++;
  return chunks;
}

const JAVA_WORDS = /[ \t\n\r\f]+/;

function meteorWords(line: string): string[] {
  return meteorNormalize(line)
    .toLowerCase()
    .split(JAVA_WORDS)
    .filter((w) => w.length > 0);
}

/**
 * METEOR as pycocoevalcap runs Meteor 1.5 (`-l en -norm`): per image the reference with the best score is
 * kept, and the corpus value comes from the aggregated statistics (the `EVAL` line), not a mean of
 * per-image scores. Matching modules: exact and stem (Snowball English); no WordNet synonyms, no paraphrases.
 */
export function computeMeteor(items: readonly ScoredItem[], aligner = new MeteorAligner()): MetricResult {
  const aggregate = emptyStats();
  const perImage: number[] = [];
  for (const item of items) {
    // The wrapper strips '|||' and one level of double spaces from the hypothesis before sending it.
    const test = meteorWords(item.candidate.split('|||').join('').split('  ').join(' '));
    let best: MeteorStats | undefined;
    let bestScore = -1;
    for (const reference of item.references) {
      const stats = aligner.stats(test, meteorWords(reference));
      const score = meteorScoreFromStats(stats);
      if (score > bestScore) {
        best = stats;
        bestScore = score;
      }
    }
    const stats = best ?? emptyStats();
    perImage.push(meteorScoreFromStats(stats));
    addMeteorStats(aggregate, stats);
  }
  return { score: meteorScoreFromStats(aggregate), perImage };
}
