export { EvalError, ScoringInputError, DatasetFormatError } from './errors';
export type { ScoredItem, MetricResult } from './metrics/scoring-input';
export { computeBleu, type BleuResult } from './metrics/bleu.metric';
export { computeCider } from './metrics/cider.metric';
export { computeRougeL, rougeLSentence, lcsLength } from './metrics/rouge.metric';
export {
  computeMeteor,
  MeteorAligner,
  meteorScoreFromStats,
  addMeteorStats,
  METEOR_EN_PARAMETERS,
  type MeteorStats,
} from './metrics/meteor.metric';
export {
  evaluateCaptions,
  pairCaptions,
  type CaptionScores,
  type CaptionMetricName,
  type ImageScores,
  type CaptionEvaluation,
  type CaptionEvaluationOptions,
  type ReferenceSet,
  type CandidateSet,
} from './metrics/coco-caption.service';
export {
  rsvqaAccuracy,
  normalizeRsvqaAnswer,
  vqaV2Accuracy,
  vqaV2Summary,
  normalizeVqaAnswer,
  vqaProcessPunctuation,
  vqaProcessDigitArticle,
  type RsvqaItem,
  type RsvqaAccuracy,
  type VqaV2Item,
} from './metrics/vqa-accuracy.metric';
export { ptbTokenize, ptbTokens, COCO_PUNCTUATION, type PtbTokenizerOptions } from './text/ptb-tokenizer';
export { americanize } from './text/americanize';
export { meteorNormalize } from './text/meteor-normalizer';
export { splitWords } from './text/whitespace';
export type { CaptionSample, VqaSample, Dataset, DatasetFormat } from './adapters/dataset';
export { DATASET_FORMATS } from './adapters/dataset';
export { loadDataset, parseDatasetSpec } from './adapters/dataset-loader';
export { readKarpathy } from './adapters/karpathy.adapter';
export { readNwpu } from './adapters/nwpu.adapter';
export { readRsicap } from './adapters/rsicap.adapter';
export { readRsieval } from './adapters/rsieval.adapter';
export { readRsvqa, type RsvqaSplitFiles } from './adapters/rsvqa.adapter';
export { summarizeLatencies, percentile, type LatencySummary } from './report/latency';
export {
  buildCaptionReport,
  buildVqaReport,
  renderReportMarkdown,
  type EvalRecord,
  type EvalReport,
  type CaptionReport,
  type VqaReport,
} from './report/eval-report';
