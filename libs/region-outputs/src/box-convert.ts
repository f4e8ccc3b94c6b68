import type { NormBox, PercentBox, PixelBox } from './box.types';
import { InvalidBoxError } from './errors';
import { assertImageSize, type ImageSize } from './image-size';

/** A percent box in pixels of an image of `size`: continuous coordinates, corners ordered, clamped to the image. */
export function boxPx(box: PercentBox, size: ImageSize): PixelBox {
  assertImageSize(size);
  const { x1, y1, x2, y2 } = ordered(box);
  return {
    unit: 'px',
    x1: clamp((x1 / 100) * size.width, size.width),
    y1: clamp((y1 / 100) * size.height, size.height),
    x2: clamp((x2 / 100) * size.width, size.width),
    y2: clamp((y2 / 100) * size.height, size.height),
  };
}

/** A percent box as fractions of the image: corners ordered, clamped to [0, 1]. */
export function boxNorm(box: PercentBox): NormBox {
  const { x1, y1, x2, y2 } = ordered(box);
  return { unit: 'norm', x1: clamp(x1 / 100, 1), y1: clamp(y1 / 100, 1), x2: clamp(x2 / 100, 1), y2: clamp(y2 / 100, 1) };
}

/** A pixel box in percent of an image of `size` (e.g. the query box of a `[REF]` prompt): ordered, clamped to 0–100. */
export function boxPercentFromPx(box: PixelBox, size: ImageSize): PercentBox {
  assertImageSize(size);
  const { x1, y1, x2, y2 } = ordered(box);
  return {
    unit: 'percent',
    x1: clamp((x1 / size.width) * 100, 100),
    y1: clamp((y1 / size.height) * 100, 100),
    x2: clamp((x2 / size.width) * 100, 100),
    y2: clamp((y2 / size.height) * 100, 100),
  };
}

/** A normalised box in percent: ordered, clamped to 0–100. */
export function boxPercentFromNorm(box: NormBox): PercentBox {
  const { x1, y1, x2, y2 } = ordered(box);
  return { unit: 'percent', x1: clamp(x1 * 100, 100), y1: clamp(y1 * 100, 100), x2: clamp(x2 * 100, 100), y2: clamp(y2 * 100, 100) };
}

/** Corners swapped where needed so that x1 ≤ x2 and y1 ≤ y2; throws InvalidBoxError for a non-finite value. */
function ordered<B extends PercentBox | PixelBox | NormBox>(box: B): B {
  if (![box.x1, box.y1, box.x2, box.y2].every(Number.isFinite)) {
    throw new InvalidBoxError(`box values must be finite numbers, got [${box.x1}, ${box.y1}, ${box.x2}, ${box.y2}]`);
  }
  return {
    ...box,
    x1: Math.min(box.x1, box.x2),
    x2: Math.max(box.x1, box.x2),
    y1: Math.min(box.y1, box.y2),
    y2: Math.max(box.y1, box.y2),
  };
}

function clamp(value: number, max: number): number {
  return Math.min(Math.max(value, 0), max);
}
