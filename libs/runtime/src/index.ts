export * from './errors';
export { VlmRuntime, readEncoderId } from './vlm-runtime';
export type {
  FeaturePacking,
  FinishReason,
  GenerationRequest,
  GenerationResult,
  GenerationTimings,
  ImageFeatures,
  ImageInput,
  RuntimeFiles,
  RuntimeLogger,
  VlmRuntimeOptions,
} from './vlm-runtime';
export { DEFAULT_GENERATION_LIMITS, GENERATION_DEFAULTS } from './generation-options';
export { interruptReasonOf } from './generation/stopping-criteria';
export type { InterruptReason } from './generation/stopping-criteria';
export type { GenerationLimits, GenerationOptions } from './generation-options';
export type { ExecutionProviderChoice, ResolvedExecutionProvider } from './onnx-session.adapter';
export type { DtypeChoice, GenerationConfig, GraphName, ModelConfig, ModelDtype, ModelFamily } from './model-files';
export { GRAPH_NAMES, MODEL_DTYPES, MODEL_FILES, graphFile, isModelDtype } from './model-files';
export { hashGraphFiles } from './onnx-session.adapter';
export { DEFAULT_IMAGE_LIMITS, decodeImage, sniffImageFormat } from './image';
export type { DecodeOptions, DecodedImage, ImageLimits } from './image';
export { runRuntimeBenchmark } from './runtime-benchmark';
export type { RuntimeBenchmarkOptions, RuntimeBenchmarkRow } from './runtime-benchmark';
export { ROUTER_MODEL_FILE, RouterClassifier } from './router-classifier';
export type { Classification, RouterClassifierOptions, SceneClassification } from './router-classifier';
