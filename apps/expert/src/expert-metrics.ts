import type { ExpertJobResult, Task } from '@rsmoe/contracts';
import { msToSeconds, type ServiceMetrics } from '@rsmoe/observability';

/** The labels of every series of one expert process. */
export type ExpertMetricLabels = {
  expert: string;
  model: string;
  version: string;
};

/** Records an expert's jobs in the catalogue metrics (rsmoe_expert_*). */
export class ExpertMetrics {
  private readonly requestDuration;
  private readonly queueWait;
  private readonly compute;
  private readonly timeToFirstToken;
  private readonly batchSize;
  private readonly jobs;
  private readonly tokens;
  private readonly inflight;
  private readonly featureCache;

  constructor(
    metrics: ServiceMetrics,
    private readonly labels: ExpertMetricLabels,
  ) {
    this.requestDuration = metrics.get('expertRequestDuration');
    this.queueWait = metrics.get('expertQueueWait');
    this.compute = metrics.get('expertCompute');
    this.timeToFirstToken = metrics.get('expertTimeToFirstToken');
    this.batchSize = metrics.get('expertBatchSize');
    this.jobs = metrics.get('expertJobs');
    this.tokens = metrics.get('expertTokens');
    this.inflight = metrics.get('expertInflight');
    this.featureCache = metrics.get('expertFeatureCache');
    // Series exist from the start, so dashboards and rate() see zeros rather than gaps.
    this.inflight.set(labels, 0);
    for (const status of ['ok', 'error', 'timed_out']) this.jobs.inc({ ...labels, status }, 0);
    this.tokens.inc(labels, 0);
  }

  jobStarted(): void {
    this.inflight.inc(this.labels);
  }

  jobSettled(): void {
    this.inflight.dec(this.labels);
  }

  /** A job of `task` that produced an output (ok, or timed_out when dropped past its deadline). */
  output(output: ExpertJobResult, task: Task): void {
    const { timings } = output;
    this.jobs.inc({ ...this.labels, status: output.status });
    this.queueWait.observe(this.labels, msToSeconds(timings.queueMs));
    if (output.status !== 'ok') return;
    this.requestDuration.observe({ ...this.labels, task }, msToSeconds(timings.queueMs + timings.computeMs));
    this.featureCache.inc({ ...this.labels, result: output.featuresCached ? 'hit' : 'miss' });
    if (!output.featuresCached) this.compute.observe({ ...this.labels, phase: 'vision_encode' }, msToSeconds(timings.visionEncodeMs));
    this.compute.observe({ ...this.labels, phase: 'prefill' }, msToSeconds(timings.prefillMs));
    this.compute.observe({ ...this.labels, phase: 'decode' }, msToSeconds(timings.decodeMs));
    this.timeToFirstToken.observe(this.labels, msToSeconds(timings.timeToFirstTokenMs));
    this.tokens.inc(this.labels, output.generatedTokens);
  }

  /** A job whose handler threw (it is retried or failed by BullMQ). */
  error(): void {
    this.jobs.inc({ ...this.labels, status: 'error' });
  }

  batch(size: number): void {
    this.batchSize.observe(this.labels, size);
  }
}
