import { readFile } from 'node:fs/promises';
import type { LabelMask } from '@rsmoe/region-outputs';
import sharp from 'sharp';
import { ScoringInputError } from '../errors';

export type { LabelMask };

/**
 * Reads a label mask: a single-channel (greyscale) 8-bit PNG, whose pixel values are used as they are.
 * Palette ("indexed colour") PNGs are refused rather than guessed: decoding expands them to RGB and their
 * indices would be lost.
 * @throws ScoringInputError naming the file when it cannot be read or decoded, is not a PNG, or is not
 *   single-channel 8-bit.
 */
export async function readPngMask(file: string): Promise<LabelMask> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new ScoringInputError(`${file}: ${reason}`);
  }
  try {
    const image = sharp(bytes);
    const meta = await image.metadata();
    if (meta.format !== 'png') throw new ScoringInputError(`${file}: expected a PNG, got ${meta.format}`);
    if (meta.isPalette) {
      throw new ScoringInputError(`${file}: palette PNG; expected a single-channel 8-bit PNG (greyscale, pixel value = label)`);
    }
    if (meta.channels !== 1 || meta.depth !== 'uchar' || (meta.bitsPerSample !== undefined && meta.bitsPerSample !== 8)) {
      const bits = meta.bitsPerSample ?? (meta.depth === 'uchar' ? 8 : meta.depth);
      throw new ScoringInputError(`${file}: expected a single-channel 8-bit PNG, got ${meta.channels} channel(s) of ${bits} bits`);
    }
    // Output is converted to sRGB unless asked otherwise: take the one band as it is.
    const { data, info } = await image.extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (error) {
    if (error instanceof ScoringInputError) throw error;
    throw new ScoringInputError(`${file}: cannot decode: ${(error as Error).message}`, { cause: error });
  }
}
