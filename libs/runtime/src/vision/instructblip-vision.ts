import type { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { ModelSignatureError } from '../errors';
import type { DecodedImage, ImagePreprocessor } from '../image';
import type { OnnxSession } from '../onnx-session.adapter';
import { readFloats } from '../tensor-dtype';
import {
  concatFloats,
  featuresMismatch,
  type FeaturePacking,
  type ImageFeatures,
  type PromptImages,
  type VisionPipeline,
} from './vision-pipeline';

interface InstructBlipParts {
  encoderId: string;
  vision: OnnxSession;
  qformer: OnnxSession;
  qformerTokenizer: Tokenizer;
  /** Id the Q-Former tokenizer pads with (its pad_token). */
  qformerPadId: number;
  preprocessor: ImagePreprocessor;
  /** Query positions per image in the prompt (`num_query_tokens`). */
  queryTokens: number;
  /** Hidden size of the language model. */
  hiddenSize: number;
}

/**
 * InstructBLIP (RS-MoE's base): the vision encoder's output is instruction-independent, so it is what
 * experts share and cache; each expert's own Q-Former then reads its own instruction with those features
 * and yields the query embeddings that fill the image positions.
 */
export class InstructBlipVision implements VisionPipeline {
  readonly encoderId: string;
  readonly computesPromptEmbeddings = true;

  constructor(private readonly parts: InstructBlipParts) {
    this.encoderId = parts.encoderId;
  }

  get files(): Record<string, string> {
    return { visionEncoder: this.parts.vision.file, qformer: this.parts.qformer.file };
  }

  packingFor(): FeaturePacking {
    return 'single-crop';
  }

  promptTokens(): number {
    return this.parts.queryTokens;
  }

  mismatch(features: ImageFeatures, packing: FeaturePacking): string | undefined {
    const expected = this.parts.vision.outputShape(0);
    const tokens = typeof expected?.[1] === 'number' ? expected[1] : undefined;
    const hiddenSize = typeof expected?.[2] === 'number' ? expected[2] : features.hiddenSize;
    return featuresMismatch(features, { encoderId: this.encoderId, packing, hiddenSize, tokens });
  }

  pixelValues(image: DecodedImage): Promise<Float32Array> {
    return this.parts.preprocessor.toPixelValues(image);
  }

  async encode(images: readonly DecodedImage[], packing: FeaturePacking): Promise<ImageFeatures[]> {
    if (images.length === 0) return [];
    const pixels = await Promise.all(images.map((image) => this.parts.preprocessor.toPixelValues(image)));
    const { outputHeight: height, outputWidth: width } = this.parts.preprocessor;
    const outputs = await this.parts.vision.run({
      pixel_values: new ort.Tensor('float32', concatFloats(pixels), [images.length, 3, height, width]),
    });
    const tensor = Object.values(outputs)[0];
    const [, tokens, depth] = tensor.dims;
    const values = readFloats(tensor);
    const size = tokens * depth;
    return images.map((_, index) => ({
      encoderId: this.encoderId,
      packing,
      tokens,
      hiddenSize: depth,
      data: values.slice(index * size, (index + 1) * size),
    }));
  }

  /** Runs the Q-Former once for the batch: each request's image features with its own instruction. */
  async promptEmbeddings(requests: readonly PromptImages[]): Promise<Float32Array[]> {
    const rows = requests.filter((request) => request.features.length > 0);
    if (rows.length === 0) return requests.map(() => new Float32Array(0));
    const ids = rows.map((row) => this.parts.qformerTokenizer.encode(row.instruction, { add_special_tokens: true }).ids);
    const length = Math.max(...ids.map((row) => row.length));
    // Right-padded, as the Q-Former tokenizer pads.
    const qformerIds = new BigInt64Array(rows.length * length).fill(BigInt(this.parts.qformerPadId));
    const qformerMask = new BigInt64Array(rows.length * length);
    ids.forEach((row, b) =>
      row.forEach((id, t) => {
        qformerIds[b * length + t] = BigInt(id);
        qformerMask[b * length + t] = 1n;
      }),
    );
    const [first] = rows[0].features;
    const outputs = await this.parts.qformer.run({
      image_embeds: new ort.Tensor('float32', concatFloats(rows.map((row) => row.features[0].data)), [rows.length, first.tokens, first.hiddenSize]),
      qformer_input_ids: new ort.Tensor('int64', qformerIds, [rows.length, length]),
      qformer_attention_mask: new ort.Tensor('int64', qformerMask, [rows.length, length]),
    });
    const tensor = outputs.image_features;
    const [, queries, depth] = tensor.dims;
    if (queries !== this.parts.queryTokens || depth !== this.parts.hiddenSize) {
      throw new ModelSignatureError(
        this.parts.qformer.file,
        `image_features has shape [${tensor.dims.join(',')}]; expected [${rows.length},${this.parts.queryTokens},${this.parts.hiddenSize}] (num_query_tokens × the language model's hidden size)`,
      );
    }
    const values = readFloats(tensor);
    const size = queries * depth;
    let next = 0;
    return requests.map((request) => {
      if (request.features.length === 0) return new Float32Array(0);
      const rowValues = values.slice(next * size, (next + 1) * size);
      next++;
      return rowValues;
    });
  }

  async release(): Promise<void> {
    await Promise.all([this.parts.vision.release(), this.parts.qformer.release()]);
  }
}
