import type { ExpertId } from './identifiers';

/**
 * Queue names are Redis keys (under the BullMQ prefix): renaming one is a migration.
 * BullMQ queue names may not contain `:`; expert ids cannot (EXPERT_ID_PATTERN).
 */
export const AGGREGATE_QUEUE = 'aggregate';

/** Every expert queue is `expert.<expertId>`. */
export const EXPERT_QUEUE_PREFIX = 'expert.';

export const QUEUE_NAMES = Object.freeze({
  aggregate: AGGREGATE_QUEUE,
  expert: expertQueueName,
});

/** Job names: one handler per job name, per queue. */
export const JOB_NAMES = Object.freeze({
  /** An expert job on `expert.<id>`: generate text for one prompt (data: ExpertJobData). */
  expertGenerate: 'generate',
  /**
   * A flow parent on `aggregate`, added by routers before plain jobs (still served during a rolling
   * update): fuse the children's outputs (data: AggregateJobData).
   */
  aggregate: 'fuse',
  /**
   * A delayed job on `aggregate`, due at the request's fuse point: fuses whatever the expert jobs hold
   * when the router has not stored a result by then, so a dead or slow expert never holds a request
   * (data: AggregateJobData).
   */
  finalizeAtDeadline: 'finalize-at-deadline',
} as const);

/** Separator between request id and expert id in job ids (BullMQ refuses `:` in custom job ids). */
export const JOB_ID_SEPARATOR = '.';

export function expertQueueName(expertId: ExpertId): string {
  return `${EXPERT_QUEUE_PREFIX}${expertId}`;
}

/** The expert id of an expert queue name, or undefined for any other queue. */
export function expertIdOfQueue(queueName: string): ExpertId | undefined {
  return queueName.startsWith(EXPERT_QUEUE_PREFIX) ? queueName.slice(EXPERT_QUEUE_PREFIX.length) : undefined;
}

/** Deterministic id of a request's job for one expert: `<requestId>.<expertId>` (idempotent re-dispatch). */
export function expertJobId(requestId: string, expertId: ExpertId): string {
  return `${requestId}${JOB_ID_SEPARATOR}${expertId}`;
}

/**
 * Deterministic id of a request's flow parent on `aggregate` (routers before plain jobs):
 * `<requestId>.aggregate`. Not the bare request id, because BullMQ refuses custom job ids that look like
 * integers.
 */
export function aggregateJobId(requestId: string): string {
  return `${requestId}${JOB_ID_SEPARATOR}aggregate`;
}

/** Deterministic id of a request's deadline job on `aggregate`: `<requestId>.deadline`. */
export function deadlineJobId(requestId: string): string {
  return `${requestId}${JOB_ID_SEPARATOR}deadline`;
}
