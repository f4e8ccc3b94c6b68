import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  AGGREGATE_QUEUE,
  BULK_JOB_PRIORITY,
  JOB_NAMES,
  deadlineJobId,
  deadlineOf,
  expertJobId,
  expertQueueName,
  type AggregateJobData,
  type ExpertJobData,
  type RequestPriority,
} from '@rsmoe/contracts';

export interface DispatchOptions {
  queuePrefix: string;
  attempts: number;
  backoffMs: number;
  /** Seconds finished jobs stay in Redis (the aggregator reads them at the fuse point). */
  retentionSeconds: number;
  /** Where the ids of cancelled requests with running jobs are published, so their experts stop them. */
  cancelChannel?: string;
  /** Told each BullMQ queue made here, to attach its error handler (RedisOutageLog.watchEmitter). */
  watch?: (emitter: Queue, name: string) => void;
}

/**
 * The queue edge of the router. One request becomes one plain job per routed expert on `expert.<id>`
 * (deterministic ids, so a re-dispatch is a no-op), added together: no flow parent, whose dependency
 * bookkeeping and pick-up cost about a third of a request's Redis commands. Experts report to the router's
 * inbox (partials and final failures) and the router fuses. `armDeadline` adds a delayed job on
 * `aggregate`, due when the experts stop being waited for: the aggregator then fuses from the jobs' stored
 * return values and failure reasons, if nobody has stored a result by then.
 */
export class JobDispatcher {
  private readonly connection: Redis;
  private readonly queues = new Map<string, Queue>();
  private readonly aggregate: Queue;
  private readonly jobOptions: {
    attempts: number;
    backoff: { type: 'exponential'; delay: number };
    removeOnComplete: { age: number };
    removeOnFail: { age: number };
  };

  constructor(
    connection: Redis,
    private readonly options: DispatchOptions,
  ) {
    this.connection = connection;
    this.aggregate = this.queue(AGGREGATE_QUEUE, `bullmq-queue ${AGGREGATE_QUEUE} (dispatch)`);
    const retention = { age: options.retentionSeconds };
    this.jobOptions = {
      attempts: options.attempts,
      backoff: { type: 'exponential', delay: options.backoffMs },
      removeOnComplete: retention,
      removeOnFail: retention,
    };
  }

  /** Bulk jobs (a scene's tiles) go in at BULK_JOB_PRIORITY: workers take them only when no interactive job waits. */
  async dispatch(jobs: readonly ExpertJobData[], options: { priority?: RequestPriority } = {}): Promise<void> {
    const priority = options.priority === 'bulk' ? { priority: BULK_JOB_PRIORITY } : {};
    await Promise.all(
      jobs.map((data) =>
        this.queue(expertQueueName(data.expertId)).add(JOB_NAMES.expertGenerate, data, {
          jobId: expertJobId(data.requestId, data.expertId),
          ...this.jobOptions,
          ...priority,
        }),
      ),
    );
  }

  /** The aggregator finalizes the request at its fuse point with whatever experts answered by then. */
  async armDeadline(parent: AggregateJobData): Promise<void> {
    await this.aggregate.add(JOB_NAMES.finalizeAtDeadline, parent, {
      jobId: deadlineJobId(parent.requestId),
      delay: Math.max(0, deadlineOf(parent).fuseAtUnixMs - Date.now()),
      removeOnComplete: this.jobOptions.removeOnComplete,
      removeOnFail: this.jobOptions.removeOnFail,
    });
  }

  /**
   * Withdraws a cancelled request: removes its expert jobs no worker has picked up and its deadline job. A job
   * a worker holds is locked and stays; the request's id is then published on the cancel channel, and the
   * expert running it aborts it (its generation stops at the next token). Resolves with the number of jobs
   * left running (BullMQ's remove answers 0 for a locked job, 1 otherwise, a job already gone included).
   */
  async withdraw(requestId: string, expertIds: readonly string[]): Promise<number> {
    const removed = await Promise.all([
      ...expertIds.map((expertId) => this.queue(expertQueueName(expertId)).remove(expertJobId(requestId, expertId))),
      this.aggregate.remove(deadlineJobId(requestId)),
    ]);
    const running = removed.filter((count) => count === 0).length;
    if (running > 0 && this.options.cancelChannel !== undefined) await this.connection.publish(this.options.cancelChannel, requestId);
    return running;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
  }

  private queue(name: string, label = `bullmq-queue ${name} (dispatch)`): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection, prefix: this.options.queuePrefix });
      this.options.watch?.(queue, label);
      this.queues.set(name, queue);
    }
    return queue;
  }
}
