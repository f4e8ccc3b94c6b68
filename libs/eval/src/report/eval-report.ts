import type { CaptionSample, VqaSample } from '../adapters/dataset';
import { evaluateCaptions, type CaptionScores } from '../metrics/coco-caption.service';
import { rsvqaAccuracy, type RsvqaAccuracy } from '../metrics/vqa-accuracy.metric';
import { summarizeLatencies, type LatencySummary } from './latency';

/** One line of a run's results file (JSONL): the outcome of one sample through the gateway. */
export interface EvalRecord {
  id: string;
  status: 'ok' | 'failed';
  /** Caption or answer text; absent when failed. */
  output?: string;
  /** Wall time seen by the client, in milliseconds. */
  clientMs: number;
  /** The gateway's `timings.totalMs`, when it answered. */
  serverMs?: number;
  degraded?: boolean;
  requestId?: string;
  /** Error code and message of a failed request. */
  error?: { code: string; message: string; httpStatus?: number };
}

interface ReportBase {
  dataset: string;
  samples: number;
  succeeded: number;
  failed: number;
  degraded: number;
  failures: Array<{ id: string; code: string; message: string }>;
  latency: { clientMs: LatencySummary; serverMs: LatencySummary };
}

/** Report of a captioning run: metrics over successful samples, per-category breakdown. */
export interface CaptionReport extends ReportBase {
  task: 'caption';
  metrics: CaptionScores | null;
  perCategory: Record<string, { samples: number; metrics: CaptionScores }>;
}

/** Report of a VQA run: RSVQA accuracies over successful samples. */
export interface VqaReport extends ReportBase {
  task: 'vqa';
  accuracy: RsvqaAccuracy | null;
}

export type EvalReport = CaptionReport | VqaReport;

function base(dataset: string, total: number, records: readonly EvalRecord[]): ReportBase {
  const ok = records.filter((r) => r.status === 'ok');
  const failed = records.filter((r) => r.status === 'failed');
  return {
    dataset,
    samples: total,
    succeeded: ok.length,
    failed: failed.length,
    degraded: ok.filter((r) => r.degraded).length,
    failures: failed.map((r) => ({ id: r.id, code: r.error?.code ?? 'unknown', message: r.error?.message ?? '' })),
    latency: {
      clientMs: summarizeLatencies(records.map((r) => r.clientMs)),
      serverMs: summarizeLatencies(ok.flatMap((r) => (r.serverMs === undefined ? [] : [r.serverMs]))),
    },
  };
}

/**
 * Caption report. Metrics cover the successful samples only (failures are listed, not scored as empty);
 * CIDEr's document frequencies come from those samples' references. A category needs two or more samples for
 * a meaningful CIDEr.
 */
export function buildCaptionReport(dataset: string, samples: readonly CaptionSample[], records: readonly EvalRecord[]): CaptionReport {
  const byId = new Map(records.map((r) => [r.id, r]));
  const scored = samples.filter((s) => byId.get(s.id)?.status === 'ok');
  const score = (list: readonly CaptionSample[]) =>
    evaluateCaptions(
      Object.fromEntries(list.map((s) => [s.id, s.references])),
      Object.fromEntries(list.map((s) => [s.id, byId.get(s.id)?.output ?? ''])),
    ).scores;
  const perCategory: CaptionReport['perCategory'] = {};
  const categories = [...new Set(scored.flatMap((s) => (s.category ? [s.category] : [])))].sort();
  for (const category of categories) {
    const list = scored.filter((s) => s.category === category);
    perCategory[category] = { samples: list.length, metrics: score(list) };
  }
  return { task: 'caption', ...base(dataset, samples.length, records), metrics: scored.length > 0 ? score(scored) : null, perCategory };
}

/** VQA report: per question type accuracy, average accuracy and overall accuracy (RSVQA style). */
export function buildVqaReport(dataset: string, samples: readonly VqaSample[], records: readonly EvalRecord[]): VqaReport {
  const byId = new Map(records.map((r) => [r.id, r]));
  const items = samples.flatMap((s) => {
    const r = byId.get(s.id);
    return r?.status === 'ok' ? [{ type: s.type, answer: s.answers[0], prediction: r.output ?? '' }] : [];
  });
  return { task: 'vqa', ...base(dataset, samples.length, records), accuracy: items.length > 0 ? rsvqaAccuracy(items) : null };
}

const fmt = (x: number | null | undefined, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits));
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : (100 * x).toFixed(2));
const METRIC_KEYS: Array<keyof CaptionScores> = ['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr'];

/** The report as Markdown: metric table (×100 as in papers), breakdown, latency, failures. */
export function renderReportMarkdown(report: EvalReport): string {
  const lines: string[] = [`# Evaluation report: ${report.dataset}`, ''];
  lines.push(`Task: ${report.task}. Samples: ${report.samples}, succeeded: ${report.succeeded}, failed: ${report.failed}, degraded: ${report.degraded}.`, '');
  if (report.task === 'caption') {
    lines.push('## Metrics (×100)', '', `| ${METRIC_KEYS.join(' | ')} |`, `|${METRIC_KEYS.map(() => '---:').join('|')}|`);
    lines.push(`| ${METRIC_KEYS.map((k) => pct(report.metrics?.[k] ?? null)).join(' | ')} |`, '');
    const cats = Object.entries(report.perCategory);
    if (cats.length > 0) {
      lines.push('## Per class (×100)', '', `| class | n | ${METRIC_KEYS.join(' | ')} |`, `|---|---:|${METRIC_KEYS.map(() => '---:').join('|')}|`);
      for (const [name, c] of cats) lines.push(`| ${name} | ${c.samples} | ${METRIC_KEYS.map((k) => pct(c.metrics[k])).join(' | ')} |`);
      lines.push('');
    }
  } else {
    const acc = report.accuracy;
    lines.push('## Accuracy (%)', '', '| question type | correct | total | accuracy |', '|---|---:|---:|---:|');
    for (const [type, t] of Object.entries(acc?.perType ?? {})) lines.push(`| ${type} | ${t.correct} | ${t.total} | ${pct(t.accuracy)} |`);
    lines.push(`| **average accuracy** | | | ${pct(acc?.averageAccuracy ?? null)} |`, `| **overall accuracy** | ${acc?.correct ?? 0} | ${acc?.total ?? 0} | ${pct(acc?.overallAccuracy ?? null)} |`, '');
  }
  lines.push('## Latency (ms)', '', '| measure | n | p50 | p90 | p95 | p99 | mean |', '|---|---:|---:|---:|---:|---:|---:|');
  for (const [name, s] of [['client wall time', report.latency.clientMs], ['server timings.totalMs', report.latency.serverMs]] as const) {
    lines.push(`| ${name} | ${s.count} | ${fmt(s.p50, 1)} | ${fmt(s.p90, 1)} | ${fmt(s.p95, 1)} | ${fmt(s.p99, 1)} | ${fmt(s.mean, 1)} |`);
  }
  lines.push('');
  if (report.failures.length > 0) {
    lines.push('## Failures', '', '| id | code | message |', '|---|---|---|');
    for (const f of report.failures) lines.push(`| ${f.id} | ${f.code} | ${f.message.replace(/\|/g, '\\|')} |`);
    lines.push('');
  }
  return lines.join('\n');
}
