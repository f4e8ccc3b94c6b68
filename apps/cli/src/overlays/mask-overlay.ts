import { decodeLabelMaskPng, decodeRgb, encodePng } from './image-codec';
import { CHANGE_COLOUR, type Rgb } from './palette';
import { blendOver, OverlaySizeError, RgbaLayer, sideBySide, type LabelMask, type RgbImage } from './raster';

/** Opacity of class colours over the image (0–255). Default of `paintMask`: half. */
export const MASK_ALPHA = 128;

/**
 * The image with each coloured label's pixels blended with its colour; labels without a colour are left as they
 * are. OverlaySizeError unless the mask is the image's size.
 */
export function paintMask(image: RgbImage, mask: LabelMask, colours: ReadonlyMap<number, Rgb>, alpha = MASK_ALPHA): RgbImage {
  const layer = new RgbaLayer(image.width, image.height);
  layer.paintLabels(mask, colours, alpha);
  return blendOver(image, layer);
}

/** `before` and `after` side by side, the `changed` label's pixels highlighted on `after`. */
export function paintChanges(before: RgbImage, after: RgbImage, mask: LabelMask, changed: number, alpha = MASK_ALPHA): RgbImage {
  if (before.width !== after.width || before.height !== after.height) {
    throw new OverlaySizeError(`before is ${before.width}×${before.height} but after is ${after.width}×${after.height}`);
  }
  return sideBySide(before, paintMask(after, mask, new Map([[changed, CHANGE_COLOUR]]), alpha));
}

/** An encoded image with a label PNG's classes blended over it, as PNG. */
export async function drawMaskOverlay(image: Uint8Array, maskPng: Uint8Array, colours: ReadonlyMap<number, Rgb>): Promise<Buffer> {
  const [pixels, mask] = await Promise.all([decodeRgb(image), decodeLabelMaskPng(maskPng)]);
  return encodePng(paintMask(pixels, mask, colours));
}

/** Encoded before and after images side by side, the changed pixels of a label PNG highlighted on after, as PNG. */
export async function drawChangeOverlay(before: Uint8Array, after: Uint8Array, maskPng: Uint8Array, changed: number): Promise<Buffer> {
  const [first, second, mask] = await Promise.all([decodeRgb(before), decodeRgb(after), decodeLabelMaskPng(maskPng)]);
  return encodePng(paintChanges(first, second, mask, changed));
}
