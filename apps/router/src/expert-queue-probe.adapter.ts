import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { expertQueueName, type ExpertId } from '@rsmoe/contracts';
import type { QueueSample } from './expert-capacity.service';

/**
 * The queue edge of ExpertCapacityService: reads one expert queue's live workers and backlog from BullMQ.
 * Workers come from BullMQ's getWorkersCount (Redis CLIENT LIST: a worker's connection is named after its
 * queue, so a process killed with -9 drops out at once, no heartbeat to expire). Finished jobs in the drain
 * window are counted in BullMQ's completed and failed sets, which are scored by finish time.
 */
export class ExpertQueueProbe {
  private readonly queues = new Map<ExpertId, Queue>();

  constructor(
    private readonly connection: Redis,
    private readonly queuePrefix: string,
    private readonly now: () => number = Date.now,
    /** Told each queue made here, to attach its error handler (RedisOutageLog.watchEmitter). */
    private readonly watch: (queue: Queue, name: string) => void = () => undefined,
  ) {}

  async sample(expertId: ExpertId, windowMs: number): Promise<QueueSample> {
    const queue = this.queue(expertId);
    const since = this.now() - windowMs;
    const [liveWorkers, counts, completed, failed] = await Promise.all([
      queue.getWorkersCount(),
      queue.getJobCounts('wait', 'prioritized'),
      this.connection.zcount(queue.keys.completed, since, '+inf'),
      this.connection.zcount(queue.keys.failed, since, '+inf'),
    ]);
    return { liveWorkers, interactiveWaiting: counts.wait ?? 0, bulkWaiting: counts.prioritized ?? 0, finishedInWindow: completed + failed };
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
  }

  private queue(expertId: ExpertId): Queue {
    let queue = this.queues.get(expertId);
    if (!queue) {
      queue = new Queue(expertQueueName(expertId), { connection: this.connection, prefix: this.queuePrefix });
      this.watch(queue, `bullmq-queue ${queue.name} (capacity probe)`);
      this.queues.set(expertId, queue);
    }
    return queue;
  }
}
