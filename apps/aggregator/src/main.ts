import { Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { AGGREGATE_QUEUE, JOB_NAMES, TASKS, aggregateJobId, createRedisKeys } from '@rsmoe/contracts';
import { ServiceMetrics, createLogger, drainOnSignals, runService, startOpsServer, redisReadiness } from '@rsmoe/observability';
import { AggregateProcessor, PermanentAggregateError } from './aggregate.processor';
import { loadAggregatorConfig } from './aggregator.config';
import { RedisResultStore } from '@rsmoe/results';

async function main(): Promise<void> {
  const config = loadAggregatorConfig(process.env);
  const logger = createLogger('aggregator', { level: config.LOG_LEVEL });
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const keys = createRedisKeys(config.KEY_PREFIX);
  const queue = new Queue(AGGREGATE_QUEUE, { connection: redis, prefix: config.QUEUE_PREFIX });
  const metrics = new ServiceMetrics();
  const fusionDuration = metrics.get('aggregatorFusionDuration');
  const results = metrics.get('aggregatorResults');
  const processor = new AggregateProcessor(
    new RedisResultStore(redis, keys, config.RESULT_TTL_S),
    async (requestId) => (await Job.fromId(queue, aggregateJobId(requestId))) ?? undefined,
    logger,
    {
      resultStored: (task, outcome, seconds) => {
        fusionDuration.observe({ task }, seconds);
        results.inc({ task, outcome });
      },
    },
  );
  for (const task of TASKS) {
    fusionDuration.zero({ task });
    for (const outcome of ['complete', 'degraded', 'failed']) results.inc({ task, outcome }, 0);
  }
  const handlers: Record<string, (job: Job) => Promise<unknown>> = {
    [JOB_NAMES.aggregate]: (job) => processor.fuse(job),
    [JOB_NAMES.finalizeAtDeadline]: (job) => processor.finalizeAtDeadline(job),
  };
  const worker = new Worker(
    AGGREGATE_QUEUE,
    async (job: Job) => {
      const handler = handlers[job.name];
      if (!handler) throw new UnrecoverableError(`no handler for job name "${job.name}" on ${AGGREGATE_QUEUE}`);
      try {
        return await handler(job);
      } catch (error) {
        if (error instanceof PermanentAggregateError) throw new UnrecoverableError(error.message);
        throw error;
      }
    },
    { connection: new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }), prefix: config.QUEUE_PREFIX, concurrency: config.CONCURRENCY },
  );
  worker.on('failed', (job, error) => logger.warn('aggregate job failed', { jobId: job?.id, error: error.message }));
  worker.on('error', (error) => logger.error('worker error', { error }));
  await worker.waitUntilReady();
  const ops = await startOpsServer({
    port: config.METRICS_PORT,
    host: config.METRICS_HOST,
    metrics,
    readiness: [redisReadiness(redis)],
    logger,
  });
  logger.info('aggregator ready', { queue: AGGREGATE_QUEUE, metricsPort: ops.port });

  drainOnSignals({
    logger,
    timeoutMs: config.DRAIN_TIMEOUT_MS,
    drain: () => worker.close(),
    release: async () => {
      await queue.close();
      await ops.close();
      redis.disconnect();
    },
  });
}

runService('aggregator', main);
