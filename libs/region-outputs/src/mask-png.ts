import sharp from 'sharp';
import { assertLabelMask, type LabelMask } from './label-mask';

/** A label mask as a single-channel 8-bit greyscale PNG: each pixel's value is its label, unchanged (lossless). */
export async function encodeLabelMaskPng(mask: LabelMask): Promise<Buffer> {
  assertLabelMask(mask);
  return sharp(Buffer.from(mask.data.buffer, mask.data.byteOffset, mask.data.byteLength), {
    raw: { width: mask.width, height: mask.height, channels: 1 },
  })
    // Without it sharp writes one band as RGB (PNG colour type 2), tripling the bytes a client must read.
    .toColourspace('b-w')
    .png({ compressionLevel: 6 })
    .toBuffer();
}
