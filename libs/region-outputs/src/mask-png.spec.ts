import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { InvalidMaskShapeError } from './errors';
import { IGNORE_LABEL } from './label-mask';
import { encodeLabelMaskPng } from './mask-png';

describe('encodeLabelMaskPng', () => {
  it('writes a single-channel 8-bit PNG whose pixels are the labels, exactly', async () => {
    const width = 7;
    const height = 5;
    const data = Uint8Array.from({ length: width * height }, (_, i) => [0, 1, 2, 254, IGNORE_LABEL][i % 5]);
    const png = await encodeLabelMaskPng({ width, height, data });

    // IHDR, read from the bytes rather than through sharp: width, height, bit depth 8, colour type 0 (greyscale).
    expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
    expect([png.readUInt32BE(16), png.readUInt32BE(20), png[24], png[25]]).toEqual([width, height, 8, 0]);

    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height, meta.channels, meta.depth, meta.isPalette]).toEqual(['png', width, height, 1, 'uchar', false]);
    // sharp's raw output is sRGB unless asked otherwise: take the one band as it is.
    const decoded = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect([decoded.info.width, decoded.info.height, decoded.info.channels]).toEqual([width, height, 1]);
    expect(Buffer.compare(decoded.data, data)).toBe(0);
  });

  it('encodes a mask that is a view into a larger buffer', async () => {
    const backing = Uint8Array.from([9, 9, 3, 4, 5, 6, 9]);
    const png = await encodeLabelMaskPng({ width: 2, height: 2, data: backing.subarray(2, 6) });
    const { data } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect([...data]).toEqual([3, 4, 5, 6]);
  });

  it('rejects a mask of the wrong length', async () => {
    await expect(encodeLabelMaskPng({ width: 3, height: 3, data: new Uint8Array(8) })).rejects.toThrow(InvalidMaskShapeError);
  });
});
