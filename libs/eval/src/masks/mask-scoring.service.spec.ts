import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ScoringInputError } from '../errors';
import { computeSegmentation } from '../metrics/segmentation.metric';
import { pairMaskFolders, scoreChangeMaskFolders, scoreSegmentationFolders } from './mask-scoring.service';
import { readPngMask } from './png-mask.reader';

const raw = (width: number, height: number, channels: 1 | 2 | 3 | 4) => ({ raw: { width, height, channels } });
/** A single-channel 8-bit PNG (without `toColourspace('b-w')` sharp would write RGB). */
const greyPng = (values: number[], width: number, height: number) => sharp(Uint8Array.from(values), raw(width, height, 1)).toColourspace('b-w').png().toBuffer();

const root = mkdtempSync(join(tmpdir(), 'rsmoe-masks-'));
function folder(...parts: string[]): string {
  const dir = join(root, ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const classes = ['background', 'building', 'road', 'water'];
// The masks of segmentation.metric.spec.ts: mIoU 0.5, pixel accuracy 7/11.
const m1 = { ref: [0, 0, 1, 1, 1, 2, 255, 0], pred: [0, 1, 1, 1, 2, 2, 0, 255] };
const m2 = { ref: [2, 2, 2, 0], pred: [2, 0, 2, 0] };

describe('readPngMask', () => {
  it('returns the pixel values of a single-channel 8-bit PNG unchanged', async () => {
    const file = join(folder('read'), 'm.png');
    writeFileSync(file, await greyPng([0, 1, 2, 255, 3, 4], 3, 2));
    const mask = await readPngMask(file);
    expect({ width: mask.width, height: mask.height, data: [...mask.data] }).toEqual({ width: 3, height: 2, data: [0, 1, 2, 255, 3, 4] });
  });

  it('refuses PNGs that are not single-channel 8-bit, naming the file', async () => {
    const dir = folder('refuse');
    const cases: Array<[string, Buffer, RegExp]> = [
      ['rgb.png', await sharp(Buffer.alloc(12), raw(2, 2, 3)).png().toBuffer(), /rgb\.png: expected a single-channel 8-bit PNG, got 3 channel\(s\) of 8 bits/],
      ['grey-alpha.png', await sharp(Buffer.alloc(8), raw(2, 2, 2)).png().toBuffer(), /grey-alpha\.png: expected a single-channel 8-bit PNG/],
      ['palette.png', await sharp(Buffer.from([0, 0, 0, 255, 0, 0, 0, 255, 0, 1, 1, 1]), raw(2, 2, 3)).png({ palette: true }).toBuffer(), /palette\.png: palette PNG/],
      ['deep.png', await sharp(Buffer.alloc(4), raw(2, 2, 1)).toColourspace('grey16').png().toBuffer(), /deep\.png: expected a single-channel 8-bit PNG, got 1 channel\(s\) of 16 bits/],
      ['photo.png', await sharp(Buffer.alloc(12), raw(2, 2, 3)).jpeg().toBuffer(), /photo\.png: expected a PNG, got jpeg/],
      ['broken.png', Buffer.from('not an image'), /broken\.png: cannot decode/],
    ];
    for (const [name, bytes, message] of cases) {
      writeFileSync(join(dir, name), bytes);
      await expect(readPngMask(join(dir, name))).rejects.toThrow(message);
    }
    await expect(readPngMask(join(dir, 'absent.png'))).rejects.toThrow(ScoringInputError);
    await expect(readPngMask(join(dir, 'absent.png'))).rejects.toThrow(/absent\.png: no such file/);
  });
});

describe('mask folders', () => {
  let refs: string;
  let preds: string;
  beforeAll(async () => {
    refs = folder('seg', 'refs');
    preds = folder('seg', 'preds');
    writeFileSync(join(refs, 'm1.png'), await greyPng(m1.ref, 4, 2));
    writeFileSync(join(preds, 'm1.png'), await greyPng(m1.pred, 4, 2));
    writeFileSync(join(refs, 'm2.png'), await greyPng(m2.ref, 2, 2));
    writeFileSync(join(preds, 'm2.png'), await greyPng(m2.pred, 2, 2));
    writeFileSync(join(preds, 'notes.txt'), 'other files are ignored');
  });

  it('scores segmentation folders like the pure counting', async () => {
    const r = await scoreSegmentationFolders(refs, preds, classes);
    expect(r.mIoU).toBeCloseTo(0.5, 12);
    expect(r.pixelAccuracy).toBeCloseTo(7 / 11, 12);
    expect(r.perClassIoU.water).toBeNull();
    const u8 = (v: number[]) => Uint8Array.from(v);
    expect(r).toEqual(
      computeSegmentation(
        [
          { name: 'm1.png', reference: u8(m1.ref), prediction: u8(m1.pred) },
          { name: 'm2.png', reference: u8(m2.ref), prediction: u8(m2.pred) },
        ],
        classes,
      ),
    );
  });

  it('scores change-mask folders (non-zero = changed)', async () => {
    const cdRefs = folder('cd', 'refs');
    const cdPreds = folder('cd', 'preds');
    // TP 2, FP 3, FN 1 as in change-mask.metric.spec.ts
    writeFileSync(join(cdRefs, 'a.png'), await greyPng([0, 255, 255, 0, 255, 0], 3, 2));
    writeFileSync(join(cdPreds, 'a.png'), await greyPng([0, 1, 0, 1, 255, 0], 3, 2));
    writeFileSync(join(cdRefs, 'b.png'), await greyPng([0, 0], 2, 1));
    writeFileSync(join(cdPreds, 'b.png'), await greyPng([255, 255], 2, 1));
    const r = await scoreChangeMaskFolders(cdRefs, cdPreds);
    expect(r.F1).toBeCloseTo(0.5, 12);
    expect(r.IoU).toBeCloseTo(1 / 3, 12);
    expect(r.precision).toBeCloseTo(0.4, 12);
    expect(r.recall).toBeCloseTo(2 / 3, 12);
  });

  it('names missing and extra prediction files, and files whose size differs', async () => {
    const r = folder('pairing', 'refs');
    const p = folder('pairing', 'preds');
    writeFileSync(join(r, 'a.png'), await greyPng([0, 1], 2, 1));
    writeFileSync(join(r, 'b.png'), await greyPng([0, 1], 2, 1));
    writeFileSync(join(p, 'a.png'), await greyPng([0, 1], 1, 2));
    writeFileSync(join(p, 'c.png'), await greyPng([0, 1], 2, 1));
    await expect(pairMaskFolders(r, p)).rejects.toThrow(`prediction masks missing in ${p}: "b.png"; prediction masks without a reference in ${r}: "c.png"`);
    writeFileSync(join(p, 'b.png'), await greyPng([0, 1], 2, 1));
    await expect(pairMaskFolders(r, p)).rejects.toThrow(/without a reference .*"c\.png"$/);
    await expect(scoreChangeMaskFolders(r, folder('pairing', 'empty'))).rejects.toThrow(/missing in .*"a\.png", "b\.png"/);
    const same = folder('pairing', 'same');
    writeFileSync(join(same, 'a.png'), await greyPng([0, 1], 1, 2));
    writeFileSync(join(same, 'b.png'), await greyPng([0, 1], 2, 1));
    await expect(scoreChangeMaskFolders(r, same)).rejects.toThrow(`${join(same, 'a.png')}: 1×2 pixels, but its reference is 2×1`);
  });

  it('reports a missing folder, an empty reference folder, and values outside the class list', async () => {
    await expect(scoreSegmentationFolders(join(root, 'nope'), preds, classes)).rejects.toThrow(/^references .*nope: no such folder$/);
    await expect(scoreSegmentationFolders(folder('none'), preds, classes)).rejects.toThrow(/none: no PNG masks/);
    await expect(scoreSegmentationFolders(refs, preds, ['background', 'building'])).rejects.toThrow('prediction m1.png: value 2 is neither a class index (0–1) nor 255');
  });
});
