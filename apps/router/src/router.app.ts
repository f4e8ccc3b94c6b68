import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { RedisBlobStore } from '@rsmoe/blobstore';
import {
  AGGREGATE_QUEUE,
  TASKS,
  createRedisKeys,
  expertQueueName,
  loadHealthPackage,
  loadPackManifest,
  loadRouterPackage,
  type PackManifest,
} from '@rsmoe/contracts';
import type { Logger, RedisErrorEmitter, ServiceMetrics } from '@rsmoe/observability';
import { RESULT_OUTCOMES, RedisResultStore, outcomeOf } from '@rsmoe/results';
import { InstructionRouter, type RouterModel } from '@rsmoe/routing';
import { ExpertCapacityService } from './expert-capacity.service';
import { ExpertQueueProbe } from './expert-queue-probe.adapter';
import { JobDispatcher } from './job-dispatcher.adapter';
import { RouterInbox } from './router-inbox.adapter';
import type { RouterConfig } from './router.config';
import { createHealthHandlers, createRouterHandlers } from './router.grpc';
import { RouterService } from './router.service';

/** What the router is made of besides its configuration. */
export interface RouterDeps {
  /** Commands: flows, queues, the blob and result stores, the expert queue polls. */
  redis: Redis;
  /** The inbox's subscriber connection (a subscribed connection takes no other commands). */
  subscriber: Redis;
  logger: Logger;
  metrics: ServiceMetrics;
  /** The pack's learned router (ClassifierRouterModel in production); absent: rules only. */
  routerModel?: RouterModel;
  /** Attaches an error handler to each BullMQ emitter (RedisOutageLog.watchEmitter in production). */
  watchEmitter?: <Emitter extends RedisErrorEmitter>(emitter: Emitter, name: string) => Emitter;
  /** This process's inbox id; default `<host>-<pid>-<random>`. */
  instanceId?: string;
}

/** A running router: its gRPC server, its core and the background capacity poll. */
export interface RouterApp {
  manifest: PackManifest;
  service: RouterService;
  capacity: ExpertCapacityService;
  inbox: RouterInbox;
  /** The bound gRPC port (GRPC_PORT, or the one picked for 0). */
  port: number;
  /** Stops the gRPC server (in-flight calls finish), the poll and the queue handles; leaves the connections to their owner. */
  close(): Promise<void>;
}

/**
 * The router without its process edges (signals, ops server, model loading): the gRPC server on
 * GRPC_HOST:GRPC_PORT, the RouterService with its adapters, the inbox and the expert capacity poll.
 * Testable in-process.
 */
export async function createRouterApp(config: RouterConfig, deps: RouterDeps): Promise<RouterApp> {
  const { redis, logger, metrics } = deps;
  const watch = deps.watchEmitter ?? (<Emitter>(emitter: Emitter) => emitter);
  const manifest = loadPackManifest(config.PACK_DIR);
  const keys = createRedisKeys(config.KEY_PREFIX);
  const dispatcher = new JobDispatcher(redis, {
    queuePrefix: config.QUEUE_PREFIX,
    attempts: config.JOB_ATTEMPTS,
    backoffMs: config.JOB_BACKOFF_MS,
    retentionSeconds: config.JOB_RETENTION_S,
    cancelChannel: keys.requestCancelChannel(),
    watch: (emitter, name) => void watch(emitter, name),
  });
  const blobs = new RedisBlobStore(redis, { keyPrefix: config.KEY_PREFIX, ttlSeconds: 900, maxBytes: Number.MAX_SAFE_INTEGER });
  const resultStore = new RedisResultStore(redis, keys, config.RESULT_TTL_S);
  const readStored = (requestId: string) => resultStore.get(requestId);
  // One inbox per process: replies to this process's jobs come back here, whatever the replica count.
  const instanceId = deps.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const inbox = new RouterInbox(deps.subscriber, keys.routerInbox(instanceId), readStored);
  await inbox.start();
  const grpcDuration = metrics.get('grpcRequestDuration');
  const expertsChosen = metrics.get('routerExpertsChosen');
  const selections = metrics.get('routerExpertSelections');
  const fusedResults = metrics.get('routerFusedResults');
  for (const task of TASKS) for (const outcome of RESULT_OUTCOMES) fusedResults.inc({ task, outcome }, 0);
  const queues = [...manifest.experts.map((expert) => expertQueueName(expert.id)), AGGREGATE_QUEUE].map((name) =>
    watch(new Queue(name, { connection: redis, prefix: config.QUEUE_PREFIX }), `bullmq-queue ${name}`),
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
  // One background loop knows which expert queues have live workers and how backed up they are.
  const probe = new ExpertQueueProbe(redis, config.QUEUE_PREFIX, Date.now, (queue, name) => void watch(queue, name));
  const capacity = new ExpertCapacityService({
    expertIds: manifest.experts.map((expert) => expert.id),
    sample: (expertId, windowMs) => probe.sample(expertId, windowMs),
    intervalMs: config.EXPERT_POLL_INTERVAL_MS,
    windowMs: config.EXPERT_DRAIN_WINDOW_MS,
    staleAfterMs: Math.max(3 * config.EXPERT_POLL_INTERVAL_MS, 3_000),
    limits: {
      maxWaitingPerExpert: config.MAX_WAITING_PER_EXPERT,
      maxBulkWaitingPerExpert: config.MAX_BULK_WAITING_PER_EXPERT,
      ...(config.BULK_YIELD_WINDOW_MS > 0 ? { bulkYield: { windowMs: config.BULK_YIELD_WINDOW_MS, maxInFlight: config.BULK_IN_FLIGHT_WHILE_INTERACTIVE } } : {}),
    },
    onPollError: (expertId, error) => logger.warn('expert queue poll failed (experts count as live once the last poll is stale)', { expertId, error: (error as Error).message }),
  });
  capacity.start();
  metrics.get('routerExpertLiveWorkers', (gauge) => {
    for (const entry of capacity.snapshot()) gauge.set({ expert: entry.expertId }, entry.liveWorkers);
  });
  const refusals = metrics.get('routerAdmissionRefusals');
  for (const expert of manifest.experts) for (const reason of ['unavailable', 'queue_full', 'queue_wait', 'interactive_first']) refusals.inc({ expert: expert.id, reason }, 0);
  const admission = {
    admit(expertIds: readonly string[], request: { remainingMs: number; priority?: 'interactive' | 'bulk' }) {
      const decision = capacity.admit(expertIds, request);
      if (decision.kind === 'overloaded') refusals.inc({ expert: decision.expertId, reason: decision.reason });
      else for (const expert of decision.kind === 'admit' ? decision.unavailable : decision.down) refusals.inc({ expert, reason: 'unavailable' });
      return decision;
    },
  };
  const service = new RouterService({
    manifest,
    router: new InstructionRouter(manifest, { model: deps.routerModel }),
    dispatcher,
    completions: inbox,
    images: blobs,
    // Nobody else waits for a result the router fused: stored, not published.
    results: { get: readStored, store: (result) => resultStore.store(result) },
    maxImages: config.MAX_IMAGES_PER_REQUEST,
    deadlines: {
      defaultMs: config.DEFAULT_DEADLINE_MS,
      maxMs: config.MAX_DEADLINE_MS,
      reserveFraction: config.FUSE_RESERVE_FRACTION,
      reserveMinMs: config.FUSE_RESERVE_MIN_MS,
      reserveMaxMs: config.FUSE_RESERVE_MAX_MS,
      deadlineJobGraceMs: config.DEADLINE_JOB_GRACE_MS,
      longTask: { defaultMs: config.LONG_TASK_DEFAULT_DEADLINE_MS, maxMs: config.LONG_TASK_MAX_DEADLINE_MS },
    },
    onArmFailed: (requestId, error) => logger.warn('arming the deadline job failed', { requestId, error: (error as Error).message }),
    onWithdrawn: (requestId, outcome) =>
      'error' in outcome
        ? logger.warn('withdrawing a cancelled request failed', { requestId, error: (outcome.error as Error).message })
        : logger.debug('cancelled request withdrawn', { requestId, runningJobs: outcome.runningJobs }),
    onFused: (result) => fusedResults.inc({ task: result.task, outcome: outcomeOf(result) }),
    capacity: admission,
    onRouted: (task, expertIds) => {
      expertsChosen.observe({ task }, expertIds.length);
      for (const expert of expertIds) selections.inc({ expert, task });
    },
  });

  const server = new grpc.Server();
  const liveness = (expertId: string) => {
    const entry = capacity.capacity(expertId);
    return entry ? { liveWorkers: entry.liveWorkers, waitingJobs: entry.interactiveWaiting } : undefined;
  };
  server.addService(
    loadRouterPackage().rsmoe.v1.Router.service,
    createRouterHandlers(service, logger, (method, code, seconds) => grpcDuration.observe({ method, code }, seconds), liveness),
  );
  server.addService(loadHealthPackage().grpc.health.v1.Health.service, createHealthHandlers(() => redis.status === 'ready'));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.GRPC_HOST}:${config.GRPC_PORT}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return {
    manifest,
    service,
    capacity,
    inbox,
    port,
    async close() {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await capacity.stop();
      await probe.close();
      await dispatcher.close();
      await Promise.all(queues.map((queue) => queue.close()));
    },
  };
}
