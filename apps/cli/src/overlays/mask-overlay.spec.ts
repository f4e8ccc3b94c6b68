import { encodeLabelMaskPng } from '@rsmoe/region-outputs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { drawChangeOverlay, drawMaskOverlay, paintMask } from './mask-overlay';
import { CHANGE_COLOUR, type Rgb } from './palette';
import { OverlaySizeError, type RgbImage } from './raster';

const RED: Rgb = { r: 255, g: 0, b: 0 };
const BLUE: Rgb = { r: 0, g: 0, b: 255 };

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { width, height, data };
}

const blend = (colour: number, image: number, alpha: number) => Math.round((colour * alpha + image * (255 - alpha)) / 255);

async function pixels(png: Buffer) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { info, at: (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)] };
}

describe('mask overlay', () => {
  it('blends each coloured class over its pixels; background and ignored pixels keep the image colour', () => {
    const image = solid(4, 2, [10, 20, 30]);
    // others, building, water, ignore / building, others, others, water
    const mask = { width: 4, height: 2, data: new Uint8Array([0, 1, 2, 255, 1, 0, 0, 2]) };
    const out = paintMask(image, mask, new Map([[1, RED], [2, BLUE]]), 128);
    const at = (i: number) => [...out.data.subarray(i * 3, i * 3 + 3)];
    const red = [blend(255, 10, 128), blend(0, 20, 128), blend(0, 30, 128)];
    const blue = [blend(0, 10, 128), blend(0, 20, 128), blend(255, 30, 128)];
    expect([at(1), at(4), at(2), at(7)]).toEqual([red, red, blue, blue]);
    expect([at(0), at(3), at(5), at(6)]).toEqual([[10, 20, 30], [10, 20, 30], [10, 20, 30], [10, 20, 30]]);
  });

  it("reads the gateway's single-channel label PNG and colours its classes over an encoded image", async () => {
    const image = await sharp({ create: { width: 4, height: 2, channels: 3, background: '#0a141e' } }).png().toBuffer();
    const maskPng = await encodeLabelMaskPng({ width: 4, height: 2, data: new Uint8Array([0, 1, 1, 0, 0, 0, 1, 1]) });
    const out = await pixels(await drawMaskOverlay(image, maskPng, new Map([[1, RED]])));
    expect(out.info).toMatchObject({ width: 4, height: 2 });
    expect(out.at(1, 0)).toEqual([blend(255, 10, 128), blend(0, 20, 128), blend(0, 30, 128)]);
    expect(out.at(0, 0)).toEqual([10, 20, 30]);
  });

  it('refuses a mask of another size than the image', () => {
    expect(() => paintMask(solid(4, 2, [0, 0, 0]), { width: 2, height: 2, data: new Uint8Array(4) }, new Map([[1, RED]]))).toThrow(OverlaySizeError);
  });

  it('puts before and after side by side (twice the width), the changed pixels highlighted on after', async () => {
    const before = await sharp({ create: { width: 4, height: 2, channels: 3, background: '#3a6b35' } }).png().toBuffer();
    const after = await sharp({ create: { width: 4, height: 2, channels: 3, background: '#223344' } }).png().toBuffer();
    // others, changed as in the gateway's change mask: changed pixels are (3, 0) and (0, 1).
    const maskPng = await encodeLabelMaskPng({ width: 4, height: 2, data: new Uint8Array([0, 0, 0, 1, 1, 0, 0, 0]) });
    const out = await pixels(await drawChangeOverlay(before, after, maskPng, 1));
    expect(out.info).toMatchObject({ width: 8, height: 2 });
    expect([out.at(0, 0), out.at(3, 0), out.at(0, 1)]).toEqual([[0x3a, 0x6b, 0x35], [0x3a, 0x6b, 0x35], [0x3a, 0x6b, 0x35]]);
    const highlighted = [blend(CHANGE_COLOUR.r, 0x22, 128), blend(CHANGE_COLOUR.g, 0x33, 128), blend(CHANGE_COLOUR.b, 0x44, 128)];
    expect([out.at(4 + 3, 0), out.at(4 + 0, 1)]).toEqual([highlighted, highlighted]);
    expect([out.at(4 + 0, 0), out.at(4 + 3, 1)]).toEqual([[0x22, 0x33, 0x44], [0x22, 0x33, 0x44]]);
  });
});
