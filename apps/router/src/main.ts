import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { RedisBlobStore } from '@rsmoe/blobstore';
import { AGGREGATE_QUEUE, TASKS, createRedisKeys, expertQueueName, loadHealthPackage, loadPackManifest, loadRouterPackage, parseInferenceResult } from '@rsmoe/contracts';
import { ServiceMetrics, createLogger, runService, startOpsServer, redisReadiness } from '@rsmoe/observability';
import { RedisResultStore } from '@rsmoe/results';
import { InstructionRouter } from '@rsmoe/routing';
import { ClassifierRouterModel } from './router-model.adapter';
import { FlowDispatcher } from './flow-dispatcher.adapter';
import { RouterInbox } from './router-inbox.adapter';
import { loadRouterConfig } from './router.config';
import { createHealthHandlers, createRouterHandlers } from './router.grpc';
import { RouterService } from './router.service';

async function main(): Promise<void> {
  const config = loadRouterConfig(process.env);
  const logger = createLogger('router', { level: config.LOG_LEVEL });
  const manifest = loadPackManifest(config.PACK_DIR);
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const subscriber = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  for (const [name, client] of [['redis', redis], ['subscriber', subscriber]] as const) {
    client.on('error', (error: Error) => logger.warn('redis connection error', { connection: name, error: error.message }));
  }
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
  // One inbox per process: replies to this process's jobs come back here, whatever the replica count.
  const instanceId = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const inbox = new RouterInbox(subscriber, keys.routerInbox(instanceId), readStored);
  await inbox.start();
  // The pack's learned router, unless switched off (ROUTER_MODEL=off: rules only, no image decode here).
  const routerModel = manifest.router.modelDir && config.ROUTER_MODEL === 'on' ? await ClassifierRouterModel.load(manifest.router.modelDir) : undefined;
  const metrics = new ServiceMetrics();
  const grpcDuration = metrics.get('grpcRequestDuration');
  const expertsChosen = metrics.get('routerExpertsChosen');
  const selections = metrics.get('routerExpertSelections');
  const fusedResults = metrics.get('routerFusedResults');
  for (const task of TASKS) fusedResults.inc({ task }, 0);
  const resultStore = new RedisResultStore(redis, keys, config.RESULT_TTL_S);
  const queues = [...manifest.experts.map((expert) => expertQueueName(expert.id)), AGGREGATE_QUEUE].map(
    (name) => new Queue(name, { connection: redis, prefix: config.QUEUE_PREFIX }),
  );
  metrics.get('queueJobs', async (gauge) => {
    await Promise.all(
      queues.map(async (queue) => {
        const counts = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
        gauge.set({ queue: queue.name, state: 'waiting' }, (counts.waiting ?? 0) + (counts.prioritized ?? 0));
        for (const state of ['active', 'delayed', 'failed'] as const) gauge.set({ queue: queue.name, state }, counts[state] ?? 0);
      }),
    );
  });
  const service = new RouterService({
    manifest,
    router: new InstructionRouter(manifest, { model: routerModel }),
    dispatcher,
    completions: inbox,
    images: blobs,
    results: { get: readStored },
    maxImages: config.MAX_IMAGES_PER_REQUEST,
    deadlines: {
      defaultMs: config.DEFAULT_DEADLINE_MS,
      maxMs: config.MAX_DEADLINE_MS,
      reserveFraction: config.FUSE_RESERVE_FRACTION,
      reserveMinMs: config.FUSE_RESERVE_MIN_MS,
      reserveMaxMs: config.FUSE_RESERVE_MAX_MS,
      deadlineJobGraceMs: config.DEADLINE_JOB_GRACE_MS,
    },
    onArmFailed: (requestId, error) => logger.warn('arming the deadline job failed', { requestId, error: (error as Error).message }),
    fastPath:
      config.FUSE_IN_ROUTER === 'on'
        ? {
            // Nobody else waits for this result: stored, not published.
            store: (result) => resultStore.store(result),
            onFused: (result) => fusedResults.inc({ task: result.task }),
          }
        : undefined,
    onRouted: (task, expertIds) => {
      expertsChosen.observe({ task }, expertIds.length);
      for (const expert of expertIds) selections.inc({ expert, task });
    },
  });

  const server = new grpc.Server();
  server.addService(loadRouterPackage().rsmoe.v1.Router.service, createRouterHandlers(service, logger, (method, code, seconds) => grpcDuration.observe({ method, code }, seconds)));
  server.addService(loadHealthPackage().grpc.health.v1.Health.service, createHealthHandlers(() => redis.status === 'ready'));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.GRPC_HOST}:${config.GRPC_PORT}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  const ops = await startOpsServer({
    port: config.METRICS_PORT,
    host: config.METRICS_HOST,
    metrics,
    readiness: [redisReadiness(redis)],
    logger,
  });
  logger.info('router ready', {
    address: `${config.GRPC_HOST}:${port}`,
    pack: manifest.name,
    experts: manifest.experts.map((e) => e.id),
    routerModel: routerModel ? manifest.router.modelDir : null,
    inbox: inbox.channel,
    metricsPort: ops.port,
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    server.tryShutdown(async () => {
      await dispatcher.close();
      await Promise.all(queues.map((queue) => queue.close()));
      await ops.close();
      await routerModel?.release();
      subscriber.disconnect();
      redis.disconnect();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

runService('router', main);
