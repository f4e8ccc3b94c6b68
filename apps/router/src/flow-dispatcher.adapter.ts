import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  AGGREGATE_QUEUE,
  JOB_NAMES,
  aggregateJobId,
  deadlineJobId,
  deadlineOf,
  expertJobId,
  expertQueueName,
  type AggregateJobData,
  type ExpertJobData,
} from '@rsmoe/contracts';

export interface DispatchOptions {
  queuePrefix: string;
  attempts: number;
  backoffMs: number;
  /** Seconds finished jobs stay in Redis. */
  retentionSeconds: number;
  /** Told each BullMQ emitter made here, to attach its error handler (RedisOutageLog.watchEmitter). */
  watch?: (emitter: Queue | FlowProducer, name: string) => void;
}

/**
 * The queue edge of the router. One request becomes a BullMQ flow: the parent on `aggregate`, one child per
 * routed expert on `expert.<id>` (deterministic ids, so a re-dispatch is a no-op; a failed child never
 * blocks the parent). `armDeadline` adds a delayed job on `aggregate`, due when the experts stop being
 * waited for.
 */
export class FlowDispatcher {
  private readonly flows: FlowProducer;
  private readonly aggregate: Queue;
  /** How long every job of ours stays inspectable once finished or failed. */
  private readonly retention: { removeOnComplete: { age: number }; removeOnFail: { age: number } };

  constructor(
    connection: Redis,
    private readonly options: DispatchOptions,
  ) {
    this.flows = new FlowProducer({ connection, prefix: options.queuePrefix });
    this.aggregate = new Queue(AGGREGATE_QUEUE, { connection, prefix: options.queuePrefix });
    options.watch?.(this.flows, 'bullmq-flow-producer');
    options.watch?.(this.aggregate, `bullmq-queue ${AGGREGATE_QUEUE} (dispatch)`);
    this.retention = { removeOnComplete: { age: options.retentionSeconds }, removeOnFail: { age: options.retentionSeconds } };
  }

  async dispatch(parent: AggregateJobData, children: ExpertJobData[]): Promise<void> {
    const { retention } = this;
    await this.flows.add({
      name: JOB_NAMES.aggregate,
      queueName: AGGREGATE_QUEUE,
      data: parent,
      opts: { jobId: aggregateJobId(parent.requestId), ...retention },
      children: children.map((child) => ({
        name: JOB_NAMES.expertGenerate,
        queueName: expertQueueName(child.expertId),
        data: child,
        opts: {
          jobId: expertJobId(child.requestId, child.expertId),
          ignoreDependencyOnFailure: true,
          attempts: this.options.attempts,
          backoff: { type: 'exponential', delay: this.options.backoffMs },
          ...retention,
        },
      })),
    });
  }

  /** The aggregator finalizes the request at its fuse point with whatever experts answered by then. */
  async armDeadline(parent: AggregateJobData): Promise<void> {
    await this.aggregate.add(JOB_NAMES.finalizeAtDeadline, parent, {
      jobId: deadlineJobId(parent.requestId),
      delay: Math.max(0, deadlineOf(parent).fuseAtUnixMs - Date.now()),
      ...this.retention,
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.flows.close(), this.aggregate.close()]);
  }
}
