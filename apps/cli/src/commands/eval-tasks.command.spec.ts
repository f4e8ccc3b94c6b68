import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { readPngMask } from '@rsmoe/eval';
import { Command } from 'commander';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TaskCall } from '../../../gateway/src/adapters/router.port';
import { RouterCallError } from '../../../gateway/src/errors/router-status.mapping';
import { cannedTaskResult, startTestGateway, type TestGateway } from '../../../gateway/src/testing/gateway-test-kit';
import { EVAL_FIXTURES } from '../../../../libs/eval/src/test-paths';
import type { CliRun } from './cli-test-harness';
import { registerEvalCommand } from './eval.command';
import { registerScoreCommand } from './score.command';
import type { TaskEvalReport } from './task-eval-runner';

/** `rsmoe <args>` in this process (the gateway under test runs here too), stdout and stderr captured. */
async function rsmoe(args: string[]): Promise<CliRun> {
  const program = new Command().name('rsmoe');
  registerEvalCommand(program);
  registerScoreCommand(program);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const capture = (into: string[]) => (chunk: string | Uint8Array) => {
    into.push(String(chunk));
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture(stdout) as typeof process.stdout.write);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture(stderr) as typeof process.stderr.write);
  process.exitCode = undefined;
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

/** What `rsmoe score` prints for a task's written files, parsed. */
async function score(task: string, dir: string, masks = false): Promise<unknown> {
  const files = masks ? ['--refs', join(dir, 'references'), '--preds', join(dir, 'predictions')] : ['--refs', join(dir, 'references.json'), '--preds', join(dir, 'predictions.json')];
  const classes = task === 'segmentation' ? ['--classes', join(dir, 'classes.json')] : [];
  const run = await rsmoe(['score', '--task', task, ...files, ...classes]);
  expect(run.stderr).toBe('');
  return JSON.parse(run.stdout);
}

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));

/** A flat-colour image file (PNG unless the name says .jpg or .tif), made with sharp; returns its SHA-256. */
async function image(path: string, colour: string, width = 16, height = 16): Promise<string> {
  mkdirSync(dirname(path), { recursive: true });
  const made = sharp({ create: { width, height, channels: 3, background: colour } });
  const bytes = await (path.endsWith('.jpg') ? made.jpeg() : path.endsWith('.tif') ? made.tiff() : made.png()).toBuffer();
  writeFileSync(path, bytes);
  return createHash('sha256').update(bytes).digest('hex');
}

/** A 16 × 16 single-channel label PNG: 255 in the given 8 × 8 quadrants (tl, tr, bl, br). */
async function changeLabel(path: string, quadrants: string[]): Promise<void> {
  const data = Buffer.alloc(256);
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < 16; x++) if (quadrants.includes(`${y < 8 ? 't' : 'b'}${x < 8 ? 'l' : 'r'}`)) data[y * 16 + x] = 255;
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, await sharp(data, { raw: { width: 16, height: 16, channels: 1 } }).toColourspace('b-w').png().toBuffer());
}

const fails = () => Promise.reject(new RouterCallError(GrpcStatus.INTERNAL, 'expert crashed'));
const percentBox = (x1: number, y1: number, x2: number, y2: number) => ({ x1, y1, x2, y2 });

/** `rsmoe eval` on task datasets, against an in-process gateway (real HTTP and Redis, a fake router). */
describe('rsmoe eval on task datasets', () => {
  let test: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'rsmoe-eval-tasks-'));
  const performed = () => test.router.calls.filter((call) => call.method === 'perform').map((call) => call.call as TaskCall);

  beforeAll(async () => {
    // DIOR-RSVG's boxes are of 800 × 800 images; its longest expression has 51 characters.
    test = await startTestGateway({ MAX_IMAGE_PIXELS: String(800 * 800), MAX_QUESTION_CHARS: '200' });
  });

  afterAll(() => test?.close());

  beforeEach(() => {
    test.router.behaviour = undefined;
  });

  it('grounding (dior-rsvg): a failed sample is recorded, counted and scored IoU 0; a rerun asks only for it', async () => {
    const images = join(dir, 'dior-images');
    await image(join(images, '00001.jpg'), '#405060', 800, 800);
    await image(join(images, '00002.jpg'), '#605040', 800, 800);
    const out = join(dir, 'grounding-out');
    let damFails = true;
    test.router.behaviour = async (call) => {
      const task = call as TaskCall;
      // 00001#0's box [510, 24, 544, 62] px in percent of 800 × 800; 00002#0's is [0, 312, 799, 455].
      if (task.query === 'The vehicle on the upper right') return { ...cannedTaskResult(task), boxes: [percentBox(63.75, 3, 68, 7.75)] };
      if (damFails) return fails();
      return { ...cannedTaskResult(task), boxes: [percentBox(0, 39, 99.875, 56.875)] };
    };
    const args = ['eval', '--task', 'grounding', '--dataset', 'dior-rsvg', '--root', join(EVAL_FIXTURES, 'dior-rsvg'), '--images', images, '--url', test.base, '--out', out];

    const calls = performed().length;
    const first = await rsmoe(args);
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('eval: 2 to run');
    expect(first.stderr).toContain('eval: grounding: 1 ok, 1 failed, 0 without prediction');
    expect(performed().length - calls).toBe(2);
    // The split file test.txt holds objects 0 and 2.
    const predictions = readJson(join(out, 'grounding/predictions.json')) as Record<string, number[][]>;
    expect(Object.keys(predictions)).toEqual(['00001#0', '00002#0']);
    expect(predictions['00001#0'][0].map((value) => +value.toFixed(6))).toEqual([510, 24, 544, 62]);
    expect(predictions['00002#0']).toEqual([]);
    expect(readJson(join(out, 'grounding/references.json'))).toEqual({ '00001#0': [[510, 24, 544, 62]], '00002#0': [[0, 312, 799, 455]] });
    const metrics = JSON.parse(first.stdout);
    expect(metrics).toEqual({ 'acc@0.5': 0.5, meanIoU: expect.closeTo(0.5, 9), count: 2 });
    expect(await score('grounding', join(out, 'grounding'))).toEqual(metrics);
    const report = readJson(join(out, 'report.json')) as TaskEvalReport;
    expect(report.tasks.grounding).toMatchObject({ samples: 2, succeeded: 1, failed: 1, metrics });
    expect(report.tasks.grounding?.failures).toEqual([{ id: '00002#0', code: 'router_error', message: expect.stringContaining('router failed'), httpStatus: 502 }]);

    damFails = false;
    const second = await rsmoe(args);
    expect(second.stderr).toContain('eval: 1 to run, 1 already done (skipped)');
    expect(performed().slice(calls + 2).map((call) => call.query)).toEqual(['The dam across the river']);
    expect(JSON.parse(second.stdout)).toEqual({ 'acc@0.5': 1, meanIoU: expect.closeTo(1, 9), count: 2 });
    expect(await score('grounding', join(out, 'grounding'))).toEqual(JSON.parse(second.stdout));

    const third = await rsmoe(args);
    expect(third.stderr).toContain('eval: 0 to run, 2 already done (skipped)');
    expect(performed().length - calls).toBe(3);
  });

  it('classification (class-folder), change-mask (levir-cd) and change-caption (levir-cc) give what rsmoe score gives', async () => {
    const classes = join(dir, 'ucm');
    await image(join(classes, 'agricultural/a1.png'), '#aa0000');
    await image(join(classes, 'farmland/f1.png'), '#00aa00');
    const failing = new Set([await image(join(classes, 'farmland/f2.png'), '#0000aa')]);

    // The canned change grid [0 1; 1 0] marks the top-right and bottom-left quadrants as changed.
    const cd = join(dir, 'levir-cd');
    for (const [name, colour, quadrants] of [['t1.png', '#101010', ['tr']], ['t2.png', '#202020', []], ['t3.png', '#303030', ['bl']]] as const) {
      const sha = await image(join(cd, 'test/A', name), colour);
      await image(join(cd, 'test/B', name), '#ffffff');
      await changeLabel(join(cd, 'test/label', name), [...quadrants]);
      if (name === 't3.png') failing.add(sha);
    }
    const ccImages = join(dir, 'levir-cc-images');
    await image(join(ccImages, 'test/A/test_000001.png'), '#445566');
    await image(join(ccImages, 'test/B/test_000001.png'), '#665544');

    test.router.behaviour = async (call) => ((call as TaskCall).images.some((ref) => failing.has(ref.sha256)) ? fails() : cannedTaskResult(call as TaskCall));
    const common = ['--url', test.base, '--concurrency', '2'];

    const cls = await rsmoe(['eval', '--dataset', 'class-folder', '--root', classes, '--out', join(dir, 'cls-out'), ...common]);
    expect(cls.code).toBe(0);
    expect(JSON.parse(cls.stdout)).toEqual({ accuracy: 1 / 3, perClass: { agricultural: 0, farmland: 0.5 }, count: 3 });
    expect(await score('classification', join(dir, 'cls-out/classification'))).toEqual(JSON.parse(cls.stdout));
    expect(readJson(join(dir, 'cls-out/classification/predictions.json'))).toEqual({ 'agricultural/a1.png': 'farmland', 'farmland/f1.png': 'farmland' });

    const mask = await rsmoe(['eval', '--dataset', `levir-cd:${cd}`, '--out', join(dir, 'cd-out'), ...common]);
    expect(mask.code).toBe(0);
    // 64 px per quadrant: TP 64 (t1), FP 64 (t1) + 128 (t2), FN 64 (t3, failed: no change predicted).
    expect(JSON.parse(mask.stdout)).toEqual({ F1: 1 / 3, IoU: 0.2, precision: 0.25, recall: 0.5 });
    expect(await score('change-mask', join(dir, 'cd-out/change-mask'), true)).toEqual(JSON.parse(mask.stdout));
    expect(readJson(join(dir, 'cd-out/report.json'))).toMatchObject({ tasks: { 'change-mask': { samples: 3, succeeded: 2, failed: 1 } } });
    expect((await readPngMask(join(dir, 'cd-out/change-mask/predictions/t3.png'))).data.every((value) => value === 0)).toBe(true);
    // A rerun keeps the two mask answers on disk and asks again only for the failed pair.
    const before = performed().length;
    const again = await rsmoe(['eval', '--dataset', `levir-cd:${cd}`, '--out', join(dir, 'cd-out'), ...common]);
    expect(again.stderr).toContain('eval: 1 to run, 2 already done (skipped)');
    expect(performed().length - before).toBe(1);
    expect(again.stdout).toBe(mask.stdout);

    const cc = await rsmoe(['eval', '--dataset', 'levir-cc', '--root', join(EVAL_FIXTURES, 'levir-cc'), '--images', ccImages, '--out', join(dir, 'cc-out'), ...common]);
    expect(cc.code).toBe(0);
    const captions = JSON.parse(cc.stdout);
    expect(Object.keys(captions)).toEqual(['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr']);
    expect(await score('caption', join(dir, 'cc-out/change-caption'))).toEqual(captions);
    // The default split is test: one pair of the two.
    expect(readJson(join(dir, 'cc-out/change-caption/predictions.json'))).toEqual({ 'test_000001.png': 'two buildings were built.' });
  });

  it("rsunivlm: each tag goes to its task, CAP/VQA and unrunnable samples are counted as skipped; metrics per task", async () => {
    const data = join(dir, 'rsunivlm');
    await image(join(data, 'DIOR-RSVG/JPEGImages/00001.jpg'), '#405060', 800, 800);
    await image(join(data, 'LEVIR-CC/images/test/A/test_000001.png'), '#445566');
    await image(join(data, 'LEVIR-CC/images/test/B/test_000001.png'), '#665544');
    await image(join(data, 'UCM/agricultural/agricultural00.tif'), '#aa0000');
    await image(join(data, 'LEVIR-CD/test/A/test_1.png'), '#101010');
    await image(join(data, 'LEVIR-CD/test/B/test_1.png'), '#ffffff');
    await image(join(data, 'scene.png'), '#3a6b35');
    const turn = (human: string, gpt: string) => [{ from: 'human', value: human }, { from: 'gpt', value: gpt }];
    const list = [
      ...(readJson(join(EVAL_FIXTURES, 'rsunivlm/eval-list.json')) as unknown[]),
      { sample_id: 'seg', image: ['scene.png'], conversations: turn('<image>\n[SEG] Segment the buildings.', 'building*2\nothers*2'), metadata: { classes: ['building'] } },
      { sample_id: 'ref', image: ['scene.png'], conversations: turn('<image>\n[REF] What is in [25, 25, 75, 75]?', 'a storage tank.') },
      { sample_id: 'cap', image: ['scene.png'], conversations: turn('<image>\n[CAP] Describe the image.', 'a field.') },
      { sample_id: 'vqa', image: ['scene.png'], conversations: turn('<image>\n[VQA] Is there a road?', 'no') },
      { sample_id: 'seg-unnamed', image: ['scene.png'], conversations: turn('<image>\n[SEG] Segment it.', 'others*4') },
    ];
    writeFileSync(join(data, 'eval.json'), JSON.stringify(list));
    test.router.behaviour = async (call) => {
      const task = call as TaskCall;
      return task.task === 'grounding' ? { ...cannedTaskResult(task), boxes: [percentBox(63.75, 3, 68, 7.75)] } : cannedTaskResult(task);
    };
    const out = join(dir, 'rsunivlm-out');
    const calls = performed().length;
    const run = await rsmoe(['eval', '--dataset', 'rsunivlm', '--root', join(data, 'eval.json'), '--url', test.base, '--out', out]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(
      'eval: 3 sample(s) skipped: 1 × CAP: not run from an RSUniVLM list (use a caption or VQA dataset); 1 × VQA: not run from an RSUniVLM list (use a caption or VQA dataset); 1 × SEG: one image but no classes or query in the metadata',
    );
    expect(performed().slice(calls).map((call) => call.task).sort()).toEqual(['change', 'change', 'classification', 'grounding', 'referring', 'segmentation']);
    // [REF]'s percent box reaches the router as the prompt wrote it.
    expect(performed().find((call) => call.task === 'referring')?.box).toEqual({ x1: 25, y1: 25, x2: 75, y2: 75 });

    const metrics = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(Object.keys(metrics)).toEqual(['grounding', 'classification', 'change-caption', 'change-mask', 'segmentation', 'referring']);
    expect(metrics.grounding).toEqual({ 'acc@0.5': 1, meanIoU: expect.closeTo(1, 9), count: 1 });
    expect(metrics.classification).toEqual({ accuracy: 0, perClass: { agricultural: 0 }, count: 1 });
    for (const [task, scoreTask, masks] of [
      ['grounding', 'grounding', false],
      ['classification', 'classification', false],
      ['change-caption', 'caption', false],
      ['referring', 'caption', false],
      ['change-mask', 'change-mask', true],
      ['segmentation', 'segmentation', true],
    ] as const) {
      expect({ task, metrics: await score(scoreTask, join(out, task), masks) }).toEqual({ task, metrics: metrics[task] });
    }
    // The reference mask text is a 5 × 2 grid stretched over the 16 × 16 image, as the gateway stretches answers.
    const reference = await readPngMask(join(out, 'change-mask/references/levir_cd_test_1.png'));
    expect([reference.width, reference.height, reference.data[0], reference.data[15], reference.data[255]]).toEqual([16, 16, 0, 255, 0]);
    expect(readJson(join(out, 'segmentation/classes.json'))).toEqual(['others', 'building']);
    expect(metrics.segmentation).toEqual({ mIoU: expect.any(Number), perClassIoU: { others: 1 / 3, building: 1 / 3 }, pixelAccuracy: 0.5 });
    const report = readJson(join(out, 'report.json')) as TaskEvalReport;
    expect(report.skipped.count).toBe(3);

    // With --task, only that task's samples run and its metrics print as rsmoe score prints them.
    const only = await rsmoe(['eval', '--dataset', 'rsunivlm', '--root', join(data, 'eval.json'), '--task', 'classification', '--url', test.base, '--out', join(dir, 'rsunivlm-cls')]);
    expect(JSON.parse(only.stdout)).toEqual(metrics.classification);
    expect(only.stderr).not.toContain('skipped:');
  });

  it('reports a task that does not fit the dataset, or a missing root, in one line with exit code 2', async () => {
    const wrong = await rsmoe(['eval', '--dataset', 'dior-rsvg', '--root', join(EVAL_FIXTURES, 'dior-rsvg'), '--task', 'segmentation', '--url', test.base]);
    expect(wrong).toMatchObject({ code: 2, stderr: 'eval: --task segmentation does not fit --dataset dior-rsvg (it holds grounding)\n' });
    const noRoot = await rsmoe(['eval', '--dataset', 'levir-cd', '--url', test.base]);
    expect(noRoot).toMatchObject({ code: 2, stderr: 'eval: --dataset levir-cd needs --root <path>\n' });
  });
});
