import type { DecodedImage } from '../image';

/**
 * How an image's features were packed. LLaVA-OneVision packs a prompt's only image with anyres tiling and
 * each image of a several-image prompt as one crop, so the same image has two feature sets; other
 * families always have one (`single-crop`).
 */
export type FeaturePacking = 'anyres' | 'single-crop';

/** The shareable, instruction-independent encoder output for one image. */
export interface ImageFeatures {
  /**
   * Identity of the encoder: sha256 over the vision graph, its external data and the preprocessing
   * settings. Features only fit models with the same id.
   */
  encoderId: string;
  packing: FeaturePacking;
  /** Feature vectors (N). */
  tokens: number;
  /** Width of each feature vector (D). */
  hiddenSize: number;
  /** N × D values, row-major. */
  data: Float32Array;
}

/** One request's images as the language model needs them. */
export interface PromptImages {
  features: readonly ImageFeatures[];
  /** The instruction (InstructBLIP's Q-Former reads it; other families ignore it). */
  instruction: string;
}

/** The family-specific part of a vision-language model: from pixels to the rows that fill the image positions. */
export interface VisionPipeline {
  readonly encoderId: string;
  /** Whether `promptEmbeddings` runs a graph (InstructBLIP's Q-Former) rather than passing features through. */
  readonly computesPromptEmbeddings: boolean;
  /** Which packing a prompt with `imageCount` images uses. */
  packingFor(imageCount: number): FeaturePacking;
  /** The pixel values the vision encoder gets for one image (every crop, CHW each, concatenated). */
  pixelValues(image: DecodedImage, packing: FeaturePacking): Promise<Float32Array>;
  /** Encodes decoded images (one feature entry per image). */
  encode(images: readonly DecodedImage[], packing: FeaturePacking): Promise<ImageFeatures[]>;
  /** Positions an image with these features takes in the prompt. */
  promptTokens(features: ImageFeatures): number;
  /** Checks that features fit this model; returns a message naming the mismatch, or undefined. */
  mismatch(features: ImageFeatures, packing: FeaturePacking): string | undefined;
  /** The embedding rows (positions × LLM hidden size) for each request's images, in prompt order. */
  promptEmbeddings(requests: readonly PromptImages[]): Promise<Float32Array[]>;
  /** Graph files this pipeline loaded (for logs and benchmarks). */
  readonly files: Record<string, string>;
  release(): Promise<void>;
}

export function featuresMismatch(
  features: ImageFeatures,
  expected: { encoderId: string; packing: FeaturePacking; hiddenSize: number; tokens?: number },
): string | undefined {
  if (features.encoderId !== expected.encoderId) {
    return `image features come from encoder ${features.encoderId.slice(0, 12)}; this model needs ${expected.encoderId.slice(0, 12)}`;
  }
  if (features.packing !== expected.packing) {
    return `image features are packed as ${features.packing}; a prompt with this many images needs ${expected.packing}`;
  }
  const tokensOk = expected.tokens === undefined || features.tokens === expected.tokens;
  if (!tokensOk || features.hiddenSize !== expected.hiddenSize || features.data.length !== features.tokens * features.hiddenSize) {
    return `image features are ${features.tokens}×${features.hiddenSize} (${features.data.length} values); this model needs ${expected.tokens ?? 'N'}×${expected.hiddenSize}`;
  }
  return undefined;
}

/** Concatenates equally sized float arrays. */
export function concatFloats(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((size, part) => size + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
