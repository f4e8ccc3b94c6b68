import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AGGREGATE_QUEUE, AGGREGATE_QUEUE_JOBS, TASKS, createRedisKeys, expertJobId, expertQueueName } from '@rsmoe/contracts';
import { startTypedWorker, type TypedWorker } from '@rsmoe/jobs';
import type { Logger, RedisErrorEmitter, ServiceMetrics } from '@rsmoe/observability';
import { RedisResultStore } from '@rsmoe/results';
import { AggregateProcessor } from './aggregate.processor';
import type { AggregatorConfig } from './aggregator.config';

/** What the aggregator is made of besides its configuration: connections, logger, metrics. */
export interface AggregatorDeps {
  /** Commands: the result store and reading expert jobs back. */
  redis: Redis;
  /** The worker's own connection (BullMQ blocks on it). */
  workerConnection: Redis;
  logger: Logger;
  metrics: ServiceMetrics;
  /** Attaches an error handler to each BullMQ emitter (RedisOutageLog.watchEmitter in production). */
  watchEmitter?: <Emitter extends RedisErrorEmitter>(emitter: Emitter, name: string) => Emitter;
  now?: () => number;
}

/** A running aggregator: one typed worker on `aggregate` and its processor. */
export interface AggregatorApp {
  processor: AggregateProcessor;
  worker: TypedWorker;
  /** Resolves once the worker is connected. */
  ready(): Promise<void>;
  /** Stops taking jobs; waits for running ones unless `force`. Leaves the connections to their owner. */
  close(force?: boolean): Promise<void>;
}

/**
 * The aggregator without its process edges (signals, ops server): a typed worker on `aggregate` with one
 * handler per job name (checked at start-up), fusing into the result store. Testable in-process.
 */
export function createAggregatorApp(config: AggregatorConfig, deps: AggregatorDeps): AggregatorApp {
  const watch = deps.watchEmitter ?? (<Emitter>(emitter: Emitter) => emitter);
  // Read-only handles on the expert queues, made on first use: the aggregator reads jobs back by id.
  const expertQueues = new Map<string, Queue>();
  const expertQueue = (expertId: string): Queue => {
    let queue = expertQueues.get(expertId);
    if (!queue) {
      queue = watch(new Queue(expertQueueName(expertId), { connection: deps.redis, prefix: config.QUEUE_PREFIX }), `bullmq-queue ${expertQueueName(expertId)}`);
      expertQueues.set(expertId, queue);
    }
    return queue;
  };
  const fusionDuration = deps.metrics.get('aggregatorFusionDuration');
  const results = deps.metrics.get('aggregatorResults');
  for (const task of TASKS) {
    fusionDuration.zero({ task });
    for (const outcome of ['complete', 'degraded', 'failed']) results.inc({ task, outcome }, 0);
  }
  const processor = new AggregateProcessor(
    new RedisResultStore(deps.redis, createRedisKeys(config.KEY_PREFIX), config.RESULT_TTL_S),
    async (requestId, expertId) => (await Job.fromId(expertQueue(expertId), expertJobId(requestId, expertId))) ?? undefined,
    deps.logger,
    {
      resultStored: (task, outcome, seconds) => {
        fusionDuration.observe({ task }, seconds);
        results.inc({ task, outcome });
      },
    },
    deps.now,
  );
  const worker = startTypedWorker({
    queueName: AGGREGATE_QUEUE,
    catalogue: AGGREGATE_QUEUE_JOBS,
    handlers: {
      fuse: (data) => processor.fuse(data),
      'finalize-at-deadline': (data) => processor.finalizeAtDeadline(data),
    },
    connection: deps.workerConnection,
    prefix: config.QUEUE_PREFIX,
    concurrency: config.CONCURRENCY,
    onFailed: (job, error) => deps.logger.warn('aggregate job failed', { jobId: job?.id, requestId: job?.data?.requestId, error: error.message }),
    onError: () => undefined,
  });
  watch(worker.worker, 'bullmq-worker');
  return {
    processor,
    worker,
    ready: async () => void (await worker.worker.waitUntilReady()),
    async close(force = false) {
      await worker.close(force);
      await Promise.all([...expertQueues.values()].map((queue) => queue.close()));
    },
  };
}
