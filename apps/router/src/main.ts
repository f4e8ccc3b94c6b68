import { Redis } from 'ioredis';
import { loadPackManifest } from '@rsmoe/contracts';
import { RedisOutageLog, ServiceMetrics, createLogger, runService, startOpsServer, redisReadiness } from '@rsmoe/observability';
import { ClassifierRouterModel } from './router-model.adapter';
import { createRouterApp } from './router.app';
import { loadRouterConfig } from './router.config';

async function main(): Promise<void> {
  const config = loadRouterConfig(process.env);
  const logger = createLogger('router', { level: config.LOG_LEVEL });
  const manifest = loadPackManifest(config.PACK_DIR);
  // One log line per Redis outage for all of this process's connections, not one per retry.
  const outages = new RedisOutageLog(logger);
  const redis = outages.watch(new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }), 'redis');
  const subscriber = outages.watch(new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }), 'subscriber');
  // The pack's learned router, unless switched off (ROUTER_MODEL=off: rules only, no image decode here).
  const routerModel = manifest.router.modelDir && config.ROUTER_MODEL === 'on' ? await ClassifierRouterModel.load(manifest.router.modelDir) : undefined;
  const metrics = new ServiceMetrics();
  const app = await createRouterApp(config, {
    redis,
    subscriber,
    logger,
    metrics,
    routerModel,
    watchEmitter: (emitter, name) => outages.watchEmitter(emitter, name),
  });
  const ops = await startOpsServer({
    port: config.METRICS_PORT,
    host: config.METRICS_HOST,
    metrics,
    readiness: [redisReadiness(redis)],
    logger,
  });
  logger.info('router ready', {
    address: `${config.GRPC_HOST}:${app.port}`,
    pack: manifest.name,
    experts: manifest.experts.map((e) => e.id),
    routerModel: routerModel ? manifest.router.modelDir : null,
    inbox: app.inbox.channel,
    metricsPort: ops.port,
  });

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    await app.close();
    await ops.close();
    await routerModel?.release();
    subscriber.disconnect();
    redis.disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

runService('router', main);
