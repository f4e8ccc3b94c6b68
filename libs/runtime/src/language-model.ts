import * as ort from 'onnxruntime-node';
import { InvalidGenerationRequestError } from './errors';
import { KvCache, pastNames, presentNames, type KvCacheType } from './kv-cache';
import type { GenerationConfig, ModelConfig } from './model-files';
import type { OnnxSession, SessionSignature } from './onnx-session.adapter';
import { floatTensor, readFloats, type FloatType } from './tensor-dtype';
import { TokenEmbeddingCache } from './token-embedding-cache';

/** One prompt ready for the decoder. */
export interface PromptRow {
  inputIds: readonly number[];
  /** Batch padding goes before this index (0: left padding). */
  padAt: number;
  /** Rows that replace the embeddings at the image positions, in order (positions × hidden size). */
  imageEmbeddings: Float32Array;
}

const FLOAT = ['float32'] as const;
const INT64 = ['int64'] as const;

export function decoderSignature(numLayers: number): SessionSignature {
  const inputs = [
    { name: 'inputs_embeds', types: FLOAT, rank: 3 },
    { name: 'attention_mask', types: INT64, rank: 2 },
  ];
  const outputs = [{ name: 'logits', types: FLOAT, rank: 3 }];
  for (let layer = 0; layer < numLayers; layer++) {
    const past = pastNames(layer);
    const present = presentNames(layer);
    inputs.push({ name: past.key, types: FLOAT, rank: 4 }, { name: past.value, types: FLOAT, rank: 4 });
    outputs.push({ name: present.key, types: FLOAT, rank: 4 }, { name: present.value, types: FLOAT, rank: 4 });
  }
  return {
    inputs,
    outputs,
    optionalInputs: [
      { name: 'position_ids', types: INT64, rank: 2 },
      // Optimum's merged decoders switch between the no-cache and the cache subgraph with this flag.
      { name: 'use_cache_branch', types: ['bool'], rank: 1 },
      // transformers.js decoders compute logits for the last N positions only when given this.
      { name: 'num_logits_to_keep', types: INT64, rank: [0, 1] },
    ],
  };
}

export const EMBED_SIGNATURE: SessionSignature = {
  inputs: [{ name: 'input_ids', types: INT64, rank: 2 }],
  outputs: [{ name: 'inputs_embeds', types: FLOAT, rank: 3 }],
};

/**
 * The text half of the model: token embeddings, the decoder with its KV cache, and the last position's
 * logits. Works in float32 at its edges whatever the graphs' element types (float16 I/O is converted; the
 * cache stays in the decoder's own type).
 */
export class LanguageModel {
  private readonly usesPositionIds: boolean;
  private readonly usesCacheBranchFlag: boolean;
  private readonly logitsToKeep: ort.Tensor | undefined;
  private readonly cacheType: KvCacheType;
  private readonly embedsType: FloatType;
  private readonly embeddingCache: TokenEmbeddingCache;

  constructor(
    readonly embed: OnnxSession,
    readonly decoder: OnnxSession,
    private readonly config: ModelConfig,
    private readonly generationConfig: GenerationConfig,
    embeddingCacheTokens: number,
  ) {
    this.usesPositionIds = decoder.inputNames.includes('position_ids');
    this.usesCacheBranchFlag = decoder.inputNames.includes('use_cache_branch');
    const keepShape = decoder.inputShape('num_logits_to_keep');
    this.logitsToKeep = keepShape ? new ort.Tensor('int64', BigInt64Array.of(1n), keepShape.length === 0 ? [] : [1]) : undefined;
    this.cacheType = decoder.elementType(pastNames(0).key) === 'float16' ? 'float16' : 'float32';
    this.embedsType = decoder.elementType('inputs_embeds') === 'float16' ? 'float16' : 'float32';
    this.embeddingCache = new TokenEmbeddingCache(embeddingCacheTokens, config.hiddenSize);
  }

  /** Whether only the last position's logits are computed (the decoder has `num_logits_to_keep`). */
  get keepsLastLogitsOnly(): boolean {
    return this.logitsToKeep !== undefined;
  }

  newCache(batch: number): KvCache {
    return KvCache.empty(this.config.numLayers, batch, this.config.numKeyValueHeads, this.config.headDim, this.cacheType);
  }

  /**
   * Prefills the prompts (padded to one length at each row's `padAt`) and returns the logits of each row's
   * last `tailPositions` positions (the last one alone by default), oldest first, `tailPositions` × vocabulary
   * values per row. Image embeddings replace the embeddings at the image-token positions.
   */
  async prefill(rows: readonly PromptRow[], cache: KvCache, tailPositions = 1): Promise<Float32Array[]> {
    const batch = rows.length;
    const length = Math.max(...rows.map((row) => row.inputIds.length));
    const hidden = this.config.hiddenSize;
    const image = this.config.imageTokenIndex;
    const ids = new BigInt64Array(batch * length).fill(BigInt(this.generationConfig.padTokenId));
    const mask = new BigInt64Array(batch * length);
    // Positions follow HF generate: cumsum(attention_mask) - 1, and 1 at padding (masked anyway).
    const positions = new BigInt64Array(batch * length).fill(1n);
    const imageSlots: number[][] = rows.map(() => []);
    rows.forEach((row, b) => {
      const pad = length - row.inputIds.length;
      row.inputIds.forEach((id, t) => {
        const at = b * length + (t < row.padAt ? t : t + pad);
        ids[at] = BigInt(id);
        mask[at] = 1n;
        positions[at] = BigInt(t);
        if (id === image) imageSlots[b].push(at);
      });
      if (imageSlots[b].length * hidden !== row.imageEmbeddings.length) {
        throw new InvalidGenerationRequestError(
          `the prompt has ${imageSlots[b].length} image positions but the images give ${row.imageEmbeddings.length / hidden} embedding rows`,
        );
      }
    });
    const embedded = await this.embed.run({ input_ids: new ort.Tensor('int64', ids, [batch, length]) });
    const embeds = readFloats(embedded.inputs_embeds);
    rows.forEach((row, b) => {
      imageSlots[b].forEach((at, k) => embeds.set(row.imageEmbeddings.subarray(k * hidden, (k + 1) * hidden), at * hidden));
    });
    return this.runDecoder(floatTensor(this.embedsType, embeds, [batch, length, hidden]), mask, positions, [batch, length], cache, tailPositions);
  }

  /** One decoding step: embeds the next token of every row and runs the decoder against the cache. */
  async step(tokens: readonly number[], cache: KvCache, positions: readonly number[], mask: BigInt64Array): Promise<Float32Array[]> {
    const batch = tokens.length;
    const hidden = this.config.hiddenSize;
    let embeds = this.embeddingCache.lookup(tokens);
    if (!embeds) {
      const ids = BigInt64Array.from(tokens, (token) => BigInt(token));
      embeds = readFloats((await this.embed.run({ input_ids: new ort.Tensor('int64', ids, [batch, 1]) })).inputs_embeds);
      this.embeddingCache.store(tokens, embeds);
    }
    const positionIds = BigInt64Array.from(positions, (position) => BigInt(position));
    return this.runDecoder(floatTensor(this.embedsType, embeds, [batch, 1, hidden]), mask, positionIds, [batch, 1], cache);
  }

  private async runDecoder(
    embeds: ort.Tensor,
    mask: BigInt64Array,
    positions: BigInt64Array,
    [batch, length]: [number, number],
    cache: KvCache,
    tailPositions = 1,
  ): Promise<Float32Array[]> {
    const feeds: Record<string, ort.Tensor> = Object.assign(
      { inputs_embeds: embeds, attention_mask: new ort.Tensor('int64', mask, [batch, mask.length / batch]) },
      cache.feeds,
    );
    if (this.usesPositionIds) feeds.position_ids = new ort.Tensor('int64', positions, [batch, length]);
    if (this.usesCacheBranchFlag) feeds.use_cache_branch = new ort.Tensor('bool', Uint8Array.of(cache.length > 0 ? 1 : 0), [1]);
    if (this.logitsToKeep) {
      feeds.num_logits_to_keep =
        tailPositions === 1 ? this.logitsToKeep : new ort.Tensor('int64', BigInt64Array.of(BigInt(tailPositions)), this.logitsToKeep.dims as number[]);
    }
    const outputs = await this.decoder.run(feeds);
    cache.update(outputs);
    const logits = outputs.logits;
    const [, kept, vocab] = logits.dims;
    if (kept < tailPositions) throw new Error(`the decoder returned logits for ${kept} positions; ${tailPositions} were asked for`);
    const rowAt = (b: number) => [(b * kept + kept - tailPositions) * vocab, (b * kept + kept) * vocab] as const;
    // One position per row (every decoding step, and prefill with num_logits_to_keep): views into the
    // output, which this step owns, so no copy per step. Otherwise copy the last rows so the B×T×V tensor
    // of a long prompt can be let go now.
    if (kept === 1 && logits.type === 'float32') {
      const data = logits.data as Float32Array;
      return Array.from({ length: batch }, (_, b) => data.subarray(...rowAt(b)));
    }
    const rows = Array.from({ length: batch }, (_, b) => readFloats(logits, ...rowAt(b)));
    logits.dispose?.();
    return rows;
  }
}
