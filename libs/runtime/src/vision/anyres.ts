/**
 * LLaVA-OneVision's "anyres" image handling, as transformers computes it (LlavaOnevisionImageProcessor and
 * LlavaOnevisionModel.pack_image_features): pick a grid resolution, cut the image into crops, and pack the
 * crops' features back into one map with a newline vector after every row. Plain functions over typed arrays.
 */

export interface Size {
  height: number;
  width: number;
}

/** `select_best_resolution`: the pinpoint that keeps the most of the image, ties to the least wasted area. */
export function selectBestResolution(original: Size, pinpoints: readonly Size[]): Size {
  let best = pinpoints[0];
  let bestEffective = 0;
  let leastWasted = Infinity;
  for (const candidate of pinpoints) {
    const scale = Math.min(candidate.width / original.width, candidate.height / original.height);
    const downscaled = Math.trunc(original.width * scale) * Math.trunc(original.height * scale);
    const effective = Math.min(downscaled, original.width * original.height);
    const wasted = candidate.width * candidate.height - effective;
    if (effective > bestEffective || (effective === bestEffective && wasted < leastWasted)) {
      best = candidate;
      bestEffective = effective;
      leastWasted = wasted;
    }
  }
  return best;
}

/** `get_patch_output_size`: the image resized to fit `target`, aspect kept. */
export function patchOutputSize(original: Size, target: Size): Size {
  const scaleW = target.width / original.width;
  const scaleH = target.height / original.height;
  if (scaleW < scaleH) {
    return { width: target.width, height: Math.min(Math.ceil(original.height * scaleW), target.height) };
  }
  return { height: target.height, width: Math.min(Math.ceil(original.width * scaleH), target.width) };
}

/** Python's `int(round(x, 7))` for the non-negative values it is used on here. */
function roundTo7ThenTruncate(x: number): number {
  return Math.trunc(Number(x.toFixed(7)));
}

/** How one image's crops are laid out and how big its packed feature map is. */
export interface AnyresLayout {
  /** Grid of crops (rows × columns) after the base crop. */
  gridRows: number;
  gridCols: number;
  /** Feature map after unpadding, before any downscale (rows × columns of feature vectors). */
  unpadded: Size;
  /** Offset of the unpadded region in the full (gridRows·side) × (gridCols·side) map. */
  top: number;
  left: number;
  /** Final map size (after the anyres_max downscale), i.e. rows and columns before newlines. */
  packed: Size;
  /** Feature positions the image takes in the prompt: side² (base crop) + rows × (cols + 1). */
  tokens: number;
}

export interface AnyresSettings {
  /** Crop size in pixels (the vision tower's image_size). */
  cropSize: number;
  /** Feature vectors per crop side (image_size // patch_size). */
  side: number;
  pinpoints: readonly Size[];
  /** The N of `anyres_max_N`: most crops' worth of features kept before downscaling (default 9). */
  maxCrops: number;
}

/** The layout transformers computes for an image of `original` size (height, width in pixels). */
export function anyresLayout(original: Size, settings: AnyresSettings): AnyresLayout {
  const { cropSize, side, pinpoints, maxCrops } = settings;
  const best = selectBestResolution(original, pinpoints);
  const gridRows = Math.floor(best.height / cropSize);
  const gridCols = Math.floor(best.width / cropSize);
  const fullH = gridRows * side;
  const fullW = gridCols * side;
  let unpadded: Size = { height: fullH, width: fullW };
  let top = 0;
  let left = 0;
  if (original.width / original.height > fullW / fullH) {
    const newHeight = roundTo7ThenTruncate(original.height * (fullW / original.width));
    top = Math.floor((fullH - newHeight) / 2);
    unpadded = { height: fullH - 2 * top, width: fullW };
  } else {
    const newWidth = roundTo7ThenTruncate(original.width * (fullH / original.height));
    left = Math.floor((fullW - newWidth) / 2);
    unpadded = { height: fullH, width: fullW - 2 * left };
  }
  const ratio = Math.sqrt((unpadded.height * unpadded.width) / (maxCrops * side * side));
  const packed =
    ratio > 1.1
      ? { height: Math.floor(unpadded.height / ratio), width: Math.floor(unpadded.width / ratio) }
      : unpadded;
  return { gridRows, gridCols, unpadded, top, left, packed, tokens: side * side + packed.height * (packed.width + 1) };
}

/**
 * `F.interpolate(mode='bilinear', align_corners=False, antialias=False)` of a channel-last map
 * [inH, inW, D] to [outH, outW, D].
 */
export function bilinearResize(map: Float32Array, input: Size, output: Size, depth: number): Float32Array {
  const axis = (inLength: number, outLength: number) => {
    const scale = inLength / outLength;
    return Array.from({ length: outLength }, (_, i) => {
      const source = Math.max((i + 0.5) * scale - 0.5, 0);
      const i0 = Math.min(Math.floor(source), inLength - 1);
      const i1 = Math.min(i0 + 1, inLength - 1);
      return { i0, i1, weight: Math.fround(source - i0) };
    });
  };
  const rows = axis(input.height, output.height);
  const cols = axis(input.width, output.width);
  const out = new Float32Array(output.height * output.width * depth);
  for (let y = 0; y < output.height; y++) {
    const { i0: y0, i1: y1, weight: wy } = rows[y];
    for (let x = 0; x < output.width; x++) {
      const { i0: x0, i1: x1, weight: wx } = cols[x];
      const a = (y0 * input.width + x0) * depth;
      const b = (y0 * input.width + x1) * depth;
      const c = (y1 * input.width + x0) * depth;
      const d = (y1 * input.width + x1) * depth;
      const o = (y * output.width + x) * depth;
      for (let k = 0; k < depth; k++) {
        const topRow = map[a + k] * (1 - wx) + map[b + k] * wx;
        const bottomRow = map[c + k] * (1 - wx) + map[d + k] * wx;
        out[o + k] = topRow * (1 - wy) + bottomRow * wy;
      }
    }
  }
  return out;
}

/**
 * Packs one image's vision-encoder output `crops` ([crops, rowsPerCrop, D], rows 0..side²-1 the crop's
 * features, row side² the learned newline) into the prompt's image features, as `pack_image_features` does.
 * One crop: base features + newline (the multi-image path). Several: base features, then the anyres grid.
 */
export function packImageFeatures(
  crops: Float32Array,
  cropCount: number,
  rowsPerCrop: number,
  depth: number,
  layout: AnyresLayout | null,
  side: number,
): Float32Array {
  const perCrop = side * side;
  const newline = crops.subarray(perCrop * depth, (perCrop + 1) * depth);
  if (layout === null || cropCount === 1) {
    const out = new Float32Array((perCrop + 1) * depth);
    out.set(crops.subarray(0, perCrop * depth));
    out.set(newline, perCrop * depth);
    return out;
  }
  const { gridCols, unpadded, top, left, packed } = layout;
  // The unpadded part of the grid as one channel-last map: crop (r, c) patch (y, x) -> map row r·side + y.
  let map: Float32Array = new Float32Array(unpadded.height * unpadded.width * depth);
  for (let y = 0; y < unpadded.height; y++) {
    const mapY = y + top;
    const cropRow = Math.floor(mapY / side);
    for (let x = 0; x < unpadded.width; x++) {
      const mapX = x + left;
      const crop = 1 + cropRow * gridCols + Math.floor(mapX / side);
      const patch = (mapY % side) * side + (mapX % side);
      const from = (crop * rowsPerCrop + patch) * depth;
      map.set(crops.subarray(from, from + depth), (y * unpadded.width + x) * depth);
    }
  }
  if (packed.height !== unpadded.height || packed.width !== unpadded.width) {
    map = bilinearResize(map, unpadded, packed, depth);
  }
  const out = new Float32Array((perCrop + packed.height * (packed.width + 1)) * depth);
  out.set(crops.subarray(0, perCrop * depth));
  let at = perCrop * depth;
  for (let y = 0; y < packed.height; y++) {
    out.set(map.subarray(y * packed.width * depth, (y + 1) * packed.width * depth), at);
    at += packed.width * depth;
    out.set(newline, at);
    at += depth;
  }
  return out;
}
