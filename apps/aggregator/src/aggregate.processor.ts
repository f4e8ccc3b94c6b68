import { expertIdOfQueue, parseExpertJobResult, type AggregateJobData, type InferenceResultJson } from '@rsmoe/contracts';
import { performance } from 'node:perf_hooks';
import type { Logger } from '@rsmoe/observability';
import { buildResult, type ChildOutcomes } from '@rsmoe/results';

export interface ResultSink {
  exists(requestId: string): Promise<boolean>;
  /** True when this call stored the result (and published it on `notify`). */
  store(result: InferenceResultJson, notify: string): Promise<boolean>;
}

/** How a stored result turned out: every expert answered, some are missing, or none answered. */
export type ResultOutcome = 'complete' | 'degraded' | 'failed';

export interface AggregateObserver {
  resultStored(task: string, outcome: ResultOutcome, fusionSeconds: number): void;
}

export function outcomeOf(result: InferenceResultJson): ResultOutcome {
  if (!result.degraded) return 'complete';
  return result.experts.some((expert) => expert.status === 'ok') ? 'degraded' : 'failed';
}

/** The parent job's view of its children (BullMQ's Job in production). */
export interface ParentJob {
  getChildrenValues(): Promise<Record<string, unknown>>;
  getIgnoredChildrenFailures(): Promise<Record<string, string>>;
}

/** The queue name inside a BullMQ job key `<prefix>:<queue>:<id>` (queue names hold no `:`). */
function queueOfJobKey(jobKey: string): string {
  const parts = jobKey.split(':');
  return parts[parts.length - 2] ?? '';
}

export async function readChildOutcomes(parent: ParentJob): Promise<ChildOutcomes> {
  const [values, failures] = await Promise.all([parent.getChildrenValues(), parent.getIgnoredChildrenFailures()]);
  const outcomes: ChildOutcomes = { outputs: new Map(), failures: new Map() };
  for (const value of Object.values(values)) {
    const output = parseExpertJobResult(value);
    outcomes.outputs.set(output.expertId, output);
  }
  for (const [key, reason] of Object.entries(failures)) {
    const expertId = expertIdOfQueue(queueOfJobKey(key));
    if (expertId) outcomes.failures.set(expertId, reason);
  }
  return outcomes;
}

/**
 * The aggregator's two job handlers, on data the job layer already validated: `fuse` (the flow parent,
 * once every child finished or failed) and `finalize-at-deadline` (fuses what exists when children are
 * still missing at the fuse point).
 */
export class AggregateProcessor {
  constructor(
    private readonly results: ResultSink,
    private readonly findParent: (requestId: string) => Promise<ParentJob | undefined>,
    private readonly logger: Logger,
    private readonly observer: AggregateObserver = { resultStored: () => undefined },
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The flow parent: every child finished or failed. When all of them answered ok, the router has usually
   * fused and stored already (its fast path): one EXISTS then spares reading the children, at no cost to
   * the request, which has its answer.
   */
  async fuse(data: AggregateJobData, parent: ParentJob): Promise<InferenceResultJson | undefined> {
    if (await this.results.exists(data.requestId)) return undefined;
    const outcomes = await readChildOutcomes(parent);
    // The parent runs once every dispatched child finished or failed: each left a value or a failure. None
    // at all means Redis lost them (a restart without persistence) while this job was held in memory; an
    // all-timed-out result made from nothing could replace one already answered. The router answers 408.
    const dispatched = data.routed.length - (data.unavailableExperts?.length ?? 0);
    if (dispatched > 0 && outcomes.outputs.size === 0 && outcomes.failures.size === 0) return this.lost(data, 'its children left no value or failure');
    return this.finish(data, outcomes);
  }

  async finalizeAtDeadline(data: AggregateJobData): Promise<InferenceResultJson | undefined> {
    if (await this.results.exists(data.requestId)) return undefined;
    // The flow parent is added with its children, atomically, and outlives the result: without it, Redis
    // lost the request (see fuse).
    const parent = await this.findParent(data.requestId);
    if (!parent) return this.lost(data, 'its flow parent is gone');
    return this.finish(data, await readChildOutcomes(parent));
  }

  private lost(data: AggregateJobData, why: string): undefined {
    this.logger.warn('request data lost from Redis: nothing fused', { requestId: data.requestId, why });
    return undefined;
  }

  private async finish(data: AggregateJobData, outcomes: ChildOutcomes): Promise<InferenceResultJson | undefined> {
    this.logger.debug('fusing', { requestId: data.requestId, outputs: outcomes.outputs.size, failures: outcomes.failures.size });
    const started = performance.now();
    const result = buildResult(data, outcomes, this.now());
    const stored = await this.results.store(result, data.replyTo);
    this.logger.debug('published', { requestId: data.requestId, stored });
    if (!stored) return undefined;
    this.observer.resultStored(result.task, outcomeOf(result), (performance.now() - started) / 1000);
    if (result.degraded) {
      this.logger.warn('degraded result', { requestId: data.requestId, missingExperts: result.missingExperts });
    }
    return result;
  }
}
