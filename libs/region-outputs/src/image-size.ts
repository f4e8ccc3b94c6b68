import { InvalidImageSizeError } from './errors';

/** An image's size in pixels. */
export interface ImageSize {
  width: number;
  height: number;
}

/** Throws InvalidImageSizeError unless width and height are positive integers. */
export function assertImageSize(size: ImageSize): void {
  if (!isPositiveInteger(size.width) || !isPositiveInteger(size.height)) {
    throw new InvalidImageSizeError(size.width, size.height);
  }
}

function isPositiveInteger(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}
