/**
 * Pillow's `Image.resize` for 8-bit images (libImaging/Resample.c), ported so that pixel values match what
 * transformers' PIL image processors feed their models: separable convolution, filter support widened by
 * the downscale factor (antialiasing), coefficients in 22-bit fixed point, a horizontal pass rounded to
 * 8 bits, then a vertical pass. Bicubic (a = -0.5), bilinear and Lanczos-3.
 */

export type PilFilter = 'bicubic' | 'bilinear' | 'lanczos';

const PRECISION_BITS = 32 - 8 - 2;

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

const FILTERS: Record<PilFilter, { support: number; weight: (x: number) => number }> = {
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  bilinear: { support: 1, weight: (x) => (x < 0 ? (x > -1 ? 1 + x : 0) : x < 1 ? 1 - x : 0) },
  lanczos: { support: 3, weight: (x) => (x > -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

interface Coefficients {
  size: number;
  bounds: Int32Array;
  weights: Int32Array;
}

function precompute(inSize: number, outSize: number, filter: PilFilter): Coefficients {
  const { support: baseSupport, weight } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = baseSupport * filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * size);
  const k = new Float64Array(size);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    // C's (int) cast truncates toward zero.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    k.fill(0);
    for (let x = 0; x < xmax; x++) {
      const w = weight((x + xmin - center + 0.5) * ss);
      k[x] = w;
      total += w;
    }
    for (let x = 0; x < xmax; x++) {
      const normalised = total !== 0 ? k[x] / total : k[x];
      weights[xx * size + x] = Math.trunc(normalised < 0 ? -0.5 + normalised * (1 << PRECISION_BITS) : 0.5 + normalised * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { size, bounds, weights };
}

function clip8(value: number): number {
  const shifted = value >> PRECISION_BITS;
  return shifted < 0 ? 0 : shifted > 255 ? 255 : shifted;
}

/** Resizes interleaved 8-bit RGB (`channels` per pixel) from width×height to outWidth×outHeight. */
export function pilResize(
  data: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  filter: PilFilter,
  channels = 3,
): Uint8Array {
  let current = data;
  let currentWidth = width;
  const half = 1 << (PRECISION_BITS - 1);
  if (outWidth !== width) {
    const { size, bounds, weights } = precompute(width, outWidth, filter);
    const out = new Uint8Array(outWidth * height * channels);
    for (let y = 0; y < height; y++) {
      const row = y * width * channels;
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = bounds[xx * 2];
        const xmax = bounds[xx * 2 + 1];
        for (let c = 0; c < channels; c++) {
          // Integer sums stay far below 2^31 (255 × 2^22 × the taps' total weight), as in C.
          let sum = half;
          for (let x = 0; x < xmax; x++) sum += current[row + (x + xmin) * channels + c] * weights[xx * size + x];
          out[(y * outWidth + xx) * channels + c] = clip8(sum | 0);
        }
      }
    }
    current = out;
    currentWidth = outWidth;
  }
  if (outHeight !== height) {
    const { size, bounds, weights } = precompute(height, outHeight, filter);
    const out = new Uint8Array(currentWidth * outHeight * channels);
    const stride = currentWidth * channels;
    for (let yy = 0; yy < outHeight; yy++) {
      const ymin = bounds[yy * 2];
      const ymax = bounds[yy * 2 + 1];
      for (let x = 0; x < currentWidth; x++) {
        for (let c = 0; c < channels; c++) {
          let sum = half;
          for (let y = 0; y < ymax; y++) sum += current[(y + ymin) * stride + x * channels + c] * weights[yy * size + y];
          out[(yy * currentWidth + x) * channels + c] = clip8(sum | 0);
        }
      }
    }
    current = out;
  }
  return current === data ? data.slice() : current;
}
