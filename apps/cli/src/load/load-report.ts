import { summarizeLatencies, type LatencySummary } from '@rsmoe/eval';

/** What one request got: HTTP status (0: no answer), time to the whole answer, its error code, degraded or not. */
export interface LoadSample {
  status: number;
  latencyMs: number;
  /** The gateway's `error.code` for a non-2xx answer; `network_error` or `client_timeout` when none came. */
  errorCode?: string;
  /** `degraded: true` in a 200 answer (an expert missing). */
  degraded?: boolean;
}

export interface LoadSummary {
  /** Requests sent (answered or not). */
  sent: number;
  elapsedS: number;
  /** Answers (any status) per second. */
  throughput: number;
  /** 200 answers per second. */
  okPerSecond: number;
  /** Latency of every answered request, ms. */
  latencyMs: LatencySummary;
  /** Latency of 200 answers only, ms. */
  okLatencyMs: LatencySummary;
  /** The slowest answer, ms (null when none came): a few requests stuck until their deadline hide above p99. */
  maxLatencyMs: number | null;
  /** Answers per HTTP status (`0`: none came). */
  byStatus: Record<string, number>;
  /** Failed requests per error code. */
  byErrorCode: Record<string, number>;
  /** 200 answers marked degraded. */
  degraded: number;
}

function count(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of [...keys].sort()) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

/** The numbers of one run: throughput, latency percentiles (nearest rank) and the status mix. */
export function summariseLoad(samples: readonly LoadSample[], elapsedMs: number): LoadSummary {
  const elapsedS = Math.max(elapsedMs, 1) / 1000;
  const answered = samples.filter((sample) => sample.status > 0);
  const ok = samples.filter((sample) => sample.status === 200);
  return {
    sent: samples.length,
    elapsedS,
    throughput: answered.length / elapsedS,
    okPerSecond: ok.length / elapsedS,
    latencyMs: summarizeLatencies(answered.map((sample) => sample.latencyMs)),
    okLatencyMs: summarizeLatencies(ok.map((sample) => sample.latencyMs)),
    maxLatencyMs: answered.length === 0 ? null : Math.max(...answered.map((sample) => sample.latencyMs)),
    byStatus: count(samples.map((sample) => String(sample.status))),
    byErrorCode: count(samples.flatMap((sample) => (sample.errorCode ? [sample.errorCode] : []))),
    degraded: ok.filter((sample) => sample.degraded).length,
  };
}

const ms = (value: number | null) => (value === null ? '-' : value.toFixed(1));
const mix = (counts: Record<string, number>) =>
  Object.keys(counts).length === 0 ? 'none' : Object.entries(counts).map(([key, n]) => `${key} × ${n}`).join(', ');

/** The report `rsmoe load` prints. */
export function formatLoadReport(summary: LoadSummary, heading: string): string {
  const latency = (label: string, l: LatencySummary) => `${label} p50 ${ms(l.p50)}  p95 ${ms(l.p95)}  p99 ${ms(l.p99)}  mean ${ms(l.mean)}  (n=${l.count})`;
  return [
    heading,
    `sent ${summary.sent} in ${summary.elapsedS.toFixed(1)} s: ${summary.throughput.toFixed(2)} answers/s, ${summary.okPerSecond.toFixed(2)} ok/s`,
    `${latency('latency ms, all answers:', summary.latencyMs)}  max ${ms(summary.maxLatencyMs)}`,
    latency('latency ms, 200 only:   ', summary.okLatencyMs),
    `status: ${mix(summary.byStatus)}`,
    `errors: ${mix(summary.byErrorCode)}`,
    `degraded: ${summary.degraded} of ${summary.byStatus['200'] ?? 0} ok`,
    '',
  ].join('\n');
}
