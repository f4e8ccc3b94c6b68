import { Redis } from 'ioredis';
import { SCENES_QUEUE } from '@rsmoe/contracts';
import { RedisOutageLog, ServiceMetrics, createLogger, drainOnSignals, redisReadiness, runService, startOpsServer } from '@rsmoe/observability';
import { createSceneWorkerApp } from './scene-worker.app';
import { loadSceneWorkerConfig } from './scene-worker.config';

async function main(): Promise<void> {
  const config = loadSceneWorkerConfig(process.env);
  const logger = createLogger('scene-worker', { level: config.LOG_LEVEL });
  const outages = new RedisOutageLog(logger);
  const redis = outages.watch(new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }), 'redis');
  const workerConnection = outages.watch(new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }), 'bullmq');
  const app = createSceneWorkerApp(config, { redis, workerConnection, logger, watchEmitter: (emitter, name) => outages.watchEmitter(emitter, name) });
  await app.ready();
  const ops = await startOpsServer({ port: config.METRICS_PORT, host: config.METRICS_HOST, metrics: new ServiceMetrics(), readiness: [redisReadiness(redis)], logger });
  logger.info('scene worker ready', { queue: SCENES_QUEUE, store: config.SCENE_STORE_DIR, metricsPort: ops.port });
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

runService('scene-worker', main);
