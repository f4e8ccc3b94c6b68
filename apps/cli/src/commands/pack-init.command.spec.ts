import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPackManifest } from '@rsmoe/contracts';
import { REPO_ROOT } from './cli-test-harness';
import { initPack } from './pack-init.command';

/** The tiny HF-made models (shared/models/hf-reference): exported expert directories in the onnx-community layout. */
const HF_REFERENCE = resolve(REPO_ROOT, '../shared/models/hf-reference');
const available = existsSync(join(HF_REFERENCE, 'llava-onevision-tiny', 'onnx', 'vision_encoder.onnx'));
if (!available) console.warn(`rsmoe pack init suite skipped: ${HF_REFERENCE} is missing`);

const root = mkdtempSync(join(tmpdir(), 'rsmoe-pack-init-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Copies a reference model into `<pack>/<name>` (without its test images and references). */
function expertCopy(pack: string, name: string, source: 'llava-onevision-tiny' | 'instructblip-tiny'): string {
  const dir = join(pack, name);
  cpSync(join(HF_REFERENCE, source), dir, { recursive: true, filter: (src) => !/(images|reference\.json)$/.test(src) });
  return dir;
}

function packInit(args: string[]) {
  const run = spawnSync(process.execPath, ['bin/rsmoe.cjs', 'pack', 'init', ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe.skipIf(!available)('rsmoe pack init', () => {
  it('writes a pack.json the contracts load: one expert per directory, shared encoders share the encoderId', () => {
    const pack = join(root, 'mixed');
    const image = expertCopy(pack, 'image', 'llava-onevision-tiny');
    const region = expertCopy(pack, 'Region', 'llava-onevision-tiny');
    const blip = expertCopy(pack, 'rs-moe', 'instructblip-tiny');
    const run = packInit([image, region, blip, '--version', '2.1.0']);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { file: string; experts: { id: string; modelType: string }[] };
    expect(summary.file).toBe(join(pack, 'pack.json'));
    expect(summary.experts.map((e) => [e.id, e.modelType])).toEqual([
      ['image', 'llava_onevision'],
      ['region', 'llava_onevision'],
      ['rs-moe', 'instructblip'],
    ]);

    const manifest = loadPackManifest(pack);
    expect(manifest).toMatchObject({ name: 'mixed', version: '2.1.0' });
    expect(manifest.experts.map((e) => e.model)).toEqual(['image', 'Region', 'rs-moe']);
    expect(manifest.experts.map((e) => e.modelDir)).toEqual([image, region, blip]);
    const [a, b, c] = manifest.experts.map((e) => e.encoderId);
    expect(a).toMatch(/^sha256-[0-9a-f]{64}$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    for (const expert of manifest.experts) {
      expect(expert.dtype).toBeUndefined();
      expect(expert.prompts.caption).toBeTruthy();
      expect(expert.prompts.vqa).toContain('{question}');
    }
    expect(manifest.experts[2].prompts.vqa).toBe('Question: {question} Short answer:');
    expect(manifest.fusion.order).toEqual(['image', 'region', 'rs-moe']);
  });

  it('counts external data in the encoder identity, and writes task tags and the dtype when asked', async () => {
    const pack = join(root, 'external');
    const image = expertCopy(pack, 'image', 'llava-onevision-tiny');
    const pixel = expertCopy(pack, 'pixel', 'llava-onevision-tiny');
    const before = await initPack({ expertDirs: [image, pixel] });
    expect(before.experts[1].encoderId).toBe(before.experts[0].encoderId);
    // A graph whose weights sit in vision_encoder.onnx_data: other bytes there are another encoder.
    writeFileSync(join(pixel, 'onnx', 'vision_encoder.onnx_data'), 'other weights');
    const after = await initPack({ expertDirs: [image, pixel], force: true });
    expect(after.experts[1].encoderId).not.toBe(after.experts[0].encoderId);
    // another dtype is another vision graph file (with no external data here): another identity, shared again
    const quantized = await initPack({ expertDirs: [image, pixel], force: true, taskTags: true, dtype: 'q4f16', name: 'rsunivlm', version: '0.1.0' });
    expect(quantized.experts[0].encoderId).not.toBe(before.experts[0].encoderId);
    expect(quantized.experts[1].encoderId).toBe(quantized.experts[0].encoderId);
    const written = JSON.parse(readFileSync(join(pack, 'pack.json'), 'utf8')) as { name: string; experts: { dtype: string; prompts: Record<string, string> }[] };
    expect(written.name).toBe('rsunivlm');
    expect(written.experts[0].dtype).toBe('q4f16');
    expect(written.experts[0].prompts).toEqual({ caption: '[CAP] Describe this image briefly.', vqa: '[VQA] {question}' });
  });

  it.each([
    ['onnx/decoder_model_merged.onnx', /not an expert directory: onnx\/decoder_model_merged\.onnx is missing/],
    ['onnx/vision_encoder.onnx', /not an expert directory: onnx\/vision_encoder\.onnx is missing/],
    ['config.json', /not an expert directory: config\.json is missing/],
  ])('refuses a directory without %s, naming the directory and the file, and writes nothing', (file, message) => {
    const pack = join(root, `missing-${file.replace(/\W/g, '-')}`);
    const good = expertCopy(pack, 'good', 'llava-onevision-tiny');
    const bad = expertCopy(pack, 'bad', 'llava-onevision-tiny');
    rmSync(join(bad, file));
    const run = packInit([good, bad]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(new RegExp(`^pack init: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    expect(run.stderr).toMatch(message);
    expect(existsSync(join(pack, 'pack.json'))).toBe(false);
  });

  it('refuses a dtype whose files the export did not write, an existing pack.json, and directories without a common parent', async () => {
    const pack = join(root, 'refusals');
    const blip = expertCopy(pack, 'blip', 'instructblip-tiny');
    await expect(initPack({ expertDirs: [blip], dtype: 'fp16' })).rejects.toThrow(/blip: --dtype needs onnx\/vision_encoder_fp16\.onnx, which is missing/);
    await initPack({ expertDirs: [blip] });
    await expect(initPack({ expertDirs: [blip] })).rejects.toThrow(/pack\.json exists; use --force/);
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    const other = expertCopy(elsewhere, 'other', 'llava-onevision-tiny');
    await expect(initPack({ expertDirs: [blip, other] })).rejects.toThrow(/different parent directories: .*--out/);
    const out = join(root, 'explicit-out');
    const summary = await initPack({ expertDirs: [blip, other], outDir: out });
    expect(summary.experts.map((e) => e.model)).toEqual(['../refusals/blip', '../elsewhere/other']);
    expect(loadPackManifest(out).experts.map((e) => e.modelDir)).toEqual([blip, other]);
  });

  it('refuses an unknown dtype in one line with exit code 2', () => {
    const pack = join(root, 'bad-dtype');
    const image = expertCopy(pack, 'image', 'llava-onevision-tiny');
    const run = packInit([image, '--dtype', 'fp8']);
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^pack init: --dtype: "fp8" is not a dtype/);
  });
});
