import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './cli-test-harness';

/** Runs the real entry point, `node bin/rsmoe.cjs synth ...`. */
function synth(args: string[]) {
  const run = spawnSync(process.execPath, ['bin/rsmoe.cjs', 'synth', ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const root = mkdtempSync(join(tmpdir(), 'rsmoe-synth-cli-'));

describe('rsmoe synth', () => {
  it('writes a dataset, progress on stderr and a JSON summary on stdout', () => {
    const out = join(root, 'ds');
    const run = synth(['--out', out, '--count', '25', '--seed', '5', '--size', '64']);
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout) as {
      images: number;
      seed: number;
      size: number;
      splits: Record<string, number>;
      classes: Record<string, number>;
      changePairs: number;
      seconds: number;
    };
    expect(summary).toMatchObject({ images: 25, seed: 5, size: 64, splits: { train: 19, val: 3, test: 3 }, changePairs: 2 });
    expect(Object.values(summary.classes).reduce((a, b) => a + b, 0)).toBe(25);
    expect(summary.seconds).toBeGreaterThan(0);
    expect(run.stderr).toMatch(/^synth: 25 to run\n/);
    expect(run.stderr).toMatch(/synth 25\/25 \(100%\)\n$/);
    expect(readdirSync(join(out, 'images'))).toHaveLength(25);
    for (const f of ['dataset_synth.json', 'synth_questions.json', 'synth_answers.json', 'synth_images.json', 'scene_graphs.jsonl']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
  });

  it('refuses a non-empty directory unless --force, and --force keeps files it did not write', () => {
    const out = join(root, 'busy');
    expect(synth(['--out', out, '--count', '3']).code).toBe(0);
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const refused = synth(['--out', out, '--count', '2']);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/^synth: --out .*busy is not empty .*--force/);
    const forced = synth(['--out', out, '--count', '2', '--force']);
    expect(forced.code).toBe(0);
    expect(readdirSync(join(out, 'images')).sort()).toEqual(['0.png', '1.png']);
    expect(existsSync(join(out, 'notes.txt'))).toBe(true);
  });

  it.each([
    [['--count', '0'], /--count must be an integer in \[1, /],
    [['--count', '12abc'], /--count must be an integer/],
    [['--count', '5', '--seed', '-1'], /--seed must be an integer in \[0, 4294967295\]/],
    [['--count', '5', '--seed', '1.5'], /--seed must be an integer/],
    [['--count', '5', '--size', '16'], /--size must be an integer in \[32, 4096\]/],
  ])('rejects %j with exit code 2 and one line', (args, message) => {
    const out = join(root, `bad-${args.join('')}`);
    const run = synth(['--out', out, ...args]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  it('exits with 2 on a missing required option', () => {
    const run = synth(['--count', '5']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--out/);
  });
});
