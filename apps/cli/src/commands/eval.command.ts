import { basename } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DATASET_FORMATS, loadDataset, parseDatasetSpec } from '@rsmoe/eval';
import { CliInputError, withInputErrors } from './cli-input';
import { runEvaluation } from './eval-runner';
import { accessOf, addGatewayOptions, checkGatewayAccess, type GatewayDefaults } from './gateway-access';
import { GatewayClient } from './gateway-client';
import { ProgressLine } from './progress-line';
import { GatewayTaskClient } from './task-client';
import { isTaskDatasetFormat, readTaskDataset, TASK_DATASET_FORMATS, type TaskDatasetFormat } from './task-eval-datasets';
import { EVAL_TASKS, type EvalTask } from './task-eval-items';
import { runTaskEvaluation, TASK_RESULTS_FILE } from './task-eval-runner';

const CAPTION_TASKS = ['caption', 'vqa'] as const;

interface EvalFlags {
  dataset: string;
  root?: string;
  images?: string;
  url: string;
  apiKey?: string;
  task?: (typeof CAPTION_TASKS)[number] | EvalTask;
  concurrency: number;
  timeoutMs?: number;
  limit?: number;
  split?: string;
  out?: string;
}

/** Client-side limit per request of the task datasets: above the gateway's 300 s default deadline for masks. */
const DEFAULT_TASK_TIMEOUT_MS = 360_000;

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

/** Keeps the first failed sample of a run, so that stderr says once why samples failed (a refused key, say). */
class FirstFailure {
  private first: { id: string; code: string; message: string } | undefined;

  note(record: { id: string; status: string; error?: { code: string; message: string } }): void {
    if (this.first === undefined && record.status === 'failed' && record.error) this.first = { id: record.id, ...record.error };
  }

  report(): void {
    if (this.first) process.stderr.write(`eval: first failure (sample ${this.first.id}): [${this.first.code}] ${this.first.message}\n`);
  }
}

/** `<format>` or `<format>:<path>` of a task dataset; undefined for the caption and VQA formats. */
function taskDatasetSpec(spec: string): { format: TaskDatasetFormat; path?: string } | undefined {
  const colon = spec.indexOf(':');
  const format = colon < 0 ? spec : spec.slice(0, colon);
  if (!isTaskDatasetFormat(format)) return undefined;
  return colon < 0 ? { format } : { format, path: spec.slice(colon + 1) };
}

/**
 * `rsmoe eval`: sends a dataset through a running gateway, resumably (results.jsonl in the output directory).
 * Caption and VQA datasets: writes report.json and report.md; stdout gets the report path. Task datasets
 * (grounding, classification, change captions and masks, segmentation, referring): writes each task's
 * references and predictions in the forms `rsmoe score` reads, and report.json; stdout gets the metrics as
 * `rsmoe score` prints them (rsunivlm without --task: keyed by task). Progress goes to stderr.
 */
export function registerEvalCommand(program: Command, gateway: GatewayDefaults = {}): void {
  const command = program
    .command('eval')
    .description('run a dataset through the gateway and report caption metrics, VQA accuracy or task metrics, with latency')
    .requiredOption(
      '--dataset <format[:path]>',
      `${DATASET_FORMATS.join('|')} then ":" and the file (rsvqa: the split prefix; rsmoe synth writes karpathy + rsvqa files), or ${TASK_DATASET_FORMATS.join('|')} with --root`,
    )
    .option('--root <path>', 'task datasets: dior-rsvg, class-folder, levir-cd (or one split folder): the dataset folder; levir-cc: its folder or LevirCCcaptions.json; rsunivlm: the evaluation list')
    .option('--images <dir>', 'directory holding the images (required for caption and VQA datasets; task datasets have a default)')
    .addOption(new Option('--task <task>', 'caption or vqa (default: what the dataset has, captions first); a task dataset\'s task (rsunivlm: only that task)').choices([...CAPTION_TASKS, ...EVAL_TASKS]))
    .option('--concurrency <n>', 'requests in flight', positiveInteger, 4)
    .option('--timeout-ms <ms>', `client-side limit per request (default: 120000 for captions and VQA, ${DEFAULT_TASK_TIMEOUT_MS} for tasks)`, positiveInteger)
    .option('--limit <n>', 'only the first n samples', positiveInteger)
    .option('--split <name>', 'only samples of this split, or "all" (default: "test" when the dataset has one)')
    .option('--out <dir>', 'output directory (default: eval-<dataset>-<task>)');
  addGatewayOptions(command, gateway);
  command.action(
    withInputErrors(command, async (flags: EvalFlags) => {
      const taskSpec = taskDatasetSpec(flags.dataset);
      if (taskSpec) await evaluateTasks(flags, taskSpec);
      else await evaluateCaptionsOrVqa(flags);
    }),
  );
}

async function evaluateCaptionsOrVqa(flags: EvalFlags): Promise<void> {
  const { format, path } = parseDatasetSpec(flags.dataset);
  if (flags.root !== undefined) throw new CliInputError(`--root is for ${TASK_DATASET_FORMATS.join(', ')}; ${format} takes its file in --dataset ${format}:<path>`);
  if (flags.images === undefined) throw new CliInputError(`--dataset ${format} needs --images <dir>`);
  const imagesDir = flags.images;
  if (flags.task !== undefined && flags.task !== 'caption' && flags.task !== 'vqa') {
    throw new CliInputError(`--task ${flags.task} needs a task dataset (${TASK_DATASET_FORMATS.join(', ')}), not ${format}`);
  }
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
  await checkGatewayAccess(accessOf(flags));
  let progress: ProgressLine | undefined;
  const failures = new FirstFailure();
  const report = await runEvaluation({
    task,
    datasetLabel: flags.dataset,
    captions: dataset.captions.filter((s) => chosen.has(s)),
    vqa: dataset.vqa.filter((s) => chosen.has(s)),
    imagesDir,
    outDir,
    concurrency: flags.concurrency,
    gateway: new GatewayClient({ ...accessOf(flags), ...(flags.timeoutMs !== undefined ? { timeoutMs: flags.timeoutMs } : {}) }),
    onStart: (toRun, skipped) => {
      progress = new ProgressLine(toRun);
      progress.start(skipped);
    },
    onResult: (record) => {
      failures.note(record);
      progress?.tick(record.status === 'ok');
    },
  });
  progress?.finish();
  failures.report();
  process.stderr.write(`eval: ${report.succeeded} ok, ${report.failed} failed; report in ${outDir}\n`);
  process.stdout.write(`${outDir}/report.json\n`);
}

async function evaluateTasks(flags: EvalFlags, spec: { format: TaskDatasetFormat; path?: string }): Promise<void> {
  const { format } = spec;
  if (spec.path !== undefined && flags.root !== undefined) throw new CliInputError(`give the dataset's path once: --dataset ${format}:<path> or --root <path>`);
  const root = spec.path ?? flags.root;
  if (root === undefined || root === '') throw new CliInputError(`--dataset ${format} needs --root <path>`);
  if (flags.task === 'caption' || flags.task === 'vqa') throw new CliInputError(`--task ${flags.task} needs a caption or VQA dataset (${DATASET_FORMATS.join(', ')})`);
  const task = flags.task;

  const plan = await readTaskDataset({ format, root, images: flags.images, split: flags.split, task, limit: flags.limit });
  const skipped = Object.entries(plan.skipped);
  if (skipped.length > 0) {
    const count = skipped.reduce((sum, [, n]) => sum + n, 0);
    process.stderr.write(`eval: ${count} sample(s) skipped: ${skipped.map(([reason, n]) => `${n} × ${reason}`).join('; ')}\n`);
  }
  if (plan.items.length === 0) throw new CliInputError(`${plan.label} has no samples to run${task ? ` for --task ${task}` : ''}`);

  const outDir = flags.out ?? `eval-${format}-${task ?? (format === 'rsunivlm' ? 'tasks' : plan.items[0].task)}`;
  await checkGatewayAccess(accessOf(flags));
  let progress: ProgressLine | undefined;
  const failures = new FirstFailure();
  const report = await runTaskEvaluation({
    plan,
    outDir,
    concurrency: flags.concurrency,
    gateway: new GatewayTaskClient({ ...accessOf(flags), timeoutMs: flags.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS }),
    onStart: (toRun, alreadyDone) => {
      progress = new ProgressLine(toRun);
      progress.start(alreadyDone);
    },
    onResult: (record) => {
      failures.note(record);
      progress?.tick(record.status === 'ok');
    },
  });
  progress?.finish();
  failures.report();
  const summaries = Object.entries(report.tasks);
  for (const [name, summary] of summaries) {
    process.stderr.write(`eval: ${name}: ${summary.succeeded} ok, ${summary.failed} failed, ${summary.withoutPrediction} without prediction; ${summary.score}\n`);
  }
  process.stderr.write(`eval: report in ${outDir}/report.json, answers in ${outDir}/${TASK_RESULTS_FILE}\n`);
  const metrics = format === 'rsunivlm' && task === undefined ? Object.fromEntries(summaries.map(([name, summary]) => [name, summary.metrics])) : summaries[0][1].metrics;
  process.stdout.write(`${JSON.stringify(metrics)}\n`);
}
