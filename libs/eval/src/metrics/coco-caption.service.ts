import { ScoringInputError } from '../errors';
import { ptbTokenize } from '../text/ptb-tokenizer';
import { computeBleu } from './bleu.metric';
import { computeCider } from './cider.metric';
import { computeMeteor } from './meteor.metric';
import { computeRougeL } from './rouge.metric';
import { describeIds, type ScoredItem } from './scoring-input';

/** The metric table of pycocoevalcap, as fractions (not ×100). */
export interface CaptionScores {
  Bleu_1: number;
  Bleu_2: number;
  Bleu_3: number;
  Bleu_4: number;
  METEOR: number;
  ROUGE_L: number;
  CIDEr: number;
}

export type CaptionMetricName = keyof CaptionScores;

/** Per-image scores, keyed like the corpus table. */
export interface ImageScores extends CaptionScores {
  id: string;
}

export interface CaptionEvaluation {
  scores: CaptionScores;
  /** Present when `perImage` was asked for; in the order of the candidate ids. */
  perImage?: ImageScores[];
}

export interface CaptionEvaluationOptions {
  /** Input is already tokenized (space-separated tokens): skip the PTB tokenizer. Default false. */
  tokenized?: boolean;
  /** Also return per-image scores. Default false. */
  perImage?: boolean;
  /** Skip METEOR (the slowest metric); its value is then NaN. Default false. */
  skipMeteor?: boolean;
}

/** References per image id: one or more captions. */
export type ReferenceSet = Readonly<Record<string, readonly string[]>>;
/** One candidate per image id (a one-element array is accepted, as the toolkit's result format). */
export type CandidateSet = Readonly<Record<string, string | readonly string[]>>;

/**
 * Checks that both sets have the same ids and well-formed values, and pairs them in candidate order.
 * @throws ScoringInputError naming the ids missing on either side, or the first malformed value.
 */
export function pairCaptions(references: ReferenceSet, candidates: CandidateSet): Array<{ id: string; candidate: string; references: string[] }> {
  const refIds = Object.keys(references);
  const candIds = Object.keys(candidates);
  const refSet = new Set(refIds);
  const candSet = new Set(candIds);
  const noRefs = candIds.filter((id) => !refSet.has(id));
  const noCand = refIds.filter((id) => !candSet.has(id));
  const problems: string[] = [];
  if (noRefs.length > 0) problems.push(`ids without references: ${describeIds(noRefs)}`);
  if (noCand.length > 0) problems.push(`ids without a candidate: ${describeIds(noCand)}`);
  if (problems.length > 0) throw new ScoringInputError(problems.join('; '));
  if (candIds.length === 0) throw new ScoringInputError('no images to score');

  return candIds.map((id) => {
    const refs = references[id];
    if (!Array.isArray(refs) || refs.length === 0 || refs.some((r) => typeof r !== 'string')) {
      throw new ScoringInputError(`references of id ${JSON.stringify(id)} must be a non-empty array of strings`);
    }
    const raw = candidates[id];
    let candidate: string;
    if (typeof raw === 'string') candidate = raw;
    else if (Array.isArray(raw) && raw.length === 1 && typeof raw[0] === 'string') candidate = raw[0];
    else throw new ScoringInputError(`candidate of id ${JSON.stringify(id)} must be a string or an array of one string`);
    return { id, candidate, references: [...refs] };
  });
}

/**
 * Scores candidates against references like pycocoevalcap's COCOEvalCap: the PTB tokenizer with its
 * punctuation filter on both sides (unless `tokenized`), then BLEU-1..4, METEOR, ROUGE-L and CIDEr-D.
 * An empty candidate scores 0 and stays in the corpus.
 */
export function evaluateCaptions(
  references: ReferenceSet,
  candidates: CandidateSet,
  options: CaptionEvaluationOptions = {},
): CaptionEvaluation {
  const pairs = pairCaptions(references, candidates);
  const items: ScoredItem[] = options.tokenized
    ? pairs
    : pairs.map((p) => ({ id: p.id, candidate: ptbTokenize(p.candidate), references: p.references.map((r) => ptbTokenize(r)) }));

  const bleu = computeBleu(items);
  const meteor = options.skipMeteor ? undefined : computeMeteor(items);
  const rouge = computeRougeL(items);
  const cider = computeCider(items);
  const scores: CaptionScores = {
    Bleu_1: bleu.scores[0],
    Bleu_2: bleu.scores[1],
    Bleu_3: bleu.scores[2],
    Bleu_4: bleu.scores[3],
    METEOR: meteor ? meteor.score : Number.NaN,
    ROUGE_L: rouge.score,
    CIDEr: cider.score,
  };
  if (!options.perImage) return { scores };
  const perImage = items.map((item, i) => ({
    id: item.id,
    Bleu_1: bleu.perImage[i][0],
    Bleu_2: bleu.perImage[i][1],
    Bleu_3: bleu.perImage[i][2],
    Bleu_4: bleu.perImage[i][3],
    METEOR: meteor ? meteor.perImage[i] : Number.NaN,
    ROUGE_L: rouge.perImage[i],
    CIDEr: cider.perImage[i],
  }));
  return { scores, perImage };
}
