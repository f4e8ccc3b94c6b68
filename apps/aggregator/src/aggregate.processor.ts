import { parseExpertJobResult, type AggregateJobData, type InferenceResultJson } from '@rsmoe/contracts';
import { performance } from 'node:perf_hooks';
import type { Logger } from '@rsmoe/observability';
import { buildResult, outcomeOf, type ChildOutcomes, type ResultOutcome } from '@rsmoe/results';

export interface ResultSink {
  exists(requestId: string): Promise<boolean>;
  /** True when this call stored the result (and published it on `notify`). */
  store(result: InferenceResultJson, notify: string): Promise<boolean>;
}

export interface AggregateObserver {
  resultStored(task: string, outcome: ResultOutcome, fusionSeconds: number): void;
}

/** One expert job as the aggregator reads it back (BullMQ's Job in production). */
export interface FinishedJobView {
  /** Set once the job completed or failed for good (not while it waits for a retry). */
  finishedOn?: number;
  returnvalue: unknown;
  failedReason?: string;
}

/**
 * Reads the expert jobs of a request by their deterministic ids (expertJobId): undefined for a job that is
 * not in Redis. Plain jobs and the children of flows from routers before plain jobs have the same ids.
 */
export type ExpertJobReader = (requestId: string, expertId: string) => Promise<FinishedJobView | undefined>;

/** What the dispatched experts' jobs hold: outputs and final failures; `found` counts jobs still in Redis. */
export async function readExpertOutcomes(data: AggregateJobData, readJob: ExpertJobReader): Promise<ChildOutcomes & { found: number }> {
  const unavailable = new Set(data.unavailableExperts ?? []);
  const dispatched = data.routed.map((assignment) => assignment.expertId).filter((expertId) => !unavailable.has(expertId));
  const jobs = await Promise.all(dispatched.map((expertId) => readJob(data.requestId, expertId)));
  const outcomes: ChildOutcomes & { found: number } = { outputs: new Map(), failures: new Map(), found: 0 };
  jobs.forEach((job, index) => {
    if (!job) return;
    outcomes.found++;
    if (!job.finishedOn) return;
    if (job.failedReason) outcomes.failures.set(dispatched[index], job.failedReason);
    else if (job.returnvalue !== null && job.returnvalue !== undefined) {
      const output = parseExpertJobResult(job.returnvalue);
      outcomes.outputs.set(output.expertId, output);
    }
  });
  return outcomes;
}

/**
 * The aggregator's job handlers, on data the job layer already validated. It is woken only when the router
 * could not fuse: `finalize-at-deadline` runs at a request's fuse point (armed by the router for requests
 * still open after its grace period) and fuses whatever the expert jobs hold then; `fuse` serves the flow
 * parents that routers before plain jobs still add during a rolling update.
 */
export class AggregateProcessor {
  constructor(
    private readonly results: ResultSink,
    private readonly readJob: ExpertJobReader,
    private readonly logger: Logger,
    private readonly observer: AggregateObserver = { resultStored: () => undefined },
    private readonly now: () => number = Date.now,
  ) {}

  /** A flow parent from an older router: every child finished or failed. */
  fuse(data: AggregateJobData): Promise<InferenceResultJson | undefined> {
    return this.finalize(data);
  }

  finalizeAtDeadline(data: AggregateJobData): Promise<InferenceResultJson | undefined> {
    return this.finalize(data);
  }

  /**
   * One EXISTS first: the router has usually fused and stored already. The jobs are added before the
   * deadline job and outlive the result (JOB_RETENTION_S): none of them left means Redis lost the request
   * (a restart without persistence), and an all-timed-out result made from nothing could replace one
   * already answered. The router answers 408 then.
   */
  private async finalize(data: AggregateJobData): Promise<InferenceResultJson | undefined> {
    if (await this.results.exists(data.requestId)) return undefined;
    const outcomes = await readExpertOutcomes(data, this.readJob);
    const dispatched = data.routed.length - (data.unavailableExperts?.length ?? 0);
    if (dispatched > 0 && outcomes.found === 0) {
      this.logger.warn('request data lost from Redis: nothing fused', { requestId: data.requestId, why: 'none of its expert jobs is in Redis' });
      return undefined;
    }
    return this.finish(data, outcomes);
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
