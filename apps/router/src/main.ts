import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { RedisBlobStore } from '@rsmoe/blobstore';
import { createRedisKeys, loadHealthPackage, loadPackManifest, loadRouterPackage, parseInferenceResult } from '@rsmoe/contracts';
import { createLogger, runService } from '@rsmoe/observability';
import { InstructionRouter } from '@rsmoe/routing';
import { CompletionListener } from './completion-listener.adapter';
import { FlowDispatcher } from './flow-dispatcher.adapter';
import { loadRouterConfig } from './router.config';
import { createHealthHandlers, createRouterHandlers } from './router.grpc';
import { RouterService } from './router.service';

async function main(): Promise<void> {
  const config = loadRouterConfig(process.env);
  const logger = createLogger('router', { level: config.LOG_LEVEL });
  const manifest = loadPackManifest(config.PACK_DIR);
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const subscriber = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const keys = createRedisKeys(config.KEY_PREFIX);
  const dispatcher = new FlowDispatcher(redis, {
    queuePrefix: config.QUEUE_PREFIX,
    attempts: config.JOB_ATTEMPTS,
    backoffMs: config.JOB_BACKOFF_MS,
    retentionSeconds: config.JOB_RETENTION_S,
  });
  const blobs = new RedisBlobStore(redis, { keyPrefix: config.KEY_PREFIX, ttlSeconds: 900, maxBytes: Number.MAX_SAFE_INTEGER });
  const readStored = async (requestId: string) => {
    const stored = await redis.get(keys.resultKey(requestId));
    return stored ? parseInferenceResult(JSON.parse(stored)) : undefined;
  };
  const service = new RouterService({
    manifest,
    router: new InstructionRouter(manifest),
    dispatcher,
    completions: new CompletionListener(subscriber, keys, readStored),
    images: blobs,
    results: { get: readStored },
    deadlines: {
      defaultMs: config.DEFAULT_DEADLINE_MS,
      maxMs: config.MAX_DEADLINE_MS,
      reserveFraction: config.FUSE_RESERVE_FRACTION,
      reserveMinMs: config.FUSE_RESERVE_MIN_MS,
      reserveMaxMs: config.FUSE_RESERVE_MAX_MS,
    },
  });

  const server = new grpc.Server();
  server.addService(loadRouterPackage().rsmoe.v1.Router.service, createRouterHandlers(service, logger));
  server.addService(loadHealthPackage().grpc.health.v1.Health.service, createHealthHandlers(() => redis.status === 'ready'));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.GRPC_HOST}:${config.GRPC_PORT}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  logger.info('router ready', { address: `${config.GRPC_HOST}:${port}`, pack: manifest.name, experts: manifest.experts.map((e) => e.id) });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    server.tryShutdown(async () => {
      await dispatcher.close();
      subscriber.disconnect();
      redis.disconnect();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

runService('router', main);
