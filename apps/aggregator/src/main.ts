import { Redis } from 'ioredis';
import { AGGREGATE_QUEUE } from '@rsmoe/contracts';
import { RedisOutageLog, ServiceMetrics, createLogger, drainOnSignals, runService, startOpsServer, redisReadiness } from '@rsmoe/observability';
import { createAggregatorApp } from './aggregator.app';
import { loadAggregatorConfig } from './aggregator.config';

async function main(): Promise<void> {
  const config = loadAggregatorConfig(process.env);
  const logger = createLogger('aggregator', { level: config.LOG_LEVEL });
  // One log line per Redis outage for all of this process's connections (BullMQ's included), not one per retry.
  const outages = new RedisOutageLog(logger);
  const redis = outages.watch(new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }), 'redis');
  const workerConnection = outages.watch(new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }), 'bullmq');
  const metrics = new ServiceMetrics();
  const app = createAggregatorApp(config, {
    redis,
    workerConnection,
    logger,
    metrics,
    watchEmitter: (emitter, name) => outages.watchEmitter(emitter, name),
  });
  await app.ready();
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
    drain: () => app.close(),
    release: async () => {
      await ops.close();
      workerConnection.disconnect();
      redis.disconnect();
    },
  });
}

runService('aggregator', main);
