import { describe, expect, it } from 'vitest';
import { blendOver, OverlaySizeError, pixelSpan, RgbaLayer, sideBySide, type RgbImage } from './raster';

const RED = { r: 255, g: 0, b: 0 };

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { width, height, data };
}

const pixel = (image: RgbImage, x: number, y: number) => [...image.data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3)];

describe('overlay raster', () => {
  it('a continuous box covers the pixels from floor(x1) up to ceil(x2), clipped to the image; a box outside covers none', () => {
    expect(pixelSpan([10.4, 5.6, 20.2, 15.5], 40, 30)).toEqual({ left: 10, top: 5, right: 21, bottom: 16 });
    expect(pixelSpan([30, 20, 45, 31], 40, 30)).toEqual({ left: 30, top: 20, right: 40, bottom: 30 });
    expect(pixelSpan([3.2, 3.2, 3.4, 3.4], 40, 30)).toEqual({ left: 3, top: 3, right: 4, bottom: 4 });
    expect(pixelSpan([41, 0, 50, 10], 40, 30)).toBeUndefined();
  });

  it('an outline is painted inwards from the box edges, the inside stays transparent', () => {
    const layer = new RgbaLayer(10, 10);
    layer.strokeBox([1, 1, 9, 9], RED, 2);
    const alpha = (x: number, y: number) => layer.data[(y * 10 + x) * 4 + 3];
    expect([alpha(1, 1), alpha(2, 2), alpha(8, 8), alpha(7, 4), alpha(4, 7)]).toEqual([255, 255, 255, 255, 255]);
    expect([alpha(0, 0), alpha(3, 3), alpha(6, 6), alpha(9, 9)]).toEqual([0, 0, 0, 0]);
  });

  it('blends straight alpha over the image and leaves transparent pixels alone; an offset layer is clipped', () => {
    const image = solid(3, 2, [0, 100, 200]);
    const layer = new RgbaLayer(2, 2);
    layer.fillRect(0, 0, 1, 1, RED, 255);
    layer.fillRect(1, 0, 2, 1, RED, 128);
    const out = blendOver(image, layer, 2, 1);
    expect(pixel(out, 2, 1)).toEqual([255, 0, 0]);
    expect(pixel(out, 0, 0)).toEqual([0, 100, 200]);
    expect(image.data[0]).toBe(0);
    const half = blendOver(image, layer, 0, 0);
    expect(pixel(half, 1, 0)).toEqual([Math.round((255 * 128) / 255), Math.round((100 * 127) / 255), Math.round((200 * 127) / 255)]);
    expect(pixel(half, 1, 1)).toEqual([0, 100, 200]);
  });

  it('puts two images side by side: the width is the sum, each half is its image', () => {
    const out = sideBySide(solid(4, 3, [1, 2, 3]), solid(4, 3, [7, 8, 9]));
    expect([out.width, out.height, out.data.length]).toEqual([8, 3, 8 * 3 * 3]);
    expect([pixel(out, 0, 0), pixel(out, 3, 2), pixel(out, 4, 0), pixel(out, 7, 2)]).toEqual([[1, 2, 3], [1, 2, 3], [7, 8, 9], [7, 8, 9]]);
  });

  it('refuses to paint a mask of another size than the layer', () => {
    const layer = new RgbaLayer(4, 4);
    expect(() => layer.paintLabels({ width: 2, height: 2, data: new Uint8Array(4) }, new Map([[1, RED]]), 255)).toThrow(OverlaySizeError);
  });
});
