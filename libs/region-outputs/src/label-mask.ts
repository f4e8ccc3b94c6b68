import { InvalidMaskShapeError } from './errors';
import { assertImageSize, type ImageSize } from './image-size';

/** The label of a pixel that belongs to no class (not counted in areas). */
export const IGNORE_LABEL = 255;

/**
 * A label mask (also a label grid, before it is resized to the image): one byte per pixel, row-major
 * (index y × width + x), each a class index into the class list it was made with, or IGNORE_LABEL.
 */
export interface LabelMask {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Throws unless width and height are positive integers and `data` holds width × height bytes. */
export function assertLabelMask(mask: LabelMask): void {
  assertImageSize(mask);
  if (!(mask.data instanceof Uint8Array) || mask.data.length !== mask.width * mask.height) {
    throw new InvalidMaskShapeError(
      `a ${mask.width} × ${mask.height} mask needs ${mask.width * mask.height} bytes, got ${mask.data?.length ?? 'none'}`,
    );
  }
}

/**
 * Nearest-neighbour resize by OpenCV INTER_NEAREST's rule (what RSUniVLM resizes its grids with), in exact
 * arithmetic: output pixel x takes source column floor(x × sourceWidth / width), and the same for rows.
 * OpenCV computes x × (1 / (width / sourceWidth)) in floating point, which can fall just below a whole number
 * and so start a cell one pixel later; exact arithmetic keeps every cell's share of pixels the same wherever
 * it lies.
 */
export function resizeNearest(mask: LabelMask, size: ImageSize): LabelMask {
  assertLabelMask(mask);
  assertImageSize(size);
  const { width, height } = size;
  const sourceColumn = new Uint32Array(width);
  for (let x = 0; x < width; x++) sourceColumn[x] = Math.floor((x * mask.width) / width);
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const sourceRow = Math.floor((y * mask.height) / height) * mask.width;
    const row = y * width;
    for (let x = 0; x < width; x++) data[row + x] = mask.data[sourceRow + sourceColumn[x]];
  }
  return { width, height, data };
}
