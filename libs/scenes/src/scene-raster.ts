import { stat } from 'node:fs/promises';
import { fromFile, type GeoTIFF, type GeoTIFFImage, type TypedArray } from 'geotiff';
import { readGeoreferenceOfImage, type Georeference } from '@rsmoe/geo';
import { SCENE_ERROR_CODES, SceneInputError } from './scene-errors';
import type { RasterInfo } from './scene.types';

/** TIFF Compression codes geotiff decodes, by name. */
const COMPRESSIONS: Readonly<Record<number, string>> = {
  1: 'none',
  5: 'lzw',
  7: 'jpeg',
  8: 'deflate',
  32946: 'deflate',
  32773: 'packbits',
  34887: 'lerc',
  50000: 'zstd',
  50001: 'webp',
};

const SAMPLE_FORMATS: Readonly<Record<number, RasterInfo['sampleFormat']>> = { 1: 'uint', 2: 'int', 3: 'float' };

/** Largest number of tile or strip entries read to check that the file holds every block. */
const MAX_BLOCK_INDEX = 4_000_000;

/** A scene on disk, opened with geotiff's file source: the header and directory read, pixels only per window. */
export interface SceneRaster {
  readonly info: RasterInfo;
  /** The georeference; undefined when the TIFF has none. */
  readonly georeference: Georeference | undefined;
  /**
   * One window of the scene as 8-bit RGB, interleaved (w × h × 3): `bands` as R, G, B; samples other than
   * 8-bit unsigned mapped linearly by `stretch` (per band [low, high] → [0, 255]). Also whether every pixel of
   * the window is nodata, or all pixels are one value (the tile is skipped).
   */
  readWindow(
    window: { x: number; y: number; width: number; height: number },
    bands: readonly [number, number, number],
    stretch?: readonly (readonly [number, number])[],
  ): Promise<{ rgb: Uint8Array; empty?: 'nodata' | 'uniform' }>;
  /** Per band, the 2nd and 98th percentiles of up to `windows` windows spread over the scene. */
  sampleStretch(bands: readonly number[], windows?: number): Promise<[number, number][]>;
  close(): Promise<void>;
}

/** Limits checked at opening, before any pixel is read. */
export interface SceneLimits {
  maxPixels: number;
}

function invalid(message: string, cause?: unknown): SceneInputError {
  return new SceneInputError(422, SCENE_ERROR_CODES.invalidScene, message, cause === undefined ? undefined : { cause });
}

/** Classic TIFF or BigTIFF magic, read from the file's first bytes. */
function isTiffMagic(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const [b0, b1, b2, b3] = head;
  if (b0 === 0x49 && b1 === 0x49) return (b2 === 42 || b2 === 43) && b3 === 0;
  if (b0 === 0x4d && b1 === 0x4d) return b2 === 0 && (b3 === 42 || b3 === 43);
  return false;
}

/**
 * Opens a scene file and checks, before any tile is read, everything that would make tiles fail: a TIFF at all
 * (415), a readable directory (422 invalid_scene), every tile or strip inside the file (a truncated upload is
 * caught here), a compression geotiff decodes (422 unsupported_compression), 8/16/32-bit samples in one plane
 * (422 unsupported_sample_format), the pixel limit (422 too_many_pixels), and georeferencing that is either
 * absent or usable (422 unsupported_georeference: a scene whose CRS cannot be read gets no silent pixel
 * fallback). Throws SceneInputError; the file is closed again on failure.
 */
export async function openSceneRaster(path: string, head: Uint8Array, limits: SceneLimits): Promise<SceneRaster> {
  if (!isTiffMagic(head)) throw new SceneInputError(415, SCENE_ERROR_CODES.notTiff, 'a scene must be a GeoTIFF or TIFF (classic or BigTIFF); these bytes are not');
  const fileBytes = (await stat(path)).size;
  let tiff: GeoTIFF;
  let image: GeoTIFFImage;
  try {
    tiff = await fromFile(path);
    image = await tiff.getImage(0);
  } catch (error) {
    throw invalid(`the TIFF's header or first directory cannot be read (truncated or corrupt): ${(error as Error).message}`, error);
  }
  try {
    const info = await inspect(image, fileBytes, limits);
    const reading = await readGeoreferenceOfImage(image);
    if (reading?.kind === 'unsupported') {
      throw new SceneInputError(422, SCENE_ERROR_CODES.unsupportedGeoreference, `the scene's georeferencing cannot be used (${reading.reason}): ${reading.message}`);
    }
    return new GeoTiffSceneRaster(tiff, image, info, reading);
  } catch (error) {
    await closeTiff(tiff);
    throw error;
  }
}

async function closeTiff(tiff: GeoTIFF): Promise<void> {
  await Promise.resolve(tiff.close()).catch(() => undefined);
}

async function inspect(image: GeoTIFFImage, fileBytes: number, limits: SceneLimits): Promise<RasterInfo> {
  const directory = image.getFileDirectory();
  let width: number;
  let height: number;
  try {
    width = image.getWidth();
    height = image.getHeight();
  } catch (error) {
    throw invalid(`the TIFF has no readable size: ${(error as Error).message}`, error);
  }
  if (!(width > 0 && height > 0)) throw invalid(`the TIFF's size ${width} × ${height} is empty`);
  if (width * height > limits.maxPixels) {
    throw new SceneInputError(422, SCENE_ERROR_CODES.tooManyPixels, `the scene is ${width} × ${height} = ${width * height} pixels; at most ${limits.maxPixels} (MAX_SCENE_PIXELS)`);
  }
  const code = Number((await directory.loadValue('Compression')) ?? 1);
  const name = COMPRESSIONS[code];
  if (name === undefined) {
    throw new SceneInputError(
      422,
      SCENE_ERROR_CODES.unsupportedCompression,
      `TIFF compression ${code} cannot be decoded here; supported: ${[...new Set(Object.values(COMPRESSIONS))].join(', ')} (re-encode, e.g. gdal_translate -co COMPRESS=DEFLATE)`,
    );
  }
  const bandCount = image.getSamplesPerPixel();
  const bitsPerSample = image.getBitsPerSample(0);
  const sampleFormat = SAMPLE_FORMATS[image.getSampleFormat(0)];
  if (sampleFormat === undefined || ![8, 16, 32].includes(bitsPerSample) || (sampleFormat === 'float' && bitsPerSample !== 32)) {
    throw new SceneInputError(422, SCENE_ERROR_CODES.unsupportedSampleFormat, `samples of ${bitsPerSample} bits (${sampleFormat ?? `format ${image.getSampleFormat(0)}`}) are not read; 8-, 16- or 32-bit integers or 32-bit floats`);
  }
  for (let band = 1; band < bandCount; band++) {
    if (image.getBitsPerSample(band) !== bitsPerSample || image.getSampleFormat(band) !== image.getSampleFormat(0)) {
      throw new SceneInputError(422, SCENE_ERROR_CODES.unsupportedSampleFormat, 'every band must have the same bit depth and sample format');
    }
  }
  const tiled = !directory.hasTag('StripOffsets');
  await checkBlocksInFile(directory, tiled, fileBytes);
  return { width, height, bandCount, bitsPerSample, sampleFormat, compression: { code, name }, nodata: image.getGDALNoData(), layout: tiled ? 'tiled' : 'strips' };
}

/** Every tile or strip must lie inside the file: a truncated upload is refused now, not at its last tile. */
async function checkBlocksInFile(directory: ReturnType<GeoTIFFImage['getFileDirectory']>, tiled: boolean, fileBytes: number): Promise<void> {
  let offsets: ArrayLike<number | bigint> | undefined;
  let counts: ArrayLike<number | bigint> | undefined;
  try {
    offsets = (await directory.loadValue(tiled ? 'TileOffsets' : 'StripOffsets')) as ArrayLike<number | bigint> | undefined;
    counts = (await directory.loadValue(tiled ? 'TileByteCounts' : 'StripByteCounts')) as ArrayLike<number | bigint> | undefined;
  } catch (error) {
    throw invalid(`the TIFF's ${tiled ? 'tile' : 'strip'} index cannot be read (truncated or corrupt): ${(error as Error).message}`, error);
  }
  if (offsets === undefined || counts === undefined || offsets.length !== counts.length || offsets.length === 0) {
    throw invalid(`the TIFF's ${tiled ? 'tile' : 'strip'} offsets and byte counts are missing or differ in length`);
  }
  if (offsets.length > MAX_BLOCK_INDEX) throw invalid(`the TIFF has ${offsets.length} blocks; at most ${MAX_BLOCK_INDEX}`);
  for (let i = 0; i < offsets.length; i++) {
    const end = Number(offsets[i]) + Number(counts[i]);
    if (!(end <= fileBytes)) {
      throw invalid(`the TIFF is truncated: ${tiled ? 'tile' : 'strip'} ${i} ends at byte ${end} but the file has ${fileBytes} bytes`);
    }
  }
}

class GeoTiffSceneRaster implements SceneRaster {
  constructor(
    private readonly tiff: GeoTIFF,
    private readonly image: GeoTIFFImage,
    readonly info: RasterInfo,
    readonly georeference: Georeference | undefined,
  ) {}

  async readWindow(
    window: { x: number; y: number; width: number; height: number },
    bands: readonly [number, number, number],
    stretch?: readonly (readonly [number, number])[],
  ): Promise<{ rgb: Uint8Array; empty?: 'nodata' | 'uniform' }> {
    const distinct = [...new Set(bands)];
    let rasters: TypedArray[];
    try {
      rasters = (await this.image.readRasters({
        window: [window.x, window.y, window.x + window.width, window.y + window.height],
        samples: distinct,
        interleave: false,
      })) as unknown as TypedArray[];
    } catch (error) {
      throw invalid(`reading the window at (${window.x}, ${window.y}) failed: ${(error as Error).message}`, error);
    }
    const empty = emptiness(rasters, this.info.nodata);
    const plain = this.info.bitsPerSample === 8 && this.info.sampleFormat === 'uint';
    const channels = bands.map((band) => {
      const raster = rasters[distinct.indexOf(band)];
      if (plain) return raster as Uint8Array;
      const [low, high] = stretch?.[distinct.indexOf(band)] ?? [0, 255];
      return stretchBand(raster, low, high, this.info.nodata);
    });
    const pixels = window.width * window.height;
    const rgb = new Uint8Array(pixels * 3);
    const [r, g, b] = channels;
    for (let i = 0, j = 0; i < pixels; i++, j += 3) {
      rgb[j] = r[i];
      rgb[j + 1] = g[i];
      rgb[j + 2] = b[i];
    }
    return empty === undefined ? { rgb } : { rgb, empty };
  }

  async sampleStretch(bands: readonly number[], windows = 16): Promise<[number, number][]> {
    const { width, height } = this.info;
    const side = Math.min(256, width, height);
    const perAxis = Math.max(1, Math.round(Math.sqrt(windows)));
    const values: number[][] = bands.map(() => []);
    for (let j = 0; j < perAxis; j++) {
      for (let i = 0; i < perAxis; i++) {
        const x = Math.round(((width - side) * (i + 0.5)) / perAxis);
        const y = Math.round(((height - side) * (j + 0.5)) / perAxis);
        const rasters = (await this.image.readRasters({ window: [x, y, x + side, y + side], samples: [...bands], interleave: false })) as unknown as TypedArray[];
        rasters.forEach((raster, k) => {
          // Every 7th sample is plenty for two percentiles.
          for (let p = 0; p < raster.length; p += 7) {
            const v = Number(raster[p]);
            if (Number.isFinite(v) && v !== this.info.nodata) values[k].push(v);
          }
        });
      }
    }
    return values.map((sample) => {
      if (sample.length === 0) return [0, 1];
      sample.sort((a, b) => a - b);
      const low = sample[Math.floor(0.02 * (sample.length - 1))];
      const high = sample[Math.ceil(0.98 * (sample.length - 1))];
      return high > low ? [low, high] : [sample[0], Math.max(sample[sample.length - 1], sample[0] + 1)];
    });
  }

  close(): Promise<void> {
    return closeTiff(this.tiff);
  }
}

/** `nodata` when every sample of every band is the nodata value (or not finite); `uniform` when all are one value. */
function emptiness(rasters: readonly TypedArray[], nodata: number | null): 'nodata' | 'uniform' | undefined {
  let allNodata = true;
  for (const raster of rasters) {
    for (let i = 0; i < raster.length; i++) {
      const v = Number(raster[i]);
      if (Number.isFinite(v) && v !== nodata) {
        allNodata = false;
        break;
      }
    }
    if (!allNodata) break;
  }
  if (allNodata) return 'nodata';
  for (const raster of rasters) {
    const first = raster[0];
    for (let i = 1; i < raster.length; i++) if (raster[i] !== first) return undefined;
  }
  return 'uniform';
}

function stretchBand(band: TypedArray, low: number, high: number, nodata: number | null): Uint8Array {
  const out = new Uint8Array(band.length);
  const scale = 255 / (high - low);
  for (let i = 0; i < band.length; i++) {
    const v = Number(band[i]);
    if (!Number.isFinite(v) || v === nodata) continue;
    const scaled = Math.round((v - low) * scale);
    out[i] = scaled < 0 ? 0 : scaled > 255 ? 255 : scaled;
  }
  return out;
}

/**
 * The RGB bands of a client's `bands` (0-based, 1 or 3 of them) checked against the scene: default the first
 * three bands, or the only band as grey. Throws SceneInputError 422 invalid_bands naming the valid range.
 */
export function resolveBands(requested: readonly number[] | undefined, bandCount: number): [number, number, number] {
  const bands = requested ?? (bandCount >= 3 ? [0, 1, 2] : [0]);
  if (bands.length !== 1 && bands.length !== 3) {
    throw new SceneInputError(422, SCENE_ERROR_CODES.invalidBands, `bands: 1 or 3 band indices (R,G,B), got ${bands.length}`);
  }
  const bad = bands.filter((band) => !Number.isInteger(band) || band < 0 || band >= bandCount);
  if (bad.length > 0) {
    throw new SceneInputError(422, SCENE_ERROR_CODES.invalidBands, `band${bad.length > 1 ? 's' : ''} ${bad.join(', ')} requested but the scene has ${bandCount} band${bandCount === 1 ? '' : 's'} (0-based indices 0–${bandCount - 1})`);
  }
  return bands.length === 1 ? [bands[0], bands[0], bands[0]] : [bands[0], bands[1], bands[2]];
}
