/**
 * COCO compressed RLE of a binary mask, byte for byte as pycocotools' `mask.encode` writes it: run lengths in
 * column-major (Fortran) order starting with a run of zeros (0 if the first pixel is set), then the counts
 * string of coco-rle-counts.ts.
 */
import { decodeCocoCounts, encodeCocoCounts } from './coco-rle-counts';
import { InvalidCocoRleError, InvalidMaskShapeError } from './errors';

export interface CocoRle {
  /** [height, width] in pixels, COCO's order. */
  size: [number, number];
  counts: string;
}

/**
 * Encodes a row-major mask (index y × width + x, as images are stored); any non-zero byte is foreground.
 * A zero-size mask is allowed (counts "0"), as in pycocotools.
 */
export function encodeCocoRle(binaryMask: Uint8Array, width: number, height: number): CocoRle {
  assertShape(width, height);
  if (!(binaryMask instanceof Uint8Array) || binaryMask.length !== width * height) {
    throw new InvalidMaskShapeError(`a ${width} × ${height} mask needs ${width * height} bytes, got ${binaryMask?.length ?? 'none'}`);
  }
  const counts: number[] = [];
  let previous = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let i = x; i < binaryMask.length; i += width) {
      const value = binaryMask[i] === 0 ? 0 : 1;
      if (value !== previous) {
        counts.push(run);
        run = 0;
        previous = value;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [height, width], counts: encodeCocoCounts(counts) };
}

/** Decodes to a row-major mask of 0 and 1. Throws InvalidCocoRleError if the runs do not cover the mask exactly. */
export function decodeCocoRle(rle: CocoRle): Uint8Array {
  const [height, width] = Array.isArray(rle?.size) ? rle.size : [NaN, NaN];
  if (!isSize(height) || !isSize(width)) throw new InvalidCocoRleError(`size must be [height, width] in pixels, got ${JSON.stringify(rle?.size)}`);
  if (typeof rle.counts !== 'string') throw new InvalidCocoRleError('counts must be a string (compressed RLE)');
  const counts = decodeCocoCounts(rle.counts);
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total !== width * height) throw new InvalidCocoRleError(`runs cover ${total} pixels, the ${height} × ${width} mask has ${width * height}`);
  const mask = new Uint8Array(width * height);
  let j = 0;
  counts.forEach((count, i) => {
    // Odd runs are foreground; j walks the mask column by column.
    if (i % 2 === 1) {
      for (let end = j + count; j < end; j++) mask[(j % height) * width + Math.floor(j / height)] = 1;
    } else {
      j += count;
    }
  });
  return mask;
}

function assertShape(width: number, height: number): void {
  if (!isSize(width) || !isSize(height)) {
    throw new InvalidMaskShapeError(`mask size must be non-negative integers, got ${width} × ${height}`);
  }
}

function isSize(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}
