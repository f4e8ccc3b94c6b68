export * from './errors';
export { VlmRuntime } from './vlm-runtime';
export type {
  FinishReason,
  GenerationRequest,
  GenerationResult,
  GenerationTimings,
  ImageFeatures,
  ImageInput,
  RuntimeLogger,
  VlmRuntimeOptions,
} from './vlm-runtime';
export { DEFAULT_GENERATION_LIMITS, GENERATION_DEFAULTS } from './generation-options';
export type { GenerationLimits, GenerationOptions } from './generation-options';
export type { ExecutionProviderChoice, ResolvedExecutionProvider } from './onnx-session.adapter';
export type { ModelConfig, GenerationConfig } from './model-files';
export { MODEL_FILES } from './model-files';
export { DEFAULT_IMAGE_LIMITS, decodeImage, sniffImageFormat } from './image';
export type { DecodeOptions, DecodedImage, ImageLimits } from './image';
export { runRuntimeBenchmark } from './runtime-benchmark';
export type { RuntimeBenchmarkOptions, RuntimeBenchmarkRow } from './runtime-benchmark';
export { ROUTER_MODEL_FILE, RouterClassifier } from './router-classifier';
export type { Classification, RouterClassifierOptions, SceneClassification } from './router-classifier';
