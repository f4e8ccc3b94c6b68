export {
  ANSWER_FUSION_STRATEGIES,
  CAPTION_FUSION_STRATEGIES,
  createFusionRegistry,
  defaultFusionRegistry,
  fuseAnswers,
  fuseCaptions,
  FusionRegistry,
  registerAnswerFusion,
  registerCaptionFusion,
  UnknownFusionStrategyError,
} from './fusion-registry';
export type { FuseOptions } from './fusion-registry';
export { concatCaptions, firstOkCaption, orderedDedupCaptions } from './caption-fusion';
export { majorityAnswer, priorityAnswer } from './answer-fusion';
export { normaliseAnswer } from './answer-normalise';
export { formatSentence, fragmentKey, splitClauses, splitSentences, tidySpacing } from './text';
export type { Clause, Sentence } from './text';
export { orderPartials } from './partial-order';
export type {
  AnswerFusion,
  AnswerFusionStrategy,
  AnswerVote,
  CaptionFusion,
  CaptionFusionStrategy,
  DroppedFragment,
  ExpertPartial,
  FusionContext,
  IgnoredExpert,
} from './fusion.types';
