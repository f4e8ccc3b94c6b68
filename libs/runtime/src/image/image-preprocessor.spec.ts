import { describe, expect, it } from 'vitest';
import { ModelFileError, TooManyPixelsError } from '../errors';
import type { DecodedImage } from './image-decoder';
import { ImagePreprocessor, parsePreprocessorConfig, stackPixelValues, type PreprocessorConfig } from './image-preprocessor';

function rgbImage(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): DecodedImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 3);
  }
  return { width, height, data, format: 'png', sourceBands: 3, sourceBitsPerSample: 8, sourceSampleFormat: 'uint' };
}

const patterned = (width: number, height: number) =>
  rgbImage(width, height, (x, y) => [(x * 7 + y * 13) % 256, (x * 31 + 5) % 256, (y * 17 + 100) % 256]);

const HALF = { image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] } satisfies PreprocessorConfig;

/** transformers' numpy path: rescale in float64 then cast to float32, normalise in float32. */
const numpyValue = (x: number) => Math.fround((Math.fround(x * (1 / 255)) - 0.5) / 0.5);

/** Value of channel c at (x, y) in a CHW tensor. */
const at = (values: Float32Array, width: number, height: number, c: number, x: number, y: number) =>
  values[c * width * height + y * width + x];

describe('parsePreprocessorConfig', () => {
  it('reads a SigLIP-style config', () => {
    const config = parsePreprocessorConfig(
      {
        image_processor_type: 'SiglipImageProcessor',
        do_resize: true,
        size: { height: 384, width: 384 },
        resample: 3,
        do_rescale: true,
        rescale_factor: 0.00392156862745098,
        do_normalize: true,
        ...HALF,
      },
      'preprocessor_config.json',
    );
    expect(config.size).toEqual({ height: 384, width: 384 });
    const pre = new ImagePreprocessor(config);
    expect([pre.outputHeight, pre.outputWidth]).toEqual([384, 384]);
  });

  it('reads a CLIP-style config with bare numbers', () => {
    const config = parsePreprocessorConfig(
      {
        size: 336,
        crop_size: 336,
        do_center_crop: true,
        image_mean: [0.48145466, 0.4578275, 0.40821073],
        image_std: [0.26862954, 0.26130258, 0.27577711],
      },
      'preprocessor_config.json',
    );
    expect(config.size).toEqual({ shortest_edge: 336 });
    expect(config.crop_size).toEqual({ height: 336, width: 336 });
    const pre = new ImagePreprocessor(config);
    expect([pre.outputHeight, pre.outputWidth]).toEqual([336, 336]);
  });

  it('expands a single mean/std number to three channels', () => {
    const config = parsePreprocessorConfig({ size: { height: 4, width: 4 }, image_mean: 0.5, image_std: 0.25 }, 'p.json');
    expect(config.image_mean).toEqual([0.5, 0.5, 0.5]);
    expect(config.image_std).toEqual([0.25, 0.25, 0.25]);
  });

  it.each([
    ['not an object', [1, 2, 3], /expected a JSON object/],
    ['mean of length 2', { size: { height: 4, width: 4 }, image_mean: [0.5, 0.5], image_std: [1, 1, 1] }, /image_mean must be 3 numbers/],
    ['a zero std', { size: { height: 4, width: 4 }, image_mean: [0, 0, 0], image_std: [1, 0, 1] }, /image_std must be 3 non-zero/],
    ['a negative size', { size: { height: -4, width: 4 }, do_normalize: false }, /size.height must be a positive integer/],
    ['a zero crop', { size: { shortest_edge: 8 }, crop_size: { height: 0, width: 8 }, do_normalize: false }, /crop_size.height/],
    ['a fractional shortest edge', { size: { shortest_edge: 2.5 }, crop_size: 2, do_normalize: false }, /size.shortest_edge/],
    ['a missing size', { do_normalize: false }, /size is missing/],
    ['a missing mean', { size: { height: 4, width: 4 }, image_std: [1, 1, 1] }, /image_mean or image_std is missing/],
    ['an unsupported resample', { size: { height: 4, width: 4 }, resample: 4, do_normalize: false }, /resample 4 is not supported/],
    ['a bad flag', { size: { height: 4, width: 4 }, do_normalize: 'yes' }, /do_normalize must be true or false/],
    ['a zero rescale factor', { size: { height: 4, width: 4 }, rescale_factor: 0, do_normalize: false }, /rescale_factor/],
    ['shortest_edge without a crop', { size: { shortest_edge: 224 }, do_normalize: false }, /depends on the input image/],
    ['longest_edge', { size: { shortest_edge: 224, longest_edge: 448 }, crop_size: 224, do_normalize: false }, /longest_edge/],
  ])('rejects %s with ModelFileError naming the file', (_, json, message) => {
    const parse = () => parsePreprocessorConfig(json, 'models/x/preprocessor_config.json');
    expect(parse).toThrow(ModelFileError);
    expect(parse).toThrow(message);
    expect(parse).toThrow(/^models\/x\/preprocessor_config\.json: /);
  });

  it('also validates configs given straight to the constructor', () => {
    expect(() => new ImagePreprocessor({ size: { height: 4, width: 4 }, image_mean: [0, 0, 0], image_std: [0, 1, 1] })).toThrow(
      ModelFileError,
    );
  });
});

describe('ImagePreprocessor', () => {
  it('keeps exact values when the image already has the target size', async () => {
    const image = patterned(8, 6);
    const pre = new ImagePreprocessor({ size: { height: 6, width: 8 }, resample: 3, rescale_factor: 1 / 255, ...HALF });
    const values = await pre.toPixelValues(image);
    expect(values.length).toBe(3 * 6 * 8);
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 8; x++) {
        for (let c = 0; c < 3; c++) {
          const byte = image.data[(y * 8 + x) * 3 + c];
          expect(at(values, 8, 6, c, x, y)).toBe(numpyValue(byte));
          expect(at(values, 8, 6, c, x, y)).toBeCloseTo((byte / 255 - 0.5) / 0.5, 6);
        }
      }
    }
    expect(values[0]).toBe(-1); // byte 0 at (0, 0) in R
  });

  it('lays out CHW planes in R, G, B order', async () => {
    const pre = new ImagePreprocessor({ size: { height: 2, width: 2 }, do_rescale: false, do_normalize: false });
    const values = await pre.toPixelValues(rgbImage(2, 2, () => [10, 20, 30]));
    expect(Array.from(values)).toEqual([10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30]);
  });

  it('resizes a 64×48 image to 32×32', async () => {
    const pre = new ImagePreprocessor({ size: { height: 32, width: 32 }, resample: 2, do_normalize: false });
    expect([pre.outputHeight, pre.outputWidth]).toEqual([32, 32]);

    const flat = await pre.toPixelValues(rgbImage(64, 48, () => [200, 100, 50]));
    expect(flat.length).toBe(3 * 32 * 32);
    for (const [c, byte] of [[0, 200], [1, 100], [2, 50]]) {
      for (let i = 0; i < 32 * 32; i++) expect(flat[c * 1024 + i]).toBeCloseTo(byte / 255, 6);
    }

    // A horizontal ramp stays a ramp: increasing along x, constant along y.
    const ramp = await pre.toPixelValues(rgbImage(64, 48, (x) => [x * 4, 0, 0]));
    for (let x = 1; x < 32; x++) expect(at(ramp, 32, 32, 0, x, 10)).toBeGreaterThan(at(ramp, 32, 32, 0, x - 1, 10));
    for (let y = 1; y < 32; y++) expect(at(ramp, 32, 32, 0, 5, y)).toBeCloseTo(at(ramp, 32, 32, 0, 5, 0), 6);
  });

  it.each([0, 1, 2, 3])('resizes with PIL resample code %i', async (resample) => {
    const pre = new ImagePreprocessor({ size: { height: 10, width: 12 }, resample, do_normalize: false });
    const values = await pre.toPixelValues(patterned(30, 20));
    expect(values.length).toBe(3 * 10 * 12);
    expect(values.every((v) => v >= 0 && v <= 1)).toBe(true);
  });

  it('resizes the shortest edge then crops the centre', async () => {
    const pre = new ImagePreprocessor({ size: { shortest_edge: 32 }, crop_size: { height: 32, width: 32 }, do_normalize: false });
    expect([pre.outputHeight, pre.outputWidth]).toEqual([32, 32]);
    // 64×48 → 42×32 (long side truncated like transformers), then the middle 32 columns.
    const landscape = await pre.toPixelValues(rgbImage(64, 48, (x) => (x < 4 || x >= 60 ? [255, 0, 0] : [0, 0, 255])));
    expect(landscape.length).toBe(3 * 32 * 32);
    expect(landscape.slice(0, 1024).every((v) => v === 0)).toBe(true); // the red margins are cropped away
    const portrait = await pre.toPixelValues(patterned(30, 70));
    expect(portrait.length).toBe(3 * 32 * 32);
  });

  it('refuses a shortest-edge resize that would blow a thin strip up to too many pixels', async () => {
    const pre = new ImagePreprocessor({ size: { shortest_edge: 336 }, crop_size: { height: 336, width: 336 }, do_normalize: false });
    const strip = rgbImage(1, 200_000, () => [1, 2, 3]); // 336 × 67 200 000 after the resize
    await expect(pre.toPixelValues(strip)).rejects.toThrow(TooManyPixelsError);
  });

  it('crops the centre exactly and pads with zeros like transformers', async () => {
    const image = patterned(8, 6);
    const crop = new ImagePreprocessor({ do_resize: false, crop_size: { height: 4, width: 4 }, do_rescale: false, do_normalize: false });
    const cropped = await crop.toPixelValues(image);
    // Offsets ⌊(6 − 4) / 2⌋ = 1 row and ⌊(8 − 4) / 2⌋ = 2 columns.
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) expect(at(cropped, 4, 4, 1, x, y)).toBe(image.data[((y + 1) * 8 + x + 2) * 3 + 1]);
    }

    const pad = new ImagePreprocessor({ do_resize: false, crop_size: { height: 8, width: 9 }, do_rescale: false, ...HALF });
    const padded = await pad.toPixelValues(image);
    // Offsets ⌊(6 − 8) / 2⌋ = −1 and ⌊(8 − 9) / 2⌋ = −1: a zero border on top/left, one more row below.
    expect(at(padded, 9, 8, 0, 0, 0)).toBe(-1);
    expect(at(padded, 9, 8, 0, 4, 7)).toBe(-1);
    expect(at(padded, 9, 8, 0, 2, 2)).toBe((image.data[(1 * 8 + 1) * 3] - 0.5) / 0.5); // image (1, 1)
    expect(at(padded, 9, 8, 0, 2, 2)).toBe(39);
  });

  it('rejects image data of the wrong length', async () => {
    const pre = new ImagePreprocessor({ size: { height: 2, width: 2 }, do_normalize: false });
    const image = { ...patterned(2, 2), data: new Uint8Array(5) };
    await expect(pre.toPixelValues(image)).rejects.toThrow(RangeError);
  });
});

describe('stackPixelValues', () => {
  it('concatenates CHW tensors into NCHW', () => {
    const a = new Float32Array(12).fill(1);
    const b = new Float32Array(12).fill(2);
    const batch = stackPixelValues([a, b], 2, 2);
    expect(batch.length).toBe(24);
    expect(Array.from(batch.subarray(0, 12)).every((v) => v === 1)).toBe(true);
    expect(Array.from(batch.subarray(12)).every((v) => v === 2)).toBe(true);
  });

  it('rejects a tensor of the wrong size', () => {
    expect(() => stackPixelValues([new Float32Array(12), new Float32Array(11)], 2, 2)).toThrow(RangeError);
  });
});
