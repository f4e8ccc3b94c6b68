import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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
    expect(usage.stderr).toContain("required option '--preds <file>' not specified");
    expect(usage.stderr).not.toMatch(/\n\s+at /);
  });
});
