import { readdirSync, readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import path from 'node:path';
import { writeArrayBuffer, type GeotiffWriterMetadata } from 'geotiff';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  EmptyImageError,
  ImageDecodeError,
  ImageTooLargeError,
  RuntimeInputError,
  TooManyPixelsError,
  UnsupportedImageFormatError,
} from '../errors';
import { decodeImage, DEFAULT_IMAGE_LIMITS } from './image-decoder';

// The repo is cloned next to shared/ (see STACK.md).
const UCM_DIR = path.resolve(__dirname, '../../../../../shared/datasets/ucm-captions-sample/images');
const ucmFiles = readdirSync(UCM_DIR)
  .filter((f) => f.endsWith('.tif'))
  .sort()
  .slice(0, 4)
  .map((f) => path.join(UCM_DIR, f));

/** A deterministic pattern with distinct values per channel. */
function pattern(width: number, height: number, channels: number): Uint8Array {
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = (x * 7 + y * 13 + c * 50) % 256;
    }
  }
  return data;
}

/** A smooth gradient that lossy codecs keep close. */
function gradient(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.round((x / (width - 1)) * 255);
      data[i + 1] = Math.round((y / (height - 1)) * 255);
      data[i + 2] = 128;
    }
  }
  return data;
}

const raw = (width: number, height: number, channels: 1 | 2 | 3 | 4) => ({ raw: { width, height, channels } });

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

/** Writes a GeoTIFF (uncompressed, big-endian) with a UTM-like georeference. */
function geoTiff(values: Uint8Array | Uint16Array | Float32Array, width: number, height: number, extra: GeotiffWriterMetadata = {}) {
  const metadata: GeotiffWriterMetadata = {
    width,
    height,
    ModelPixelScale: [30, 30, 0],
    ModelTiepoint: [0, 0, 0, 500_000, 4_000_000, 0],
    GTModelTypeGeoKey: 1,
    GTRasterTypeGeoKey: 1,
    ProjectedCSTypeGeoKey: 32633,
    ...extra,
  };
  return new Uint8Array(writeArrayBuffer(values, metadata));
}

/** What the stretch gives for value 10·k when a band holds 10·(0…99) plus an offset: p2 = 19.8, p98 = 970.2. */
const stretched = (k: number) => Math.min(255, Math.max(0, Math.round(((10 * k - 19.8) / 950.4) * 255)));

/** The expected error class, and that the library error (if any) is kept as the cause. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RuntimeInputError);
  return error as Error;
}

describe('decodeImage: UCM sample TIFFs', () => {
  it('finds the sample images', () => {
    expect(ucmFiles.length).toBeGreaterThan(0);
  });

  it.each(ucmFiles.map((f) => [path.basename(f), f]))('decodes %s to 256×256 RGB identical to sharp', async (_, file) => {
    const bytes = readFileSync(file);
    const image = await decodeImage(bytes);
    expect(image).toMatchObject({ width: 256, height: 256, format: 'tiff', sourceBands: 3, sourceBitsPerSample: 8, sourceSampleFormat: 'uint' });
    expect(image.data.length).toBe(256 * 256 * 3);

    const reference = await sharp(bytes).removeAlpha().raw().toBuffer();
    expect(Buffer.from(image.data).equals(reference)).toBe(true);

    // Plausible content: not blank, some spread of values.
    const values = Array.from(image.data);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
    expect(mean).toBeGreaterThan(10);
    expect(mean).toBeLessThan(245);
    expect(sd).toBeGreaterThan(5);
  });

  it('reads the same pixels through geotiff when bands are given, and reorders them', async () => {
    const bytes = readFileSync(ucmFiles[0]);
    const viaSharp = await decodeImage(bytes);
    const viaGeotiff = await decodeImage(bytes, { bands: [0, 1, 2] });
    expect(Buffer.from(viaGeotiff.data).equals(Buffer.from(viaSharp.data))).toBe(true);

    const bgr = await decodeImage(bytes, { bands: [2, 1, 0] });
    for (const i of [0, 1000, 100_000, 256 * 256 - 1]) {
      expect([bgr.data[i * 3], bgr.data[i * 3 + 1], bgr.data[i * 3 + 2]]).toEqual([
        viaSharp.data[i * 3 + 2],
        viaSharp.data[i * 3 + 1],
        viaSharp.data[i * 3],
      ]);
    }

    const grey = await decodeImage(bytes, { bands: [1] });
    for (const i of [0, 5000, 65_535]) {
      expect([grey.data[i * 3], grey.data[i * 3 + 1], grey.data[i * 3 + 2]]).toEqual(Array(3).fill(viaSharp.data[i * 3 + 1]));
    }
  });
});

describe('decodeImage: PNG, JPEG, WebP', () => {
  it('decodes 8-bit RGB PNG exactly', async () => {
    const pixels = pattern(17, 9, 3);
    const png = await sharp(pixels, raw(17, 9, 3)).png().toBuffer();
    const image = await decodeImage(png);
    expect(image).toMatchObject({ width: 17, height: 9, format: 'png', sourceBands: 3, sourceBitsPerSample: 8 });
    expect(Array.from(image.data)).toEqual(Array.from(pixels));
  });

  it('drops the alpha of an RGBA PNG without compositing', async () => {
    const rgba = pattern(8, 5, 4);
    const png = await sharp(rgba, raw(8, 5, 4)).png().toBuffer();
    const image = await decodeImage(png);
    expect(image.sourceBands).toBe(4);
    const rgb = Array.from({ length: 8 * 5 * 3 }, (_, i) => rgba[Math.floor(i / 3) * 4 + (i % 3)]);
    expect(Array.from(image.data)).toEqual(rgb);
  });

  it('replicates a grey PNG to RGB', async () => {
    const grey = pattern(6, 4, 1);
    const png = await sharp(grey, raw(6, 4, 1)).toColourspace('b-w').png().toBuffer();
    expect((await sharp(png).metadata()).channels).toBe(1);
    const image = await decodeImage(png);
    expect(image.sourceBands).toBe(1);
    expect(Array.from(image.data)).toEqual(Array.from(grey).flatMap((v) => [v, v, v]));
  });

  it('reduces a 16-bit PNG to 8 bits by keeping the high byte', async () => {
    const wide = new Uint16Array(5 * 3 * 3).map((_, i) => (i * 1531 + 100) % 65536);
    const png = await sharp(wide, raw(5, 3, 3)).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png).metadata()).depth).toBe('ushort');
    const image = await decodeImage(png);
    expect(image).toMatchObject({ width: 5, height: 3, sourceBitsPerSample: 16, sourceSampleFormat: 'uint' });
    expect(Array.from(image.data)).toEqual(Array.from(wide, (v) => v >> 8));
  });

  it('decodes a 16-bit grey PNG to RGB', async () => {
    const wide = Uint16Array.from([0, 65535, 30000, 1799]);
    const png = await sharp(wide, raw(2, 2, 1)).toColourspace('grey16').png().toBuffer();
    const image = await decodeImage(png);
    expect(Array.from(image.data)).toEqual([0, 255, 117, 7].flatMap((v) => [v, v, v]));
  });

  it('decodes JPEG to the right size and close to the source', async () => {
    const pixels = gradient(64, 48);
    const jpeg = await sharp(pixels, raw(64, 48, 3)).jpeg({ quality: 95 }).toBuffer();
    const image = await decodeImage(jpeg);
    expect(image).toMatchObject({ width: 64, height: 48, format: 'jpeg' });
    expect(meanAbsDiff(image.data, pixels)).toBeLessThan(3);
  });

  it('applies the EXIF orientation of a JPEG', async () => {
    const jpeg = await sharp(gradient(40, 20), raw(40, 20, 3)).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const image = await decodeImage(jpeg);
    expect([image.width, image.height]).toEqual([20, 40]);
  });

  it('decodes lossless WebP exactly and lossy WebP closely', async () => {
    const pixels = pattern(16, 12, 3);
    const lossless = await decodeImage(await sharp(pixels, raw(16, 12, 3)).webp({ lossless: true }).toBuffer());
    expect(lossless).toMatchObject({ width: 16, height: 12, format: 'webp' });
    expect(Array.from(lossless.data)).toEqual(Array.from(pixels));

    const smooth = gradient(64, 48);
    const lossy = await decodeImage(await sharp(smooth, raw(64, 48, 3)).webp({ quality: 95 }).toBuffer());
    expect(meanAbsDiff(lossy.data, smooth)).toBeLessThan(4);
  });
});

describe('decodeImage: TIFF and GeoTIFF', () => {
  it('decodes an 8-bit LZW TIFF exactly', async () => {
    const pixels = pattern(20, 10, 3);
    const tiff = await sharp(pixels, raw(20, 10, 3)).tiff({ compression: 'lzw' }).toBuffer();
    const image = await decodeImage(tiff);
    expect(image).toMatchObject({ width: 20, height: 10, format: 'tiff', sourceBitsPerSample: 8 });
    expect(Array.from(image.data)).toEqual(Array.from(pixels));
  });

  /** Band c holds 1000·(c+1) + 10·i for pixel i of a 10×10 image. */
  const ramp16 = () => new Uint16Array(100 * 3).map((_, j) => 1000 * ((j % 3) + 1) + 10 * Math.floor(j / 3));

  it('stretches a 16-bit RGB TIFF (little-endian, LZW, written by sharp) per band by the 2–98 percentiles', async () => {
    const tiff = await sharp(ramp16(), raw(10, 10, 3)).toColourspace('rgb16').tiff({ compression: 'lzw' }).toBuffer();
    const image = await decodeImage(tiff);
    expect(image).toMatchObject({ width: 10, height: 10, sourceBands: 3, sourceBitsPerSample: 16, sourceSampleFormat: 'uint' });
    // By hand: p2 = 19.8 and p98 = 970.2 above each band's offset; 255 · (10·50 − 19.8) / 950.4 = 128.84.
    const expectedByPixel: Record<number, number> = { 0: 0, 2: 0, 3: 3, 50: 129, 96: 252, 97: 255, 99: 255 };
    for (const [i, v] of Object.entries(expectedByPixel)) {
      expect(Array.from(image.data.subarray(Number(i) * 3, Number(i) * 3 + 3))).toEqual([v, v, v]);
    }
    expect(Array.from(image.data)).toEqual(Array.from({ length: 300 }, (_, j) => stretched(Math.floor(j / 3))));
  });

  it('stretches a 16-bit GeoTIFF written by geotiff (big-endian) the same way', async () => {
    const image = await decodeImage(geoTiff(ramp16(), 10, 10));
    expect(Array.from(image.data)).toEqual(Array.from({ length: 300 }, (_, j) => stretched(Math.floor(j / 3))));
  });

  describe('a 6-band uint16 GeoTIFF', () => {
    // Band b = 1000·b + 10·perm_b(i): the same set of values in every band, in a different order.
    const perms: ((i: number) => number)[] = [(i) => i, (i) => (i * 37) % 100, (i) => 99 - i, (i) => i, (i) => i, (i) => i];
    const values = new Uint16Array(100 * 6).map((_, j) => 1000 * (j % 6) + 10 * perms[j % 6](Math.floor(j / 6)));
    const bytes = geoTiff(values, 10, 10);

    it('selects bands [3, 2, 1] as RGB with a per-band percentile stretch', async () => {
      const image = await decodeImage(bytes, { bands: [3, 2, 1] });
      expect(image).toMatchObject({ width: 10, height: 10, sourceBands: 6, sourceBitsPerSample: 16 });
      const px = (i: number) => Array.from(image.data.subarray(i * 3, i * 3 + 3));
      // By hand, e.g. pixel 3: R = f(3) = round(255·10.2/950.4) = 3, G = f(96) = 252, B = f(111 mod 100) = 24.
      expect(px(3)).toEqual([3, 252, 24]);
      expect(px(50)).toEqual([129, 126, 129]);
      expect(px(0)).toEqual([0, 255, 0]);
      for (let i = 0; i < 100; i++) expect(px(i)).toEqual([stretched(i), stretched(99 - i), stretched((i * 37) % 100)]);
    });

    it('uses bands [0, 1, 2] by default', async () => {
      const image = await decodeImage(bytes);
      expect(Array.from(image.data.subarray(9, 12))).toEqual([stretched(3), stretched(11), stretched(96)]);
    });

    it('rejects a band index the image does not have', async () => {
      const error = await rejection(decodeImage(bytes, { bands: [7, 2, 1] }));
      expect(error).toBeInstanceOf(UnsupportedImageFormatError);
      expect(error.message).toContain('band 7 requested but the image has 6 bands');
      await expect(decodeImage(bytes, { bands: [-1] })).rejects.toThrow(UnsupportedImageFormatError);
    });
  });

  it('keeps 8-bit bands of a multiband GeoTIFF as they are', async () => {
    const values = new Uint8Array(4 * 3 * 5).map((_, j) => (j * 11) % 256);
    const image = await decodeImage(geoTiff(values, 4, 3), { bands: [4, 0, 2] });
    for (let i = 0; i < 12; i++) {
      expect(Array.from(image.data.subarray(i * 3, i * 3 + 3))).toEqual([values[i * 5 + 4], values[i * 5], values[i * 5 + 2]]);
    }
  });

  it('turns a float32 single-band GeoTIFF into grey RGB, leaving NaN and nodata out of the stretch', async () => {
    const values = new Float32Array(100).map((_, i) => (i === 5 ? NaN : i === 6 ? -9999 : i * 0.5 - 10));
    const image = await decodeImage(geoTiff(values, 10, 10, { GDAL_NODATA: '-9999' }));
    expect(image).toMatchObject({ sourceBands: 1, sourceBitsPerSample: 32, sourceSampleFormat: 'float' });
    const grey = (i: number) => {
      const [r, g, b] = image.data.subarray(i * 3, i * 3 + 3);
      expect(r).toBe(g);
      expect(g).toBe(b);
      return r;
    };
    // 98 valid values: p2 = −9.5 + 0.94·0.5 = −9.03, p98 = 38.5 + 0.06·0.5 = 38.53.
    expect(grey(50)).toBe(129); // 255 · (15 + 9.03) / 47.56 = 128.84
    expect(grey(20)).toBe(48); // 255 · 9.03 / 47.56 = 48.42
    expect(grey(0)).toBe(0);
    expect(grey(99)).toBe(255);
    expect(grey(5)).toBe(0);
    expect(grey(6)).toBe(0);
  });

  it('maps a constant band to 0', async () => {
    const image = await decodeImage(geoTiff(new Uint16Array(16).fill(500), 4, 4));
    expect(image.data.every((v) => v === 0)).toBe(true);
  });

  it('honours stretchPercentiles', async () => {
    const image = await decodeImage(geoTiff(ramp16(), 10, 10), { stretchPercentiles: [0, 100] });
    // Min/max stretch: 255 · 10·i / 990.
    expect(image.data[50 * 3]).toBe(Math.round((255 * 500) / 990));
  });
});

describe('decodeImage: bad input', () => {
  it('rejects zero bytes', async () => {
    await expect(decodeImage(new Uint8Array(0))).rejects.toThrow(EmptyImageError);
  });

  it('rejects bytes that are no known format', async () => {
    const noise = Uint8Array.from({ length: 512 }, (_, i) => (i * 73 + 41) % 251);
    const error = await rejection(decodeImage(noise));
    expect(error).toBeInstanceOf(UnsupportedImageFormatError);
    expect(error.message).toMatch(/send PNG, JPEG, WebP or TIFF/);
  });

  it('names GIF in the error for a GIF', async () => {
    const gif = Uint8Array.from([...Buffer.from('GIF89a'), 1, 0, 1, 0, 0x80, 0, 0]);
    const error = await rejection(decodeImage(gif));
    expect(error).toBeInstanceOf(UnsupportedImageFormatError);
    expect(error.message).toBe('GIF is not supported; send PNG, JPEG, WebP or TIFF');
  });

  const validPng = () => sharp(pattern(64, 64, 3), raw(64, 64, 3)).png().toBuffer();

  it('rejects a truncated PNG as undecodable, with the library error as cause', async () => {
    const error = await rejection(decodeImage((await validPng()).subarray(0, 100)));
    expect(error).toBeInstanceOf(ImageDecodeError);
    expect(error.message).toMatch(/^could not decode the PNG image: /);
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('rejects a PNG with a corrupted IDAT', async () => {
    const png = Buffer.from(await validPng());
    const idat = png.indexOf('IDAT');
    for (let i = idat + 6; i < idat + 30; i++) png[i] ^= 0xff;
    const error = await rejection(decodeImage(png));
    expect(error).toBeInstanceOf(ImageDecodeError);
  });

  it('rejects a truncated TIFF on both decoding paths', async () => {
    const ucm = readFileSync(ucmFiles[0]);
    await expect(decodeImage(ucm.subarray(0, 5000))).rejects.toThrow(ImageDecodeError);
    await expect(decodeImage(ucm.subarray(0, 5000), { bands: [0, 1, 2] })).rejects.toThrow(ImageDecodeError);
    await expect(decodeImage(ucm.subarray(0, 6))).rejects.toThrow(ImageDecodeError);
  });

  it('rejects more bytes than maxBytes, naming both sizes, before looking at the format', async () => {
    const error = await rejection(decodeImage(new Uint8Array(2000), { limits: { maxBytes: 1000 } }));
    expect(error).toBeInstanceOf(ImageTooLargeError);
    expect(error.message).toContain('2000 bytes');
    expect(error.message).toContain('1000 bytes');
    expect(DEFAULT_IMAGE_LIMITS.maxBytes).toBe(32 * 1024 * 1024);
  });

  it('rejects too many pixels from the header alone', async () => {
    // A 3000×3000 black PNG is ~26 kB: a small decompression bomb.
    const bomb = await sharp({ create: { width: 3000, height: 3000, channels: 3, background: '#000' } }).png().toBuffer();
    const limits = { maxPixels: 1_000_000 };
    const error = await rejection(decodeImage(bomb, { limits }));
    expect(error).toBeInstanceOf(TooManyPixelsError);
    expect(error.message).toContain('3000×3000');
    expect(error.message).toContain('1000000');
    // Only the header survives here, so the check cannot have decoded any pixel.
    await expect(decodeImage(bomb.subarray(0, 100), { limits })).rejects.toThrow(TooManyPixelsError);
  });

  it('rejects too many pixels in a TIFF', async () => {
    const error = await rejection(decodeImage(readFileSync(ucmFiles[0]), { limits: { maxPixels: 10_000 } }));
    expect(error).toBeInstanceOf(TooManyPixelsError);
    expect(error.message).toContain('256×256');
  });

  describe('work at the pixel limit is bounded before it starts', () => {
    /** A 2 × 1 RGB PNG whose header says `width`×`height`: its pixel data is far too short to decode. */
    async function pngHeader(width: number, height: number): Promise<Uint8Array> {
      const header = new Uint8Array(await sharp({ create: { width: 2, height: 1, channels: 3, background: '#000' } }).png().toBuffer());
      const view = new DataView(header.buffer);
      view.setUint32(16, width);
      view.setUint32(20, height);
      view.setUint32(29, crc32(header.subarray(12, 29)));
      return header;
    }

    /** A little-endian TIFF header (one IFD) for an uncompressed strip image; the pixel data is absent. */
    function tiffHeader(width: number, height: number, bands: number, bits: number, sampleFormat: 1 | 3): Uint8Array {
      const tags: [number, number, number, number[]][] = [
        [256, 4, 1, [width]],
        [257, 4, 1, [height]],
        [258, 3, bands, Array(bands).fill(bits)],
        [259, 3, 1, [1]],
        [262, 3, 1, [bands >= 3 ? 2 : 1]],
        [273, 4, 1, [0]],
        [277, 3, 1, [bands]],
        [278, 4, 1, [height]],
        [279, 4, 1, [width * height * bands * (bits / 8)]],
        [284, 3, 1, [1]],
        [339, 3, bands, Array(bands).fill(sampleFormat)],
      ];
      const bytes = new Uint8Array(1024);
      const view = new DataView(bytes.buffer);
      bytes.set([0x49, 0x49, 42, 0]);
      view.setUint32(4, 8, true);
      view.setUint16(8, tags.length, true);
      let extra = 8 + 2 + tags.length * 12 + 4;
      tags.forEach(([tag, type, count, values], i) => {
        const at = 10 + i * 12;
        view.setUint16(at, tag, true);
        view.setUint16(at + 2, type, true);
        view.setUint32(at + 4, count, true);
        const size = type === 3 ? 2 : 4;
        const write = (offset: number, value: number) => (size === 2 ? view.setUint16(offset, value, true) : view.setUint32(offset, value, true));
        if (count * size <= 4) {
          values.forEach((value, k) => write(at + 8 + k * size, value));
        } else {
          view.setUint32(at + 8, extra, true);
          values.forEach((value, k) => write(extra + k * size, value));
          extra += count * size;
        }
      });
      return bytes;
    }

    it('refuses a 64,000,000 × 1 PNG (within the pixel limit) by its longest side', async () => {
      const strip = await pngHeader(64_000_000, 1);
      const error = await rejection(decodeImage(strip));
      expect(error).toBeInstanceOf(TooManyPixelsError);
      expect(error.message).toContain('64000000×1');
      expect(error.message).toContain(`limit of ${DEFAULT_IMAGE_LIMITS.maxSide} pixels`);
    });

    it('refuses an 8000 × 8000 three-band float32 TIFF by the memory its decoding needs', async () => {
      const error = await rejection(decodeImage(tiffHeader(8000, 8000, 3, 32, 3)));
      expect(error).toBeInstanceOf(TooManyPixelsError);
      expect(error.message).toMatch(/8000×8000 image needs about 1152 MB \(18 bytes per pixel\), more than the limit of 537 MB/);
    });

    it('applies maxDecodeBytes to every path, and nothing is refused at exactly the limit', async () => {
      // geotiff path: one float32 band = 4 bytes + 1 stretched + 3 RGB per pixel.
      const floats = geoTiff(new Float32Array(64 * 64).map((_, i) => i), 64, 64, { BitsPerSample: [32], SampleFormat: [3] });
      const exact = 64 * 64 * 8;
      await expect(decodeImage(floats, { limits: { maxDecodeBytes: exact } })).resolves.toMatchObject({ width: 64, height: 64 });
      await expect(decodeImage(floats, { limits: { maxDecodeBytes: exact - 1 } })).rejects.toThrow(/8 bytes per pixel/);
      // sharp path: 8-bit RGB = 3 source + 3 RGB bytes per pixel.
      const png = await sharp(pattern(64, 64, 3), raw(64, 64, 3)).png().toBuffer();
      await expect(decodeImage(png, { limits: { maxDecodeBytes: 64 * 64 * 6 } })).resolves.toMatchObject({ width: 64 });
      await expect(decodeImage(png, { limits: { maxDecodeBytes: 64 * 64 * 6 - 1 } })).rejects.toThrow(TooManyPixelsError);
      await expect(decodeImage(png, { limits: { maxSide: 63 } })).rejects.toThrow(/limit of 63 pixels/);
      await expect(decodeImage(png, { limits: { maxSide: 64 } })).resolves.toMatchObject({ height: 64 });
    });

    it('accepts an 8-bit RGB image at the pixel limit with the default limits (its header, checked alone)', async () => {
      // 8000 × 8000 × 6 bytes = 384 MB ≤ 512 MiB: it gets past every limit and fails only for want of pixels.
      await expect(decodeImage(await pngHeader(8000, 8000))).rejects.toBeInstanceOf(ImageDecodeError);
    });
  });

  it('rejects invalid stretch percentiles', async () => {
    await expect(decodeImage(new Uint8Array(1), { stretchPercentiles: [50, 10] })).rejects.toThrow(RangeError);
  });
});
