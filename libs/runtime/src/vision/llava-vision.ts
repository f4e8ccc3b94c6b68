import * as ort from 'onnxruntime-node';
import { ModelSignatureError } from '../errors';
import { type DecodedImage, type ImagePreprocessor, type RgbImage, resizeRgb } from '../image';
import type { OnnxSession } from '../onnx-session.adapter';
import { readFloats } from '../tensor-dtype';
import { anyresLayout, packImageFeatures, patchOutputSize, selectBestResolution, type AnyresSettings } from './anyres';
import {
  concatFloats,
  featuresMismatch,
  type FeaturePacking,
  type ImageFeatures,
  type PromptImages,
  type VisionPipeline,
} from './vision-pipeline';

interface LlavaVisionParts {
  encoderId: string;
  session: OnnxSession;
  preprocessor: ImagePreprocessor;
  /** Hidden size of the language model (= the projected features' width). */
  hiddenSize: number;
  /** Feature vectors per crop. */
  tokensPerCrop: number;
  /** LLaVA-OneVision's anyres settings; null for plain LLaVA (one crop, fixed token count). */
  anyres: Omit<AnyresSettings, 'side' | 'cropSize'> | null;
}

/**
 * LLaVA-family vision: the projected features fill the image positions directly. Plain LLaVA encodes one
 * crop per image; LLaVA-OneVision tiles a prompt's only image (anyres) and packs each image of a several-
 * image prompt as one square crop plus the newline vector, as transformers does.
 */
export class LlavaVision implements VisionPipeline {
  readonly encoderId: string;
  readonly computesPromptEmbeddings = false;
  private readonly side: number;

  constructor(private readonly parts: LlavaVisionParts) {
    this.encoderId = parts.encoderId;
    this.side = Math.round(Math.sqrt(parts.tokensPerCrop));
    if (parts.anyres && this.side * this.side !== parts.tokensPerCrop) {
      throw new ModelSignatureError(parts.session.file, `${parts.tokensPerCrop} features per crop is not a square grid`);
    }
  }

  get files(): Record<string, string> {
    return { visionEncoder: this.parts.session.file };
  }

  packingFor(imageCount: number): FeaturePacking {
    return this.parts.anyres && imageCount === 1 ? 'anyres' : 'single-crop';
  }

  promptTokens(features: ImageFeatures): number {
    return features.tokens;
  }

  mismatch(features: ImageFeatures, packing: FeaturePacking): string | undefined {
    const tokens = this.parts.anyres ? (packing === 'single-crop' ? this.parts.tokensPerCrop + 1 : undefined) : this.parts.tokensPerCrop;
    return featuresMismatch(features, { encoderId: this.encoderId, packing, hiddenSize: this.parts.hiddenSize, tokens });
  }

  async promptEmbeddings(requests: readonly PromptImages[]): Promise<Float32Array[]> {
    return requests.map((request) => concatFloats(request.features.map((features) => features.data)));
  }

  async pixelValues(image: DecodedImage, packing: FeaturePacking): Promise<Float32Array> {
    return concatFloats(await this.crops(image, packing));
  }

  async encode(images: readonly DecodedImage[], packing: FeaturePacking): Promise<ImageFeatures[]> {
    if (images.length === 0) return [];
    const crops = await Promise.all(images.map((image) => this.crops(image, packing)));
    const { outputHeight: height, outputWidth: width } = this.parts.preprocessor;
    const total = crops.reduce((count, list) => count + list.length, 0);
    const outputs = await this.parts.session.run({
      pixel_values: new ort.Tensor('float32', concatFloats(crops.flat()), [total, 3, height, width]),
    });
    const tensor = Object.values(outputs)[0];
    const [, rowsPerCrop, depth] = tensor.dims;
    const values = readFloats(tensor);
    this.checkOutput(tensor.dims, total);
    let first = 0;
    return images.map((image, index) => {
      const count = crops[index].length;
      const cropValues = values.subarray(first * rowsPerCrop * depth, (first + count) * rowsPerCrop * depth);
      first += count;
      const data = this.parts.anyres
        ? packImageFeatures(cropValues, count, rowsPerCrop, depth, count > 1 ? this.layout(image) : null, this.side)
        : cropValues.slice();
      return { encoderId: this.encoderId, packing, tokens: data.length / depth, hiddenSize: depth, data };
    });
  }

  private checkOutput(dims: readonly number[], crops: number): void {
    const rows = this.parts.anyres ? this.parts.tokensPerCrop + 1 : this.parts.tokensPerCrop;
    if (dims.length !== 3 || dims[0] !== crops || dims[1] !== rows || dims[2] !== this.parts.hiddenSize) {
      const what = this.parts.anyres
        ? `${this.parts.tokensPerCrop} features per crop (processor_config.json num_image_tokens) plus the image_newline row`
        : `${this.parts.tokensPerCrop} features per image (config.json image_seq_length or processor_config.json num_image_tokens)`;
      throw new ModelSignatureError(
        this.parts.session.file,
        `image features have shape [${dims.join(',')}]; expected [${crops},${rows},${this.parts.hiddenSize}]: ${what} of the language model's hidden size`,
      );
    }
  }

  private layout(image: DecodedImage) {
    const anyres = this.parts.anyres as NonNullable<LlavaVisionParts['anyres']>;
    const cropSize = this.parts.preprocessor.outputHeight;
    return anyresLayout({ height: image.height, width: image.width }, { ...anyres, cropSize, side: this.side });
  }

  /** The pixel crops of one image, CHW float32 each. */
  private async crops(image: DecodedImage, packing: FeaturePacking): Promise<Float32Array[]> {
    const preprocessor = this.parts.preprocessor;
    if (!this.parts.anyres) return [await preprocessor.toPixelValues(image)];
    if (packing === 'single-crop') {
      return [await preprocessor.toPixelValues({ ...image, ...padToSquare(image, 127) })];
    }
    const cropSize = preprocessor.outputHeight;
    const original = { height: image.height, width: image.width };
    const best = selectBestResolution(original, this.parts.anyres.pinpoints);
    const resized = await resizeRgb(image, patchOutputSize(original, best), preprocessor.kernel);
    const canvas = padCentred(resized, best);
    const crops = [await preprocessor.toPixelValues(image)];
    for (let top = 0; top < best.height; top += cropSize) {
      for (let left = 0; left < best.width; left += cropSize) {
        crops.push(preprocessor.normalize(cut(canvas, top, left, cropSize)));
      }
    }
    return crops;
  }

  release(): Promise<void> {
    return this.parts.session.release();
  }
}

/** transformers' `pad_to_square`: the image centred on a square of `fill` grey. */
function padToSquare(image: RgbImage, fill: number): RgbImage {
  if (image.width === image.height) return image;
  const side = Math.max(image.width, image.height);
  return place(image, { height: side, width: side }, Math.floor((side - image.height) / 2), Math.floor((side - image.width) / 2), fill);
}

/** `_pad_for_patching`: the resized image centred on a zero canvas of the best resolution. */
function padCentred(image: RgbImage, target: { height: number; width: number }): RgbImage {
  return place(image, target, Math.floor((target.height - image.height) / 2), Math.floor((target.width - image.width) / 2), 0);
}

function place(image: RgbImage, size: { height: number; width: number }, top: number, left: number, fill: number): RgbImage {
  if (image.width === size.width && image.height === size.height) return image;
  const data = new Uint8Array(size.width * size.height * 3).fill(fill);
  for (let y = 0; y < image.height; y++) {
    data.set(image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3), ((y + top) * size.width + left) * 3);
  }
  return { width: size.width, height: size.height, data };
}

function cut(image: RgbImage, top: number, left: number, side: number): RgbImage {
  const data = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    const from = ((top + y) * image.width + left) * 3;
    data.set(image.data.subarray(from, from + side * 3), y * side * 3);
  }
  return { width: side, height: side, data };
}
