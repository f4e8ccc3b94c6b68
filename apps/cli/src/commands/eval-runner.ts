import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildCaptionReport,
  buildVqaReport,
  renderReportMarkdown,
  type CaptionSample,
  type EvalRecord,
  type EvalReport,
  type VqaSample,
} from '@rsmoe/eval';
import { forEachConcurrently, JsonLinesAppender, readJsonLines } from './eval-results-file';
import { GatewayRequestError } from './gateway-access';
import type { GatewayAnswer } from './gateway-client';

/** The gateway calls the runner needs (GatewayClient in production, a fake in tests). */
export interface EvalGateway {
  caption(image: Uint8Array, filename: string): Promise<GatewayAnswer>;
  vqa(image: Uint8Array, filename: string, question: string): Promise<GatewayAnswer>;
}

export interface EvalRunOptions {
  task: 'caption' | 'vqa';
  /** Shown in the report, e.g. `karpathy:/data/dataset_rsicd.json`. */
  datasetLabel: string;
  captions: readonly CaptionSample[];
  vqa: readonly VqaSample[];
  imagesDir: string;
  outDir: string;
  concurrency: number;
  gateway: EvalGateway;
  /** Reads an image; injectable for tests. Default: the file under imagesDir. */
  readImage?: (path: string) => Promise<Uint8Array>;
  /** Called after each finished sample (progress). */
  onResult?: (record: EvalRecord) => void;
  /** Called once with the number of samples to run and the number skipped as already done. */
  onStart?: (toRun: number, skipped: number) => void;
  now?: () => number;
}

/** Output files of a run, inside `outDir`. */
export const RESULTS_FILE = 'results.jsonl';
export const REPORT_JSON = 'report.json';
export const REPORT_MD = 'report.md';

/** Reads the results file; the last record of an id wins, so a retried failure replaces the old row. */
export function readResults(file: string): Promise<Map<string, EvalRecord>> {
  return readJsonLines<EvalRecord>(file, (record) => (typeof record.id === 'string' ? record.id : undefined));
}

/**
 * Sends every sample through the gateway with at most `concurrency` requests in flight, appending one JSONL
 * record per sample as it finishes. Samples already recorded as `ok` are skipped (resume); failed ones are
 * retried. Writes report.json and report.md over all recorded samples of this dataset.
 */
export async function runEvaluation(options: EvalRunOptions): Promise<EvalReport> {
  await mkdir(options.outDir, { recursive: true });
  const resultsFile = join(options.outDir, RESULTS_FILE);
  const previous = await readResults(resultsFile);
  const samples: ReadonlyArray<CaptionSample | VqaSample> = options.task === 'caption' ? options.captions : options.vqa;
  const todo = samples.filter((s) => previous.get(s.id)?.status !== 'ok');
  options.onStart?.(todo.length, samples.length - todo.length);

  const readImage = options.readImage ?? ((p: string) => readFile(join(options.imagesDir, p)).then((b) => new Uint8Array(b)));
  const now = options.now ?? (() => performance.now());
  const results = new Map(previous);
  const log = new JsonLinesAppender(resultsFile);

  const runOne = async (sample: CaptionSample | VqaSample): Promise<EvalRecord> => {
    let image: Uint8Array;
    try {
      image = await readImage(sample.image);
    } catch (error) {
      return { id: sample.id, status: 'failed', clientMs: 0, error: { code: 'image_unreadable', message: (error as Error).message } };
    }
    const started = now();
    try {
      const filename = sample.image.split('/').pop() ?? sample.image;
      const answer = 'question' in sample ? await options.gateway.vqa(image, filename, sample.question) : await options.gateway.caption(image, filename);
      return {
        id: sample.id,
        status: 'ok',
        output: answer.text,
        clientMs: now() - started,
        serverMs: answer.totalMs,
        degraded: answer.degraded,
        requestId: answer.requestId,
      };
    } catch (error) {
      const e = error instanceof GatewayRequestError ? error : new GatewayRequestError(0, 'client_error', (error as Error).message);
      return {
        id: sample.id,
        status: 'failed',
        clientMs: now() - started,
        requestId: e.requestId,
        error: { code: e.errorCode, message: e.message, httpStatus: e.httpStatus },
      };
    }
  };

  await forEachConcurrently(todo, options.concurrency, async (sample) => {
    const record = await runOne(sample);
    results.set(record.id, record);
    await log.append(record);
    options.onResult?.(record);
  });

  const records = samples.flatMap((s) => {
    const r = results.get(s.id);
    return r ? [r] : [];
  });
  const report =
    options.task === 'caption'
      ? buildCaptionReport(options.datasetLabel, options.captions, records)
      : buildVqaReport(options.datasetLabel, options.vqa, records);
  await writeFile(join(options.outDir, REPORT_JSON), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(options.outDir, REPORT_MD), renderReportMarkdown(report));
  return report;
}
