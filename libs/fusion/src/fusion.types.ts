import type { ExpertId, ExpertStatus } from '@rsmoe/contracts';

/** One expert's output as fusion sees it; only `ok` partials with non-blank text take part. */
export interface ExpertPartial {
  expertId: ExpertId;
  text: string;
  status: ExpertStatus;
}

/** Context every strategy receives. */
export interface FusionContext {
  /** Expert ids in fusion / priority order (the pack's `fusion.order`); experts not listed come last, in input order. */
  order: readonly ExpertId[];
}

/** A sentence or clause left out because an earlier one said the same. */
export interface DroppedFragment {
  expertId: ExpertId;
  /** The fragment as the expert wrote it. */
  text: string;
  /** The expert that said it first. */
  duplicateOf: ExpertId;
}

/** An expert that contributed nothing, and why. */
export interface IgnoredExpert {
  expertId: ExpertId;
  reason: 'not-ok' | 'empty' | 'duplicate' | 'not-selected';
}

export interface CaptionFusion {
  /** The fused caption: sentences capitalised and terminated, separated by one space ('' when nothing is usable). */
  caption: string;
  /** Experts that contributed text, in fusion order. */
  usedExperts: ExpertId[];
  /** What each used expert contributed after de-duplication, in fusion order. */
  segments: { expertId: ExpertId; text: string }[];
  droppedSentences: DroppedFragment[];
  droppedClauses: DroppedFragment[];
  ignoredExperts: IgnoredExpert[];
}

export type CaptionFusionStrategy = (partials: readonly ExpertPartial[], context: FusionContext) => CaptionFusion;

/** One distinct (normalised) answer and the experts that gave it, in priority order. */
export interface AnswerVote {
  answer: string;
  experts: ExpertId[];
}

export interface AnswerFusion {
  /** The chosen answer, normalised (normaliseAnswer); '' when no expert answered. */
  answer: string;
  /** The chosen answer as its highest-priority expert wrote it. */
  rawAnswer: string;
  /** Experts whose answer is the chosen one, in priority order. */
  usedExperts: ExpertId[];
  /** Every distinct answer, most votes first, ties by priority. */
  votes: AnswerVote[];
  ignoredExperts: IgnoredExpert[];
}

export type AnswerFusionStrategy = (partials: readonly ExpertPartial[], context: FusionContext) => AnswerFusion;
