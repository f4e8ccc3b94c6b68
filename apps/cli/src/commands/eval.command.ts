import { basename } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadDataset, parseDatasetSpec } from '@rsmoe/eval';
import { CliInputError, withInputErrors } from './cli-input';
import { runEvaluation } from './eval-runner';
import { GatewayClient } from './gateway-client';
import { ProgressLine } from './progress-line';

interface EvalFlags {
  dataset: string;
  images: string;
  url: string;
  task?: 'caption' | 'vqa';
  concurrency: number;
  limit?: number;
  split?: string;
  out?: string;
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

/**
 * `rsmoe eval`: sends a dataset through a running gateway and writes results.jsonl (resumable), report.json
 * and report.md into the output directory. Progress goes to stderr; stdout gets the report path.
 */
export function registerEvalCommand(program: Command): void {
  const command = program
    .command('eval')
    .description('run a dataset through the gateway and report caption metrics or VQA accuracy, with latency')
    .requiredOption('--dataset <format:path>', 'karpathy|nwpu|rsicap|rsieval|rsvqa (rsmoe synth writes karpathy + rsvqa files), then ":" and the file (rsvqa: the split prefix)')
    .requiredOption('--images <dir>', 'directory holding the dataset images')
    .option('--url <gateway>', 'gateway base URL', 'http://127.0.0.1:8080')
    .addOption(new Option('--task <task>', 'caption or vqa (default: what the dataset has, captions first)').choices(['caption', 'vqa']))
    .option('--concurrency <n>', 'requests in flight', positiveInteger, 4)
    .option('--limit <n>', 'only the first n samples', positiveInteger)
    .option('--split <name>', 'only samples of this split, or "all" (default: "test" when the dataset has one)')
    .option('--out <dir>', 'output directory (default: eval-<dataset file>-<task>)');
  command.action(
    withInputErrors(command, async (flags: EvalFlags) => {
      const { format, path } = parseDatasetSpec(flags.dataset);
      const dataset = await loadDataset(format, path);
      const task = flags.task ?? (dataset.captions.length > 0 ? 'caption' : 'vqa');
      let samples: Array<{ split?: string }> = task === 'caption' ? dataset.captions : dataset.vqa;
      if (samples.length === 0) throw new CliInputError(`dataset ${flags.dataset} has no ${task} samples`);
      const split = flags.split === 'all' ? undefined : (flags.split ?? (samples.some((s) => s.split === 'test') ? 'test' : undefined));
      if (split !== undefined) samples = samples.filter((s) => s.split === split);
      if (samples.length === 0) throw new CliInputError(`dataset ${flags.dataset} has no ${task} samples in split "${split}"`);
      if (flags.limit !== undefined) samples = samples.slice(0, flags.limit);
      const chosen = new Set(samples);

      const outDir = flags.out ?? `eval-${basename(path).replace(/\.json$/, '')}-${task}`;
      let progress: ProgressLine | undefined;
      const report = await runEvaluation({
        task,
        datasetLabel: flags.dataset,
        captions: dataset.captions.filter((s) => chosen.has(s)),
        vqa: dataset.vqa.filter((s) => chosen.has(s)),
        imagesDir: flags.images,
        outDir,
        concurrency: flags.concurrency,
        gateway: new GatewayClient({ url: flags.url }),
        onStart: (toRun, skipped) => {
          progress = new ProgressLine(toRun);
          progress.start(skipped);
        },
        onResult: (record) => progress?.tick(record.status === 'ok'),
      });
      progress?.finish();
      process.stderr.write(`eval: ${report.succeeded} ok, ${report.failed} failed; report in ${outDir}\n`);
      process.stdout.write(`${outDir}/report.json\n`);
    }),
  );
}
