import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from './cli-test-harness';

const dir = mkdtempSync(join(tmpdir(), 'rsmoe-score-'));
const write = (name: string, value: unknown) => {
  const file = join(dir, name);
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
};

/** Leave-one-out files from a Karpathy sample: first caption = candidate, the other four = references. */
function leaveOneOutFiles(file: string, name: string) {
  const json = JSON.parse(readFileSync(file, 'utf8')) as { images: Array<{ imgid: number; sentences: Array<{ raw: string }> }> };
  const refs = Object.fromEntries(json.images.map((im) => [im.imgid, im.sentences.slice(1).map((s) => s.raw)]));
  const preds = Object.fromEntries(json.images.map((im) => [im.imgid, im.sentences[0].raw]));
  return { refs: write(`${name}-refs.json`, refs), preds: write(`${name}-preds.json`, preds) };
}

describe('rsmoe score', () => {
  it('prints exactly one JSON object with the seven metrics for the UCM leave-one-out protocol', async () => {
    const { refs, preds } = leaveOneOutFiles(resolve(REPO_ROOT, '../shared/datasets/ucm-captions-sample/dataset_ucm_subset.json'), 'ucm');
    const run = await runCli(['score', '--refs', refs, '--preds', preds]);
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
    const out = JSON.parse(run.stdout) as Record<string, number>;
    expect(Object.keys(out)).toEqual(['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr']);
    expect(out.Bleu_4).toBeCloseTo(0.6883311420333786, 9);
    expect(out.CIDEr).toBeCloseTo(3.3797971259246755, 9);
  });

  it('supports --tokenized and --per-image', async () => {
    const refs = write('t-refs.json', { a: ['a red roof'], b: ['a river'] });
    const preds = write('t-preds.json', { a: ['a red roof'], b: 'a river' });
    const run = await runCli(['score', '--refs', refs, '--preds', preds, '--tokenized', '--per-image']);
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as { perImage: Array<{ id: string; ROUGE_L: number }> };
    expect(out.perImage.map((p) => [p.id, p.ROUGE_L])).toEqual([['a', 1], ['b', 1]]);
  });

  it('fails with exit code 2 and one line naming ids present in only one file', async () => {
    const refs = write('m-refs.json', { a: ['x'], b: ['y'] });
    const preds = write('m-preds.json', { a: 'x', c: 'z' });
    const run = await runCli(['score', '--refs', refs, '--preds', preds]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toEqual(['score: ids without references: "c"; ids without a candidate: "b"']);
  });

  it('fails with exit code 2 on unreadable or malformed input and on usage errors, without a stack trace', async () => {
    const bad = write('bad.json', '{"a": [');
    const missing = await runCli(['score', '--refs', join(dir, 'nope.json'), '--preds', bad]);
    expect(missing).toMatchObject({ code: 2, stdout: '' });
    expect(missing.stderr).toMatch(/^score: references .*nope\.json: no such file\n$/);
    const malformed = await runCli(['score', '--refs', write('ok.json', { a: ['x'] }), '--preds', bad]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/predictions .*bad\.json: not valid JSON/);
    const usage = await runCli(['score', '--refs', bad]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("required option '--preds <path>' not specified");
    expect(usage.stderr).not.toMatch(/\n\s+at /);
  });
});

/** A folder of single-channel 8-bit PNG masks: `{name: [values, width, height]}`. */
async function maskFolder(name: string, masks: Record<string, [number[], number, number]>): Promise<string> {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  for (const [file, [values, width, height]] of Object.entries(masks)) {
    const png = await sharp(Uint8Array.from(values), { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    writeFileSync(join(folder, file), png);
  }
  return folder;
}

describe('rsmoe score --task', () => {
  it('grounding: acc@0.5, meanIoU and count, the first predicted box only', async () => {
    const refs = write('g-refs.json', { a: [[0, 0, 10, 10]], b: [[0, 0, 10, 10], [20, 20, 30, 30]], c: [[0, 0, 4, 4]], d: [[0, 0, 10, 10]] });
    // a: IoU 0.5 (hit), b: 1 (hit, second reference), c: 1/7, d: no prediction → acc 2/4, meanIoU 23/56
    const preds = write('g-preds.json', { a: [[0, 0, 10, 5], [0, 0, 10, 10]], b: [[20, 20, 30, 30]], c: [[2, 2, 6, 6]] });
    const run = await runCli(['score', '--task', 'grounding', '--refs', refs, '--preds', preds]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
    const out = JSON.parse(run.stdout) as Record<string, number>;
    expect(Object.keys(out)).toEqual(['acc@0.5', 'meanIoU', 'count']);
    expect(out['acc@0.5']).toBe(0.5);
    expect(out.meanIoU).toBeCloseTo(23 / 56, 12);
    expect(out.count).toBe(4);
  });

  it('classification: accuracy, perClass and count', async () => {
    const refs = write('c-refs.json', { 1: 'airport', 2: 'airport', 3: 'beach' });
    const preds = write('c-preds.json', { 1: 'Airport', 2: 'beach', 3: 'beach' });
    const run = await runCli(['score', '--task', 'classification', '--refs', refs, '--preds', preds]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ accuracy: 2 / 3, perClass: { airport: 0.5, beach: 1 }, count: 3 });
  });

  it('segmentation: mIoU over the classes present, null for the others, pixel accuracy', async () => {
    // Totals: reference area [4, 3, 4, 0], predicted [3, 3, 4, 0], intersection [2, 2, 3, 0] → IoU 0.4, 0.5, 0.6, null
    const refs = await maskFolder('s-refs', { 'm1.png': [[0, 0, 1, 1, 1, 2, 255, 0], 4, 2], 'm2.png': [[2, 2, 2, 0], 2, 2] });
    const preds = await maskFolder('s-preds', { 'm1.png': [[0, 1, 1, 1, 2, 2, 0, 255], 4, 2], 'm2.png': [[2, 0, 2, 0], 2, 2] });
    const classes = write('classes.json', ['background', 'building', 'road', 'water']);
    const run = await runCli(['score', '--task', 'segmentation', '--refs', refs, '--preds', preds, '--classes', classes]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const out = JSON.parse(run.stdout) as { mIoU: number; perClassIoU: Record<string, number | null>; pixelAccuracy: number };
    expect(Object.keys(out)).toEqual(['mIoU', 'perClassIoU', 'pixelAccuracy']);
    expect(out.mIoU).toBeCloseTo(0.5, 12);
    expect(out.perClassIoU).toEqual({ background: expect.closeTo(0.4, 12), building: 0.5, road: expect.closeTo(0.6, 12), water: null });
    expect(out.pixelAccuracy).toBeCloseTo(7 / 11, 12);

    const noClasses = await runCli(['score', '--task', 'segmentation', '--refs', refs, '--preds', preds]);
    expect(noClasses).toMatchObject({ code: 2, stdout: '' });
    expect(noClasses.stderr).toBe('score: --task segmentation needs --classes <file> (JSON array of class names, index = pixel value)\n');
  });

  it('change-mask: F1, IoU, precision and recall of the changed class', async () => {
    const refs = await maskFolder('cd-refs', { 'a.png': [[0, 255, 255, 0, 255, 0], 3, 2], 'b.png': [[0, 0], 2, 1] });
    const preds = await maskFolder('cd-preds', { 'a.png': [[0, 1, 0, 1, 255, 0], 3, 2], 'b.png': [[255, 255], 2, 1] });
    const run = await runCli(['score', '--task', 'change-mask', '--refs', refs, '--preds', preds]);
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as Record<string, number>;
    // TP 2, FP 3, FN 1
    expect(Object.keys(out)).toEqual(['F1', 'IoU', 'precision', 'recall']);
    expect(out.F1).toBeCloseTo(0.5, 12);
    expect(out.IoU).toBeCloseTo(1 / 3, 12);
    expect(out.precision).toBeCloseTo(0.4, 12);
    expect(out.recall).toBeCloseTo(2 / 3, 12);
  });

  it('fails with exit code 2 and one line on bad masks, boxes, flags and tasks', async () => {
    const refs = await maskFolder('bad-refs', { 'a.png': [[0, 1], 2, 1] });
    const rgbPreds = join(dir, 'bad-rgb');
    mkdirSync(rgbPreds, { recursive: true });
    writeFileSync(join(rgbPreds, 'a.png'), await sharp(Buffer.alloc(6), { raw: { width: 2, height: 1, channels: 3 } }).png().toBuffer());
    const rgb = await runCli(['score', '--task', 'change-mask', '--refs', refs, '--preds', rgbPreds]);
    expect(rgb).toMatchObject({ code: 2, stdout: '' });
    expect(rgb.stderr).toBe(`score: ${join(rgbPreds, 'a.png')}: expected a single-channel 8-bit PNG, got 3 channel(s) of 8 bits\n`);

    const missing = await runCli(['score', '--task', 'change-mask', '--refs', refs, '--preds', await maskFolder('bad-none', {})]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^score: prediction masks missing in .*bad-none: "a\.png"\n$/);

    const boxes = write('bad-boxes.json', { a: [[0, 0, 10, 10]] });
    const malformed = await runCli(['score', '--task', 'grounding', '--refs', boxes, '--preds', write('bad-preds.json', { a: [[10, 0, 5, 10]] })]);
    expect(malformed).toMatchObject({ code: 2, stdout: '' });
    expect(malformed.stderr).toBe('score: predictions of id "a": box 0 [10,0,5,10] is malformed (needs x2 ≥ x1 and y2 ≥ y1)\n');

    const misplaced = await runCli(['score', '--task', 'grounding', '--refs', boxes, '--preds', boxes, '--classes', boxes, '--per-image']);
    expect(misplaced.code).toBe(2);
    expect(misplaced.stderr).toBe('score: --per-image only applies to --task caption\n');

    const unknown = await runCli(['score', '--task', 'detection', '--refs', boxes, '--preds', boxes]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("argument 'detection' is invalid. Allowed choices are caption, grounding, segmentation, change-mask, classification");
    expect(unknown.stderr).not.toMatch(/\n\s+at /);
  });
});
