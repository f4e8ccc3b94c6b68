import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { SPLIT_NAMES, SYNTH_FILES, writeSyntheticDataset } from '@rsmoe/synth';
import { CliInputError, withInputErrors } from './cli-input';
import { ProgressLine } from './progress-line';

interface SynthFlags {
  out: string;
  count: string;
  seed: string;
  size: string;
  concurrency: string;
  force?: boolean;
}

/** An integer flag in [min, max]; anything else (`12abc`, `1.5`, `-3`, `1e400`) is a CliInputError. */
export function parseIntegerFlag(name: string, value: string, min: number, max: number): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new CliInputError(`--${name} must be an integer in [${min}, ${max}], got "${value}"`);
  }
  return n;
}

/** Lists a directory; a missing one is empty, a file in its place is an input error. */
async function entriesOf(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'ENOTDIR') throw new CliInputError(`--out ${dir} is not a directory`);
    throw new CliInputError(`--out ${dir}: ${(error as Error).message}`);
  }
}

/** With --force: removes only what a previous `rsmoe synth` wrote, never anything else in the directory. */
async function removePreviousOutput(dir: string): Promise<void> {
  const ours = (name: string) =>
    name === SYNTH_FILES.images ||
    name === SYNTH_FILES.changePairs ||
    name === SYNTH_FILES.karpathy ||
    name === SYNTH_FILES.sceneGraphs ||
    /^synth_(split_(train|val|test)_)?(questions|answers|images)\.json$/.test(name);
  for (const name of (await entriesOf(dir)).filter(ours)) await rm(join(dir, name), { recursive: true, force: true });
}

/**
 * `rsmoe synth`: writes a synthetic dataset (PNG images, Karpathy captions, RSVQA files, scene graphs,
 * change pairs). Progress on stderr; a JSON summary on stdout.
 */
export function registerSynthCommand(program: Command): void {
  const command = program
    .command('synth')
    .description('write a synthetic aerial-scene dataset (images, captions, VQA, scene graphs, change pairs)')
    .requiredOption('--out <dir>', 'output directory (must be empty or absent unless --force)')
    .requiredOption('--count <n>', 'number of images')
    .option('--seed <s>', 'dataset seed, an integer in [0, 4294967295]', '0')
    .option('--size <px>', 'image width and height in pixels', '128')
    .option('--concurrency <n>', 'images in flight at once', '16')
    .option('--force', 'write into a non-empty directory (replacing the files of an earlier run)');
  command.action(
    withInputErrors(command, async (flags: SynthFlags) => {
      const count = parseIntegerFlag('count', flags.count, 1, 10_000_000);
      const seed = parseIntegerFlag('seed', flags.seed, 0, 0xffffffff);
      const size = parseIntegerFlag('size', flags.size, 32, 4096);
      const concurrency = parseIntegerFlag('concurrency', flags.concurrency, 1, 1024);
      const outDir = resolve(flags.out);
      const existing = await entriesOf(outDir);
      if (existing.length > 0) {
        if (!flags.force) throw new CliInputError(`--out ${outDir} is not empty (${existing.length} entries); use --force to write into it`);
        await removePreviousOutput(outDir);
      }
      const started = process.hrtime.bigint();
      const progress = new ProgressLine(count, process.stderr, 'synth');
      progress.start(0);
      const summary = await writeSyntheticDataset({ outDir, count, seed, size, concurrency, onProgress: () => progress.tick(true) });
      progress.finish();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const output = {
        outDir: summary.outDir,
        images: summary.count,
        seed: summary.seed,
        size: summary.size,
        splits: Object.fromEntries(SPLIT_NAMES.map((s) => [s, summary.perSplit[s]])),
        classes: summary.perClass,
        questions: summary.questions,
        changePairs: summary.changePairs,
        seconds: Math.round(seconds * 100) / 100,
        imagesPerSecond: Math.round((summary.count / seconds) * 10) / 10,
      };
      process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
    }),
  );
}
