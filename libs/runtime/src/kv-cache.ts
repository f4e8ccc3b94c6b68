import * as ort from 'onnxruntime-node';

/** Names of the past/present tensors of decoder layer `layer`, as the ONNX layout spells them. */
export function pastNames(layer: number): { key: string; value: string } {
  return { key: `past_key_values.${layer}.key`, value: `past_key_values.${layer}.value` };
}

export function presentNames(layer: number): { key: string; value: string } {
  return { key: `present.${layer}.key`, value: `present.${layer}.value` };
}

/** [present name, past name] of every cache tensor, built once per layer count (read at every step). */
const layerNamePairs = new Map<number, readonly (readonly [string, string])[]>();
function cacheNamePairs(numLayers: number): readonly (readonly [string, string])[] {
  let pairs = layerNamePairs.get(numLayers);
  if (!pairs) {
    pairs = Array.from({ length: numLayers }, (_, layer) => {
      const past = pastNames(layer);
      const present = presentNames(layer);
      return [
        [present.key, past.key],
        [present.value, past.value],
      ] as const;
    }).flat();
    layerNamePairs.set(numLayers, pairs);
  }
  return pairs;
}

const FIRST_PAST_KEY = pastNames(0).key;

/** Element type of the cache tensors: what the decoder declares for `past_key_values.*`. */
export type KvCacheType = 'float32' | 'float16';

/**
 * The decoder's key/value cache: one [batch, kvHeads, length, headDim] tensor per layer for keys and values.
 * Each step's `present.*` outputs become the next step's `past_key_values.*` inputs without copying or
 * converting, whatever their element type.
 */
export class KvCache {
  private constructor(
    private tensors: Record<string, ort.Tensor>,
    readonly numLayers: number,
  ) {}

  static empty(numLayers: number, batch: number, kvHeads: number, headDim: number, type: KvCacheType = 'float32'): KvCache {
    const tensors: Record<string, ort.Tensor> = {};
    const empty = () =>
      type === 'float16'
        ? new ort.Tensor('float16', new Uint16Array(0), [batch, kvHeads, 0, headDim])
        : new ort.Tensor('float32', new Float32Array(0), [batch, kvHeads, 0, headDim]);
    for (let layer = 0; layer < numLayers; layer++) {
      const names = pastNames(layer);
      tensors[names.key] = empty();
      tensors[names.value] = empty();
    }
    return new KvCache(tensors, numLayers);
  }

  /** Positions already cached (the past sequence length). */
  get length(): number {
    return this.tensors[FIRST_PAST_KEY]?.dims[2] ?? 0;
  }

  /** The tensors to feed as `past_key_values.*`. */
  get feeds(): Record<string, ort.Tensor> {
    return this.tensors;
  }

  /** Takes the `present.*` outputs of a decoder run as the new cache. */
  update(outputs: ort.InferenceSession.ReturnType): void {
    const next: Record<string, ort.Tensor> = {};
    for (const [present, past] of cacheNamePairs(this.numLayers)) next[past] = outputs[present];
    this.tensors = next;
  }

  /** Rebuilds the cache with rows picked from the current batch (beam search reordering). */
  selectRows(rows: readonly number[]): void {
    const next: Record<string, ort.Tensor> = {};
    for (const [name, tensor] of Object.entries(this.tensors)) {
      const [, heads, length, headDim] = tensor.dims;
      const rowSize = heads * length * headDim;
      const source = tensor.data as Float32Array | Uint16Array;
      const data = tensor.type === 'float16' ? new Uint16Array(rows.length * rowSize) : new Float32Array(rows.length * rowSize);
      rows.forEach((row, target) => data.set(source.subarray(row * rowSize, (row + 1) * rowSize), target * rowSize));
      next[name] = new ort.Tensor(tensor.type as KvCacheType, data, [rows.length, heads, length, headDim]);
    }
    this.tensors = next;
  }
}
