export { EvalError, ScoringInputError, DatasetFormatError } from './errors';
export type { ScoredItem, MetricResult, MaskPair } from './metrics/scoring-input';
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
export { computeGrounding, boxIoU, GROUNDING_IOU_THRESHOLD, type Box, type BoxSet, type GroundingResult } from './metrics/grounding.metric';
export {
  computeSegmentation,
  SegmentationCounter,
  parseClassList,
  IGNORE_LABEL,
  type SegmentationResult,
} from './metrics/segmentation.metric';
export {
  computeChangeMask,
  ChangeMaskCounter,
  changeMaskScores,
  type ChangeMaskResult,
  type ChangeMaskCounts,
} from './metrics/change-mask.metric';
export { computeClassification, normalizeClassLabel, type LabelSet, type ClassificationResult } from './metrics/classification.metric';
export { readPngMask, type LabelMask } from './masks/png-mask.reader';
export { scoreSegmentationFolders, scoreChangeMaskFolders, pairMaskFolders } from './masks/mask-scoring.service';
export { ptbTokenize, ptbTokens, COCO_PUNCTUATION, type PtbTokenizerOptions } from './text/ptb-tokenizer';
export { americanize } from './text/americanize';
export { meteorNormalize } from './text/meteor-normalizer';
export { splitWords } from './text/whitespace';
export type {
  CaptionSample,
  VqaSample,
  Dataset,
  DatasetFormat,
  GroundingSample,
  ChangeCaptionSample,
  ChangeMaskSample,
  ClassificationSample,
  RsunivlmSample,
  RsunivlmTask,
} from './adapters/dataset';
export { DATASET_FORMATS, RSUNIVLM_TASKS } from './adapters/dataset';
export { loadDataset, parseDatasetSpec } from './adapters/dataset-loader';
export { readKarpathy } from './adapters/karpathy.adapter';
export { readNwpu } from './adapters/nwpu.adapter';
export { readRsicap } from './adapters/rsicap.adapter';
export { readRsieval } from './adapters/rsieval.adapter';
export { readRsvqa, type RsvqaSplitFiles } from './adapters/rsvqa.adapter';
export {
  readDiorRsvg,
  readDiorRsvgAnnotation,
  parseDiorRsvgSplit,
  type AnnotationFile,
  type DiorRsvgObject,
} from './adapters/dior-rsvg.adapter';
export { readLevirCc } from './adapters/levir-cc.adapter';
export { readLevirCd, type LevirCdListing } from './adapters/levir-cd.adapter';
export { readClassFolders, type ClassFolderListing } from './adapters/class-folder.adapter';
export { readRsunivlmEvalList } from './adapters/rsunivlm-eval.adapter';
export { IMAGE_EXTENSIONS, isImageFile } from './adapters/image-files';
export {
  loadDiorRsvg,
  loadLevirCc,
  loadLevirCd,
  loadClassFolders,
  loadRsunivlmEvalList,
  type DiorRsvgSplit,
} from './adapters/task-dataset-loader';
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
