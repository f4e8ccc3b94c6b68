import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { summarizeLatencies, type LatencySummary } from '@rsmoe/eval';
import { forEachConcurrently, JsonLinesAppender, readJsonLines } from './eval-results-file';
import { GatewayRequestError } from './gateway-access';
import type { GatewayTaskClient, ImageUpload, TaskAnswerView, TaskReply } from './task-client';
import { EVAL_TASKS, type EvalItem, type EvalPlan, type EvalTask, type MaskAnswerFile, type TaskEvalRecord } from './task-eval-items';
import {
  assertDistinctMaskNames,
  keepMaskAnswer,
  maskAnswerExists,
  scoreCommand,
  scoreTaskFiles,
  writeTaskFiles,
  type TaskFiles,
} from './task-eval-outputs';

/** The gateway calls the runner makes (GatewayTaskClient). */
export type TaskEvalGateway = Pick<GatewayTaskClient, 'classify' | 'ground' | 'refer' | 'segment' | 'changes'>;

export interface TaskEvalOptions {
  plan: EvalPlan;
  outDir: string;
  /** Requests in flight. */
  concurrency: number;
  gateway: TaskEvalGateway;
  /** Attempts per sample while the gateway answers 429 or 503 or cannot be reached, the first included. Default 3. */
  maxAttempts?: number;
  /** Wait before the first retry, in ms, doubled for each next one. Default 1000. */
  backoffMs?: number;
  /** Called once with the number of samples to run and the number skipped as already answered. */
  onStart?: (toRun: number, alreadyDone: number) => void;
  /** Called after each finished sample (progress). */
  onResult?: (record: TaskEvalRecord) => void;
  now?: () => number;
}

/** One task of a run, over all of its samples (earlier runs' answers included). */
export interface TaskSummary {
  samples: number;
  succeeded: number;
  /** Requests refused or unanswered; each is scored as no prediction. */
  failed: number;
  degraded: number;
  /** Answered without the output asked for (no box, label, caption or mask): scored as no prediction. */
  withoutPrediction: number;
  failures: Array<{ id: string; code: string; message: string; httpStatus?: number }>;
  latency: { clientMs: LatencySummary; serverMs: LatencySummary };
  /** The references and predictions written for `rsmoe score`. */
  files: TaskFiles;
  /** The `rsmoe score` command that prints `metrics` again. */
  score: string;
  /** What `rsmoe score` prints for `files`. */
  metrics: object;
}

/** `report.json` of a task run. */
export interface TaskEvalReport {
  dataset: string;
  /** Samples of the dataset that cannot be run, by reason. */
  skipped: { count: number; reasons: Record<string, number> };
  tasks: Partial<Record<EvalTask, TaskSummary>>;
}

/** Files of a run, inside `outDir`; each task's references and predictions are in `<outDir>/<task>/`. */
export const TASK_RESULTS_FILE = 'results.jsonl';
export const TASK_REPORT_JSON = 'report.json';

const RETRYABLE_STATUSES = new Set([429, 503]);

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

const recordKey = (task: string, id: string) => `${task}\u0000${id}`;

async function readUpload(path: string): Promise<ImageUpload> {
  return { bytes: new Uint8Array(await readFile(path)), filename: basename(path) };
}

/** The image files a sample sends, in request order. */
function imagesOf(item: EvalItem): string[] {
  return item.task === 'change-caption' || item.task === 'change-mask' ? [item.before, item.after] : [item.image];
}

/** The request of one sample, with its images read. */
function send(gateway: TaskEvalGateway, item: EvalItem, [image, after]: ImageUpload[]): Promise<TaskReply> {
  switch (item.task) {
    case 'grounding':
      return gateway.ground(image, item.query);
    case 'classification':
      return gateway.classify(image);
    case 'referring':
      return gateway.refer(image, item.box, 'norm');
    case 'segmentation':
      return gateway.segment(image, item.request);
    case 'change-caption':
    case 'change-mask':
      return gateway.changes(image, after, item.task === 'change-caption' ? 'caption' : 'mask');
  }
}

/** What the results file keeps of an answer (mask answers are written under the task folder). */
async function keep(item: EvalItem, answer: TaskAnswerView, taskDir: string): Promise<TaskEvalRecord['prediction']> {
  switch (item.task) {
    case 'grounding':
      return answer.boxes && answer.boxes.length > 0 ? answer.boxes.map((box) => box.boxPx) : null;
    case 'classification':
      return answer.label?.trim() ? answer.label : null;
    case 'change-caption':
    case 'referring':
      return answer.caption ?? null;
    case 'change-mask':
    case 'segmentation':
      return answer.mask ? keepMaskAnswer(taskDir, item.id, answer.mask) : null;
  }
}

function isMaskAnswer(prediction: TaskEvalRecord['prediction']): prediction is MaskAnswerFile {
  return typeof prediction === 'object' && prediction !== null && !Array.isArray(prediction);
}

/**
 * Sends every item through the gateway's task endpoints with at most `concurrency` requests in flight,
 * appending one record per sample to `results.jsonl` as it finishes. Samples already answered there are
 * skipped (resume); failed ones are asked again. Then writes each task's references and predictions in the
 * forms `rsmoe score` reads, scores them as it does, and writes `report.json`.
 * @throws CliInputError when the dataset cannot be written as `rsmoe score` reads it (two ids, one mask name).
 */
export async function runTaskEvaluation(options: TaskEvalOptions): Promise<TaskEvalReport> {
  const { plan, outDir, gateway } = options;
  assertDistinctMaskNames(plan.items);
  await mkdir(outDir, { recursive: true });
  const resultsFile = join(outDir, TASK_RESULTS_FILE);
  const results = await readJsonLines<TaskEvalRecord>(resultsFile, (record) =>
    typeof record.task === 'string' && typeof record.id === 'string' ? recordKey(record.task, record.id) : undefined,
  );
  const taskDir = (task: EvalTask) => join(outDir, task);

  const todo: EvalItem[] = [];
  for (const item of plan.items) {
    const previous = results.get(recordKey(item.task, item.id));
    const answered = previous?.status === 'ok' && (!isMaskAnswer(previous.prediction) || (await maskAnswerExists(taskDir(item.task), previous.prediction)));
    if (!answered) todo.push(item);
  }
  options.onStart?.(todo.length, plan.items.length - todo.length);

  const now = options.now ?? (() => performance.now());
  const maxAttempts = options.maxAttempts ?? 3;
  const backoffMs = options.backoffMs ?? 1000;
  const log = new JsonLinesAppender(resultsFile);

  const runOne = async (item: EvalItem): Promise<TaskEvalRecord> => {
    const started = now();
    const failed = (code: string, message: string, httpStatus?: number, requestId?: string): TaskEvalRecord => ({
      task: item.task,
      id: item.id,
      status: 'failed',
      clientMs: now() - started,
      ...(requestId !== undefined ? { requestId } : {}),
      error: { code, message, ...(httpStatus !== undefined ? { httpStatus } : {}) },
    });
    let uploads: ImageUpload[];
    try {
      uploads = await Promise.all(imagesOf(item).map(readUpload));
    } catch (error) {
      return failed('image_unreadable', (error as Error).message);
    }
    for (let attempt = 1; ; attempt++) {
      let reply: TaskReply;
      try {
        reply = await send(gateway, item, uploads);
      } catch (error) {
        if (!(error instanceof GatewayRequestError)) return failed('client_error', (error as Error).message);
        const transient = RETRYABLE_STATUSES.has(error.httpStatus) || error.errorCode === 'network_error';
        if (transient && attempt < maxAttempts) {
          await sleep(backoffMs * 2 ** (attempt - 1));
          continue;
        }
        return failed(error.errorCode, error.message, error.httpStatus, error.requestId);
      }
      const { answer } = reply;
      return {
        task: item.task,
        id: item.id,
        status: 'ok',
        prediction: await keep(item, answer, taskDir(item.task)),
        clientMs: now() - started,
        ...(answer.timings?.totalMs !== undefined ? { serverMs: answer.timings.totalMs } : {}),
        degraded: answer.degraded ?? false,
        requestId: answer.requestId,
      };
    }
  };

  await forEachConcurrently(todo, options.concurrency, async (item) => {
    const record = await runOne(item);
    results.set(recordKey(record.task, record.id), record);
    await log.append(record);
    options.onResult?.(record);
  });

  const report: TaskEvalReport = {
    dataset: plan.label,
    skipped: { count: Object.values(plan.skipped).reduce((a, b) => a + b, 0), reasons: plan.skipped },
    tasks: {},
  };
  for (const task of EVAL_TASKS) {
    const items = plan.items.filter((item) => item.task === task);
    if (items.length === 0) continue;
    const records = new Map(items.flatMap((item) => {
      const record = results.get(recordKey(task, item.id));
      return record ? [[item.id, record] as const] : [];
    }));
    const files = await writeTaskFiles(task, items, records, taskDir(task));
    report.tasks[task] = { ...summarize([...records.values()], items.length), files, score: scoreCommand(task, files), metrics: await scoreTaskFiles(task, files) };
  }
  await writeFile(join(outDir, TASK_REPORT_JSON), `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

function summarize(records: readonly TaskEvalRecord[], samples: number): Omit<TaskSummary, 'files' | 'score' | 'metrics'> {
  const ok = records.filter((r) => r.status === 'ok');
  const failed = records.filter((r) => r.status === 'failed');
  return {
    samples,
    succeeded: ok.length,
    failed: failed.length,
    degraded: ok.filter((r) => r.degraded).length,
    withoutPrediction: ok.filter((r) => r.prediction === null || r.prediction === undefined).length,
    failures: failed.map((r) => ({
      id: r.id,
      code: r.error?.code ?? 'unknown',
      message: r.error?.message ?? '',
      ...(r.error?.httpStatus !== undefined ? { httpStatus: r.error.httpStatus } : {}),
    })),
    latency: {
      clientMs: summarizeLatencies(records.map((r) => r.clientMs)),
      serverMs: summarizeLatencies(ok.flatMap((r) => (r.serverMs === undefined ? [] : [r.serverMs]))),
    },
  };
}
