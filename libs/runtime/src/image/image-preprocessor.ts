import sharp, { type KernelEnum } from 'sharp';
import { ModelFileError, TooManyPixelsError } from '../errors';
import { DEFAULT_IMAGE_LIMITS, type DecodedImage } from './image-decoder';
import { pilResize, type PilFilter } from './pil-resize';

/** An output size in pixels. */
export interface ImageSize {
  height: number;
  width: number;
}

/**
 * The image fields of a Hugging Face `preprocessor_config.json` (snake_case as in the file). Other fields
 * (`image_processor_type`, `processor_class`, …) are ignored. Defaults below are those applied by
 * {@link ImagePreprocessor}.
 */
export interface PreprocessorConfig {
  /** Resize before cropping. Default `true`; then `size` is required. */
  do_resize?: boolean;
  /**
   * Target of the resize, in pixels: an exact `{ height, width }`, or `{ shortest_edge }` to scale the short
   * side to that length keeping the aspect ratio (the long side is truncated, as in transformers).
   */
  size?: ImageSize | { shortest_edge: number };
  /** PIL resampling filter: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic. Default 3 (bicubic). */
  resample?: number;
  /**
   * Crop the centre to `crop_size` after resizing (zero-padded where the image is smaller).
   * Default: `true` when `crop_size` is given.
   */
  do_center_crop?: boolean;
  /** Size of the centre crop, in pixels. */
  crop_size?: ImageSize;
  /** Multiply pixel values (0–255) by `rescale_factor`. Default `true`. */
  do_rescale?: boolean;
  /** Default `1 / 255`. */
  rescale_factor?: number;
  /** Subtract `image_mean` and divide by `image_std`, per channel (R, G, B). Default `true`; then both are required. */
  do_normalize?: boolean;
  image_mean?: [number, number, number];
  image_std?: [number, number, number];
  /** Accepted for compatibility; decoded images are always RGB already. */
  do_convert_rgb?: boolean;
}

/** PIL resample codes mapped to sharp's kernel names (all but nearest are resized by the Pillow port). */
const KERNELS: Record<number, keyof KernelEnum> = { 0: 'nearest', 1: 'lanczos3', 2: 'linear', 3: 'cubic' };

const DEFAULT_RESAMPLE = 3;
const DEFAULT_RESCALE_FACTOR = 1 / 255;

/**
 * Reads and validates the image part of a `preprocessor_config.json` that has already been parsed as JSON.
 * A bare number is accepted for `crop_size` (a square) and for `size` (`shortest_edge` when a centre crop
 * follows, as CLIP-style processors mean it; otherwise a square), and a bare number for `image_mean` /
 * `image_std` applies to all three channels. Throws {@link ModelFileError} naming `file` for invalid values.
 */
export function parsePreprocessorConfig(json: unknown, file: string): PreprocessorConfig {
  // Annotated so that TypeScript narrows after a call.
  const fail: (message: string) => never = (message) => {
    throw new ModelFileError(file, message);
  };
  const isObject = (value: unknown): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  const isAbsent = (value: unknown): value is undefined | null => value === undefined || value === null;

  if (!isObject(json)) fail('expected a JSON object');
  const raw: Record<string, unknown> = json;

  const flag = (key: string): boolean | undefined => {
    const value = raw[key];
    if (isAbsent(value)) return undefined;
    if (typeof value !== 'boolean') fail(`${key} must be true or false, got ${JSON.stringify(value)}`);
    return value;
  };
  const number = (key: string): number | undefined => {
    const value = raw[key];
    if (isAbsent(value)) return undefined;
    if (typeof value !== 'number') fail(`${key} must be a number, got ${JSON.stringify(value)}`);
    return value;
  };
  const positiveInt = (key: string, value: unknown): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      fail(`${key} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const heightWidth = (key: string, value: Record<string, unknown>): ImageSize => ({
    height: positiveInt(`${key}.height`, value.height),
    width: positiveInt(`${key}.width`, value.width),
  });
  const triple = (key: string): [number, number, number] | undefined => {
    const value = raw[key];
    if (isAbsent(value)) return undefined;
    const list: unknown = typeof value === 'number' ? [value, value, value] : value;
    if (!Array.isArray(list) || list.length !== 3 || !list.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      fail(`${key} must be 3 numbers (R, G, B), got ${JSON.stringify(value)}`);
    }
    return list as [number, number, number];
  };

  const config: PreprocessorConfig = {
    do_resize: flag('do_resize'),
    resample: number('resample'),
    do_center_crop: flag('do_center_crop'),
    do_rescale: flag('do_rescale'),
    rescale_factor: number('rescale_factor'),
    do_normalize: flag('do_normalize'),
    image_mean: triple('image_mean'),
    image_std: triple('image_std'),
    do_convert_rgb: flag('do_convert_rgb'),
  };

  const cropSize = raw.crop_size;
  if (typeof cropSize === 'number') {
    const side = positiveInt('crop_size', cropSize);
    config.crop_size = { height: side, width: side };
  } else if (isObject(cropSize)) {
    config.crop_size = heightWidth('crop_size', cropSize);
  } else if (!isAbsent(cropSize)) {
    fail(`crop_size must be a number or {"height", "width"}, got ${JSON.stringify(cropSize)}`);
  }

  const size = raw.size;
  if (typeof size === 'number') {
    const side = positiveInt('size', size);
    const cropFollows = config.do_center_crop ?? config.crop_size !== undefined;
    config.size = cropFollows ? { shortest_edge: side } : { height: side, width: side };
  } else if (isObject(size)) {
    if (!isAbsent(size.longest_edge)) {
      fail('size.longest_edge is not supported; use {"height", "width"} or {"shortest_edge"}');
    }
    config.size = isAbsent(size.shortest_edge)
      ? heightWidth('size', size)
      : { shortest_edge: positiveInt('size.shortest_edge', size.shortest_edge) };
  } else if (!isAbsent(size)) {
    fail(`size must be a number, {"height", "width"} or {"shortest_edge"}, got ${JSON.stringify(size)}`);
  }

  for (const key of Object.keys(config) as (keyof PreprocessorConfig)[]) {
    if (config[key] === undefined) delete config[key];
  }
  resolveConfig(config, file);
  return config;
}

/** A config with every default applied and every cross-field rule checked. */
interface ResolvedConfig {
  resize: ImageSize | { shortest_edge: number } | null;
  kernel: keyof KernelEnum;
  crop: ImageSize | null;
  rescaleFactor: number | null;
  normalize: { mean: [number, number, number]; std: [number, number, number] } | null;
  output: ImageSize;
}

function resolveConfig(config: PreprocessorConfig, file: string): ResolvedConfig {
  const isPositiveInt = (n: number) => Number.isInteger(n) && n > 0;

  let resize: ResolvedConfig['resize'] = null;
  if (config.do_resize ?? true) {
    resize = config.size ?? null;
    if (resize === null) throw new ModelFileError(file, 'do_resize is true but size is missing');
    const sides = 'shortest_edge' in resize ? [resize.shortest_edge] : [resize.height, resize.width];
    if (!sides.every(isPositiveInt)) {
      throw new ModelFileError(file, `size must hold positive integers, got ${JSON.stringify(resize)}`);
    }
  }

  const resample = config.resample ?? DEFAULT_RESAMPLE;
  const kernel = KERNELS[resample];
  if (kernel === undefined) {
    throw new ModelFileError(
      file,
      `resample ${resample} is not supported; use 0 (nearest), 1 (lanczos), 2 (bilinear) or 3 (bicubic)`,
    );
  }

  let crop: ImageSize | null = null;
  if (config.do_center_crop ?? config.crop_size !== undefined) {
    crop = config.crop_size ?? null;
    if (crop === null) throw new ModelFileError(file, 'do_center_crop is true but crop_size is missing');
    if (!isPositiveInt(crop.height) || !isPositiveInt(crop.width)) {
      throw new ModelFileError(file, `crop_size must hold positive integers, got ${JSON.stringify(crop)}`);
    }
  }

  const rescaleFactor = (config.do_rescale ?? true) ? (config.rescale_factor ?? DEFAULT_RESCALE_FACTOR) : null;
  if (rescaleFactor !== null && !(Number.isFinite(rescaleFactor) && rescaleFactor > 0)) {
    throw new ModelFileError(file, `rescale_factor must be a positive number, got ${rescaleFactor}`);
  }

  let normalize: ResolvedConfig['normalize'] = null;
  if (config.do_normalize ?? true) {
    const { image_mean: mean, image_std: std } = config;
    if (mean === undefined || std === undefined) {
      throw new ModelFileError(file, 'do_normalize is true but image_mean or image_std is missing');
    }
    if (mean.length !== 3 || !mean.every(Number.isFinite)) {
      throw new ModelFileError(file, `image_mean must be 3 numbers, got ${JSON.stringify(mean)}`);
    }
    if (std.length !== 3 || !std.every((s) => Number.isFinite(s) && s !== 0)) {
      throw new ModelFileError(file, `image_std must be 3 non-zero numbers, got ${JSON.stringify(std)}`);
    }
    normalize = { mean, std };
  }

  // Batches need one tensor shape, so the output size must not depend on the input image.
  const output = crop ?? (resize !== null && !('shortest_edge' in resize) ? resize : null);
  if (output === null) {
    throw new ModelFileError(
      file,
      'the output size depends on the input image: use size {"height", "width"} or a centre crop (crop_size)',
    );
  }

  return { resize, kernel, crop, rescaleFactor, normalize, output: { height: output.height, width: output.width } };
}

/**
 * Turns decoded images into a model's `pixel_values`, following the transformers image processors: resize,
 * centre crop, rescale, normalise. Arithmetic follows transformers' numpy path (rescale in float64 then cast
 * to float32, normalise in float32), so values match bit for bit whenever no resampling happens.
 */
export class ImagePreprocessor {
  /** Height of every output, in pixels. */
  readonly outputHeight: number;
  /** Width of every output, in pixels. */
  readonly outputWidth: number;
  private readonly resolved: ResolvedConfig;

  /** Throws {@link ModelFileError} for an inconsistent config (see {@link parsePreprocessorConfig}). */
  constructor(config: PreprocessorConfig) {
    this.resolved = resolveConfig(config, 'preprocessor config');
    this.outputHeight = this.resolved.output.height;
    this.outputWidth = this.resolved.output.width;
  }

  /**
   * The image as CHW float32 (R plane, G plane, B plane), length `3 * outputHeight * outputWidth`. Throws
   * {@link TooManyPixelsError} when a `shortest_edge` resize of an extremely elongated image would exceed
   * {@link DEFAULT_IMAGE_LIMITS}.maxPixels.
   */
  async toPixelValues(image: DecodedImage): Promise<Float32Array> {
    if (image.data.length !== image.width * image.height * 3) {
      throw new RangeError(`image data has ${image.data.length} bytes, expected ${image.width}×${image.height}×3`);
    }
    let rgb: RgbImage = { width: image.width, height: image.height, data: image.data };
    const { resize, kernel, crop } = this.resolved;
    if (resize !== null) {
      const target = 'shortest_edge' in resize ? shortestEdgeSize(rgb, resize.shortest_edge) : resize;
      // A thin strip (say 1×20000) scaled to a shortest edge of 336 would need billions of pixels.
      if (target.width * target.height > DEFAULT_IMAGE_LIMITS.maxPixels) {
        throw new TooManyPixelsError(
          `resizing the ${rgb.width}×${rgb.height} image would give ${target.width}×${target.height} pixels, ` +
            `more than the limit of ${DEFAULT_IMAGE_LIMITS.maxPixels}`,
        );
      }
      rgb = await resizeRgb(rgb, target, kernel);
    }
    if (crop !== null) rgb = centerCrop(rgb, crop);
    return this.normalize(rgb);
  }

  /** The resampling kernel of `resample`, for callers that resize themselves (anyres crops). */
  get kernel(): keyof KernelEnum {
    return this.resolved.kernel;
  }

  /** Rescales and normalises an RGB image as is (no resize, no crop): CHW float32. */
  normalize(rgb: RgbImage): Float32Array {
    const { rescaleFactor, normalize } = this.resolved;
    const plane = rgb.width * rgb.height;
    const out = new Float32Array(3 * plane);
    const fround = Math.fround;
    for (let c = 0; c < 3; c++) {
      const mean = normalize === null ? 0 : fround(normalize.mean[c]);
      const std = normalize === null ? 1 : fround(normalize.std[c]);
      for (let i = 0; i < plane; i++) {
        const x = rgb.data[i * 3 + c];
        const v = rescaleFactor === null ? x : fround(x * rescaleFactor);
        out[c * plane + i] = normalize === null ? v : fround(v - mean) / std;
      }
    }
    return out;
  }
}

/** Concatenates CHW images of one size into an NCHW batch. */
export function stackPixelValues(items: Float32Array[], height: number, width: number): Float32Array {
  const size = 3 * height * width;
  const batch = new Float32Array(items.length * size);
  items.forEach((item, n) => {
    if (item.length !== size) {
      throw new RangeError(`pixel values ${n} have ${item.length} values, expected 3×${height}×${width} = ${size}`);
    }
    batch.set(item, n * size);
  });
  return batch;
}

/** 8-bit RGB, interleaved, row-major. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** transformers' `get_resize_output_image_size` with `default_to_square=False`: the long side is truncated. */
function shortestEdgeSize(image: RgbImage, shortestEdge: number): ImageSize {
  const { width, height } = image;
  if (width <= height) return { width: shortestEdge, height: Math.floor((shortestEdge * height) / width) };
  return { height: shortestEdge, width: Math.floor((shortestEdge * width) / height) };
}

const PIL_FILTERS: Partial<Record<keyof KernelEnum, PilFilter>> = { cubic: 'bicubic', linear: 'bilinear', lanczos3: 'lanczos' };

/**
 * Resizes as Pillow does (what transformers' PIL image processors use), so pixel values match theirs;
 * nearest-neighbour goes through sharp.
 */
export async function resizeRgb(image: RgbImage, target: ImageSize, kernel: keyof KernelEnum): Promise<RgbImage> {
  // Leaving a same-size image untouched keeps its pixels exact (a resampling pass would not be the identity).
  if (image.width === target.width && image.height === target.height) return image;
  const filter = PIL_FILTERS[kernel];
  if (filter) {
    return { width: target.width, height: target.height, data: pilResize(image.data, image.width, image.height, target.width, target.height, filter) };
  }
  const { data, info } = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(target.width, target.height, { fit: 'fill', kernel })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { width: info.width, height: info.height, data: pixels };
}

/** transformers' `center_crop`: offset ⌊(original − crop) / 2⌋, zero padding where the crop is larger. */
function centerCrop(image: RgbImage, crop: ImageSize): RgbImage {
  if (image.width === crop.width && image.height === crop.height) return image;
  const top = Math.floor((image.height - crop.height) / 2);
  const left = Math.floor((image.width - crop.width) / 2);
  const data = new Uint8Array(crop.width * crop.height * 3);
  for (let y = 0; y < crop.height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= image.height) continue;
    const x0 = Math.max(0, -left);
    const x1 = Math.min(crop.width, image.width - left);
    if (x1 <= x0) continue;
    const from = (sy * image.width + x0 + left) * 3;
    data.set(image.data.subarray(from, from + (x1 - x0) * 3), (y * crop.width + x0) * 3);
  }
  return { width: crop.width, height: crop.height, data };
}
