import { fromArrayBuffer, type GeoTIFFImage, type TypedArray } from 'geotiff';
import sharp, { type OutputInfo } from 'sharp';
import {
  EmptyImageError,
  ImageDecodeError,
  ImageTooLargeError,
  TooManyPixelsError,
  UnsupportedImageFormatError,
} from '../errors';
import {
  imageFormatLabel,
  sniffImageFormat,
  sniffUnsupportedImageFormat,
  type SupportedImageFormat,
} from './image-format';

/**
 * Limits applied before any pixel is decoded, from the encoded size and the header alone, so that the
 * work one image costs is bounded before it starts (decoding time grows with the bytes it allocates).
 */
export interface ImageLimits {
  /** Largest accepted encoded size, in bytes. Default 32 MiB. */
  maxBytes: number;
  /** Largest accepted width × height, read from the header before decoding. Default 64 000 000. */
  maxPixels: number;
  /**
   * Largest accepted width or height, in pixels. Default 32 768: a 64 000 000 × 1 strip is within the pixel
   * limit but no model input, and its resizes and crops cost as much as a huge image.
   */
  maxSide: number;
  /**
   * Most bytes the decoder may allocate for one image: the source samples it holds (every band at its own
   * bit depth; a TIFF read through geotiff also its stretched bands) plus the 8-bit RGB result. Default
   * 512 MiB: an 8-bit RGB image at the pixel limit fits (384 MB), an 8000 × 8000 three-band float TIFF
   * (1.15 GB) does not.
   */
  maxDecodeBytes: number;
}

export const DEFAULT_IMAGE_LIMITS: Readonly<ImageLimits> = Object.freeze({
  maxBytes: 32 * 1024 * 1024,
  maxPixels: 64_000_000,
  maxSide: 32_768,
  maxDecodeBytes: 512 * 1024 * 1024,
});

// Nothing is decoded twice: libvips' operation cache would only keep large buffers alive after a request.
sharp.cache(false);

export interface DecodeOptions {
  /** Overrides of {@link DEFAULT_IMAGE_LIMITS}. */
  limits?: Partial<ImageLimits>;
  /**
   * TIFF only (ignored for PNG, JPEG and WebP): 0-based band (sample) indices to use as R, G, B, or a single
   * band shown as grey. Default: `[0, 1, 2]` when the image has 3 or more bands, else `[0]`.
   */
  bands?: [number, number, number] | [number];
  /**
   * Lower and upper percentiles (0–100) mapped to 0 and 255 when TIFF data that is not 8-bit unsigned
   * (16/32-bit integers, floats) is reduced to 8 bits; computed per band. Default `[2, 98]`.
   */
  stretchPercentiles?: [number, number];
}

/** A decoded image: always 8-bit RGB, whatever the source had. */
export interface DecodedImage {
  /** Width in pixels, after EXIF orientation. */
  width: number;
  /** Height in pixels, after EXIF orientation. */
  height: number;
  /** RGB interleaved, row-major, length `width * height * 3`. */
  data: Uint8Array;
  format: SupportedImageFormat;
  /** Number of bands (channels, alpha included) in the source. */
  sourceBands: number;
  /** Bits per sample of the source (of its first band for TIFF). */
  sourceBitsPerSample: number;
  sourceSampleFormat: 'uint' | 'int' | 'float';
}

const DEFAULT_STRETCH_PERCENTILES: [number, number] = [2, 98];

/**
 * Percentiles are computed from at most this many values per band: larger bands are sampled with a fixed
 * stride (every k-th pixel), which keeps a 10k × 10k band at about a million values to sort and changes
 * the cut-offs by far less than one output grey level on natural imagery.
 */
export const MAX_STRETCH_SAMPLES = 1 << 20;

/**
 * Decodes PNG, JPEG, WebP or TIFF/GeoTIFF bytes into 8-bit RGB.
 *
 * Checks, in order: empty input ({@link EmptyImageError}), byte size ({@link ImageTooLargeError}), format
 * from magic bytes ({@link UnsupportedImageFormatError}), width × height from the header only
 * ({@link TooManyPixelsError}), so a decompression bomb is rejected before any pixel buffer exists. Any
 * failure while decoding becomes an {@link ImageDecodeError} with the library's error as `cause`.
 *
 * PNG/JPEG/WebP and plain 8-bit TIFFs go through sharp: EXIF orientation applied, alpha dropped (like
 * PIL's `convert('RGB')`), grey replicated to RGB, 16-bit reduced to 8-bit. Other TIFFs (16/32-bit, float,
 * more than 4 bands, or an explicit `bands`) are read with geotiff and stretched per band.
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<DecodedImage> {
  const limits: ImageLimits = { ...DEFAULT_IMAGE_LIMITS, ...options.limits };
  const percentiles = options.stretchPercentiles ?? DEFAULT_STRETCH_PERCENTILES;
  const [low, high] = percentiles;
  if (!(low >= 0 && low < high && high <= 100)) {
    throw new RangeError(`stretchPercentiles must satisfy 0 <= low < high <= 100, got [${low}, ${high}]`);
  }

  if (bytes.byteLength === 0) throw new EmptyImageError('the image is empty (0 bytes)');
  if (bytes.byteLength > limits.maxBytes) {
    throw new ImageTooLargeError(
      `the image is ${bytes.byteLength} bytes, more than the limit of ${limits.maxBytes} bytes`,
    );
  }
  const format = sniffImageFormat(bytes);
  if (format === null) throw new UnsupportedImageFormatError(unsupportedFormatMessage(bytes));

  if (format === 'tiff') return decodeTiff(bytes, limits, options.bands, percentiles);
  const metadata = await readSharpHeader(bytes, format);
  checkPixelCount(metadata.width, metadata.height, limits);
  const depth = depthInfo(metadata.depth);
  checkDecodeBytes(metadata.width, metadata.height, metadata.channels * Math.ceil(depth.sourceBitsPerSample / 8) + 3, limits);
  return decodeWithSharp(bytes, format, limits, {
    sourceBands: metadata.channels,
    ...depth,
  });
}

function unsupportedFormatMessage(bytes: Uint8Array): string {
  const known = sniffUnsupportedImageFormat(bytes);
  const what =
    known === null ? 'the bytes are not a recognised image format' : `${imageFormatLabel(known)} is not supported`;
  return `${what}; send PNG, JPEG, WebP or TIFF`;
}

function checkPixelCount(width: number, height: number, limits: ImageLimits): void {
  if (width * height > limits.maxPixels) {
    throw new TooManyPixelsError(
      `the image is ${width}×${height} (${width * height} pixels), more than the limit of ${limits.maxPixels} pixels`,
    );
  }
  if (Math.max(width, height) > limits.maxSide) {
    throw new TooManyPixelsError(`the image is ${width}×${height}: a side is longer than the limit of ${limits.maxSide} pixels`);
  }
}

/** Refuses an image whose decoding would allocate more than maxDecodeBytes (bytesPerPixel: every buffer held at once). */
function checkDecodeBytes(width: number, height: number, bytesPerPixel: number, limits: ImageLimits): void {
  const needed = width * height * bytesPerPixel;
  if (needed > limits.maxDecodeBytes) {
    const mb = (bytes: number) => `${Math.ceil(bytes / 1e6)} MB`;
    throw new TooManyPixelsError(
      `decoding the ${width}×${height} image needs about ${mb(needed)} (${bytesPerPixel} bytes per pixel), more than the limit of ${mb(limits.maxDecodeBytes)}`,
    );
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function decodeError(format: SupportedImageFormat, error: unknown): ImageDecodeError {
  return new ImageDecodeError(`could not decode the ${imageFormatLabel(format)} image: ${errorMessage(error)}`, {
    cause: error,
  });
}

async function readSharpHeader(
  bytes: Uint8Array,
  format: SupportedImageFormat,
): Promise<{ width: number; height: number; channels: number; depth: string }> {
  try {
    // No pixel limit here: metadata() only parses the header, and our own check must see the dimensions.
    const metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
    return { width: metadata.width, height: metadata.height, channels: metadata.channels, depth: metadata.depth };
  } catch (error) {
    throw decodeError(format, error);
  }
}

type SourceInfo = Pick<DecodedImage, 'sourceBands' | 'sourceBitsPerSample' | 'sourceSampleFormat'>;

function depthInfo(depth: string): Pick<DecodedImage, 'sourceBitsPerSample' | 'sourceSampleFormat'> {
  switch (depth) {
    case 'char':
      return { sourceBitsPerSample: 8, sourceSampleFormat: 'int' };
    case 'ushort':
      return { sourceBitsPerSample: 16, sourceSampleFormat: 'uint' };
    case 'short':
      return { sourceBitsPerSample: 16, sourceSampleFormat: 'int' };
    case 'uint':
      return { sourceBitsPerSample: 32, sourceSampleFormat: 'uint' };
    case 'int':
      return { sourceBitsPerSample: 32, sourceSampleFormat: 'int' };
    case 'float':
      return { sourceBitsPerSample: 32, sourceSampleFormat: 'float' };
    case 'double':
      return { sourceBitsPerSample: 64, sourceSampleFormat: 'float' };
    default:
      return { sourceBitsPerSample: 8, sourceSampleFormat: 'uint' };
  }
}

async function decodeWithSharp(
  bytes: Uint8Array,
  format: SupportedImageFormat,
  limits: ImageLimits,
  source: SourceInfo,
): Promise<DecodedImage> {
  let output: { data: Buffer; info: OutputInfo };
  try {
    output = await sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'warning' })
      .autoOrient()
      .removeAlpha()
      // Converts grey to RGB, CMYK to sRGB and 16-bit (rgb16/grey16) to 8-bit.
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw decodeError(format, error);
  }
  const { data, info } = output;
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    throw new ImageDecodeError(
      `could not decode the ${imageFormatLabel(format)} image to RGB: ` +
        `got ${info.channels} channels of ${info.width}×${info.height}`,
    );
  }
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    format,
    ...source,
  };
}

const TIFF_SAMPLE_FORMATS: Record<number, DecodedImage['sourceSampleFormat']> = { 1: 'uint', 2: 'int', 3: 'float' };

async function decodeTiff(
  bytes: Uint8Array,
  limits: ImageLimits,
  bands: DecodeOptions['bands'],
  percentiles: [number, number],
): Promise<DecodedImage> {
  let image: GeoTIFFImage;
  let source: SourceInfo;
  try {
    // geotiff parses only the first IFD here; strips and tiles are read by readRasters().
    // A copy: geotiff needs a whole ArrayBuffer, and `bytes` may be a view into a larger (pooled) one.
    const tiff = await fromArrayBuffer(new Uint8Array(bytes).buffer);
    image = await tiff.getImage(0);
    source = {
      sourceBands: image.getSamplesPerPixel(),
      sourceBitsPerSample: image.getBitsPerSample(0),
      sourceSampleFormat: TIFF_SAMPLE_FORMATS[image.getSampleFormat(0)] ?? 'uint',
    };
    checkPixelCount(image.getWidth(), image.getHeight(), limits);
  } catch (error) {
    if (error instanceof TooManyPixelsError) throw error;
    throw decodeError('tiff', error);
  }

  const plain8Bit = source.sourceSampleFormat === 'uint' && source.sourceBitsPerSample <= 8 && source.sourceBands <= 4;
  const width = image.getWidth();
  const height = image.getHeight();
  if (plain8Bit && bands === undefined) {
    checkDecodeBytes(width, height, source.sourceBands + 3, limits);
    return decodeWithSharp(bytes, 'tiff', limits, source);
  }

  const selected = bands ?? (source.sourceBands >= 3 ? [0, 1, 2] : [0]);
  // geotiff holds the selected bands at their own depth, the stretch one byte per band, then RGB.
  checkDecodeBytes(width, height, selected.length * (Math.ceil(source.sourceBitsPerSample / 8) + 1) + 3, limits);
  const count = source.sourceBands;
  for (const band of selected) {
    if (!Number.isInteger(band) || band < 0 || band >= count) {
      throw new UnsupportedImageFormatError(
        `band ${band} requested but the image has ${count} band${count === 1 ? '' : 's'} (valid indices 0–${count - 1})`,
      );
    }
  }

  let rasters: TypedArray[];
  try {
    rasters = await image.readRasters({ samples: selected, interleave: false });
  } catch (error) {
    throw decodeError('tiff', error);
  }
  const noData = image.getGDALNoData();
  const keep8Bit = source.sourceBitsPerSample === 8;
  const channels = rasters.map((raster) =>
    keep8Bit && raster instanceof Uint8Array ? raster : stretchToUint8(raster, noData, percentiles),
  );
  const [r, g, b] = channels.length === 3 ? channels : [channels[0], channels[0], channels[0]];
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < r.length; i++, j += 3) {
    data[j] = r[i];
    data[j + 1] = g[i];
    data[j + 2] = b[i];
  }
  return { width, height, data, format: 'tiff', ...source };
}

/**
 * Stretches a band linearly so that its `low` percentile maps to 0 and its `high` percentile to 255
 * (clamped). NaN, ±Infinity and the GDAL nodata value are left out of the percentiles and map to 0. When the
 * cut-offs coincide (a band that is mostly one value), the sampled min and max are used instead; a constant
 * band maps to 0.
 */
function stretchToUint8(band: TypedArray, noData: number | null, [low, high]: [number, number]): Uint8Array {
  const isValid = (v: number) => Number.isFinite(v) && v !== noData;

  const stride = Math.max(1, Math.ceil(band.length / MAX_STRETCH_SAMPLES));
  const sample = new Float64Array(Math.ceil(band.length / stride));
  let n = 0;
  for (let i = 0; i < band.length; i += stride) {
    const v = band[i];
    if (isValid(v)) sample[n++] = v;
  }
  const sorted = sample.subarray(0, n).sort();

  const out = new Uint8Array(band.length);
  if (n === 0) return out;
  let lo = percentile(sorted, low);
  let hi = percentile(sorted, high);
  if (hi <= lo) {
    lo = sorted[0];
    hi = sorted[n - 1];
    if (hi <= lo) return out;
  }
  const scale = 255 / (hi - lo);
  for (let i = 0; i < band.length; i++) {
    const v = band[i];
    if (!isValid(v)) continue;
    const scaled = Math.round((v - lo) * scale);
    out[i] = scaled < 0 ? 0 : scaled > 255 ? 255 : scaled;
  }
  return out;
}

/** numpy's default ('linear') percentile of ascending `sorted` values. */
function percentile(sorted: Float64Array, p: number): number {
  const rank = (p / 100) * (sorted.length - 1);
  const below = Math.floor(rank);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (rank - below);
}
