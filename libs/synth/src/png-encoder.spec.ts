import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { encodePng } from './png-encoder';
import { generateScene } from './scene-generator';

describe('encodePng', () => {
  it('writes a lossless PNG of the scene', async () => {
    const scene = generateScene({ seed: 9, sceneClass: 'airport' });
    const png = await encodePng(scene);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([128, 128, 3]);
    expect(Buffer.from(scene.rgb).equals(data)).toBe(true);
  });

  it('gives the same bytes for the same seed', async () => {
    const [a, b] = await Promise.all([encodePng(generateScene({ seed: 2 })), encodePng(generateScene({ seed: 2 }))]);
    expect(a.equals(b)).toBe(true);
  });
});
