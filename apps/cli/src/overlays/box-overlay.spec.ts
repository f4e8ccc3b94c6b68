import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { drawBoxOverlay } from './box-overlay';
import { BOX_COLOUR } from './palette';

const GREEN = [58, 107, 53];
const BOX = [BOX_COLOUR.r, BOX_COLOUR.g, BOX_COLOUR.b];

const image = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: { r: GREEN[0], g: GREEN[1], b: GREEN[2] } } }).png().toBuffer();

async function pixels(png: Buffer) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { info, at: (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)] };
}

describe('box overlay', () => {
  it('draws a 2 px outline in the box colour; pixels inside and outside the box keep the image colour', async () => {
    const out = await pixels(await drawBoxOverlay(await image(40, 30), [{ box: [10, 5, 30, 25] }]));
    expect(out.info).toMatchObject({ width: 40, height: 30 });
    // Outline: the edge pixel and the one inside it, on every side (x2 = 30 is exclusive: column 29 is the last).
    for (const [x, y] of [[10, 5], [11, 6], [29, 24], [28, 23], [20, 5], [20, 24], [10, 15], [29, 15]]) expect(out.at(x, y), `(${x}, ${y})`).toEqual(BOX);
    for (const [x, y] of [[12, 7], [20, 15], [27, 22], [9, 5], [30, 25], [0, 0]]) expect(out.at(x, y), `(${x}, ${y})`).toEqual(GREEN);
  });

  it('keeps a box at the image edge inside the image', async () => {
    const out = await pixels(await drawBoxOverlay(await image(40, 30), [{ box: [30, 20, 40, 30] }]));
    expect([out.at(39, 29), out.at(38, 25), out.at(30, 20)]).toEqual([BOX, BOX, BOX]);
    expect(out.at(35, 25)).toEqual(GREEN);
  });

  it('puts a label tab in the box colour above the box, else below it, else none; never over the box', async () => {
    const scene = await image(80, 60);
    const above = await pixels(await drawBoxOverlay(scene, [{ box: [10, 30, 60, 50], label: 'the runway' }]));
    // The tab's padding, just above the box's top-left corner; inside the box, the image.
    expect([above.at(10, 29), above.at(9, 29), above.at(12, 32)]).toEqual([BOX, GREEN, GREEN]);
    // A box at the top: the tab is just below its bottom-left corner.
    const below = await pixels(await drawBoxOverlay(scene, [{ box: [5, 0, 30, 20], label: 'the runway' }]));
    expect([below.at(5, 20), below.at(4, 20), below.at(7, 2)]).toEqual([BOX, GREEN, GREEN]);
    // A box the whole height of the image: no room for a tab, none drawn.
    const none = await pixels(await drawBoxOverlay(scene, [{ box: [20, 0, 60, 60], label: 'the runway' }]));
    expect([none.at(22, 2), none.at(30, 30), none.at(10, 2)]).toEqual([GREEN, GREEN, GREEN]);
  });
});
