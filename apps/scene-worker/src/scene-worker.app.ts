import { open } from 'node:fs/promises';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import sharp from 'sharp';
import { RedisBlobStore } from '@rsmoe/blobstore';
import {
  AGGREGATE_QUEUE,
  SCENES_QUEUE,
  SCENE_QUEUE_JOBS,
  createRedisKeys,
  deadlineJobId,
  expertJobId,
  expertQueueName,
  loadPackManifest,
} from '@rsmoe/contracts';
import { startTypedWorker, type TypedWorker } from '@rsmoe/jobs';
import type { Logger, RedisErrorEmitter } from '@rsmoe/observability';
import { SceneFileStore, SceneStateStore, SceneStoreSweeper, openSceneRaster } from '@rsmoe/scenes';
import { SceneDriver } from './scene-driver';
import type { SceneWorkerConfig } from './scene-worker.config';
import { TileRouterClient, type TileRouterPort } from './tile-router.adapter';

export interface SceneWorkerDeps {
  /** Commands: scene state, blobs, removing queued tile jobs. */
  redis: Redis;
  /** The worker's own connection (BullMQ blocks on it). */
  workerConnection: Redis;
  logger: Logger;
  /** Default: a TileRouterClient on ROUTER_URL (closed with the app). */
  router?: TileRouterPort;
  watchEmitter?: <Emitter extends RedisErrorEmitter>(emitter: Emitter, name: string) => Emitter;
}

export interface SceneWorkerApp {
  driver: SceneDriver;
  worker: TypedWorker;
  ready(): Promise<void>;
  /** Stops taking scenes; a running scene is interrupted (it resumes on the next pick-up) unless `wait`. */
  close(): Promise<void>;
}

/**
 * The scene worker without its process edges: one typed worker on `scenes` whose only handler drives a scene
 * (SceneDriver). Its BullMQ lock is short (SCENE_LOCK_MS) and stalled jobs are looked for every
 * SCENE_STALLED_CHECK_MS, so a scene whose worker died is picked up again within seconds, by this worker once
 * restarted or by any other; it is never failed for stalling (maxStalledCount is effectively unbounded).
 */
export function createSceneWorkerApp(config: SceneWorkerConfig, deps: SceneWorkerDeps): SceneWorkerApp {
  const watch = deps.watchEmitter ?? (<Emitter>(emitter: Emitter) => emitter);
  const manifest = loadPackManifest(config.PACK_DIR);
  const keys = createRedisKeys(config.KEY_PREFIX);
  const queues = new Map<string, Queue>();
  const queue = (name: string): Queue => {
    let found = queues.get(name);
    if (!found) {
      found = watch(new Queue(name, { connection: deps.redis, prefix: config.QUEUE_PREFIX }), `bullmq-queue ${name}`);
      queues.set(name, found);
    }
    return found;
  };
  const ownsRouter = deps.router === undefined;
  const router = deps.router ?? new TileRouterClient(config.ROUTER_URL);
  const blobs = new RedisBlobStore(deps.redis, { keyPrefix: config.KEY_PREFIX, ttlSeconds: config.BLOB_TTL_S, maxBytes: 256 * 1024 * 1024 });
  const state = new SceneStateStore(deps.redis, keys);
  const files = new SceneFileStore(config.SCENE_STORE_DIR);
  const driver = new SceneDriver(
    {
      state,
      files,
      // Limits were checked when the scene was accepted; the file is the one that passed them.
      openRaster: async (_spec, path) => {
        const handle = await open(path, 'r');
        const head = Buffer.alloc(8);
        await handle.read(head, 0, 8, 0).finally(() => handle.close());
        return openSceneRaster(path, head, { maxPixels: Number.MAX_SAFE_INTEGER });
      },
      blobs: {
        put: async (bytes, mediaType) => {
          const { sha256, byteLength, mediaType: stored } = await blobs.put(bytes, mediaType);
          return { sha256, byteLength, mediaType: stored };
        },
        delete: (sha256) => blobs.delete(sha256),
      },
      encodePng: (rgb, width, height) => sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 3 }).toBuffer(),
      router,
      removeTileJobs: async (requestIds) => {
        let removed = 0;
        for (const requestId of requestIds) {
          for (const expert of manifest.experts) removed += await queue(expertQueueName(expert.id)).remove(expertJobId(requestId, expert.id));
          removed += await queue(AGGREGATE_QUEUE).remove(deadlineJobId(requestId));
        }
        return removed;
      },
      sweepSceneJobs: async (sceneId) => {
        let removed = 0;
        for (const expert of manifest.experts) {
          const expertQueue = queue(expertQueueName(expert.id));
          for (const job of await expertQueue.getJobs(['prioritized', 'delayed'])) {
            if (job?.id?.startsWith(`${sceneId}-`)) removed += await expertQueue.remove(job.id);
          }
        }
        return removed;
      },
      logger: deps.logger,
    },
    {
      tileConcurrency: config.SCENE_TILE_CONCURRENCY,
      tileTimeoutMs: config.SCENE_TILE_TIMEOUT_MS,
      longTileTimeoutMs: config.SCENE_LONG_TILE_TIMEOUT_MS,
      maxTimeouts: config.SCENE_TILE_MAX_TIMEOUTS,
      resultTtlSeconds: config.SCENE_RESULT_TTL_S,
      cancelPollMs: config.SCENE_CANCEL_POLL_MS,
    },
  );
  const worker = startTypedWorker({
    queueName: SCENES_QUEUE,
    catalogue: SCENE_QUEUE_JOBS,
    handlers: {
      'drive-scene': async (data, { signal }) => ({ status: await driver.drive(data.sceneId, signal) }),
    },
    connection: deps.workerConnection,
    prefix: config.QUEUE_PREFIX,
    concurrency: config.SCENE_CONCURRENCY,
    lockDuration: config.SCENE_LOCK_MS,
    stalledInterval: config.SCENE_STALLED_CHECK_MS,
    maxStalledCount: 1_000_000,
    onFailed: (job, error) => deps.logger.warn('scene job failed (retried unless permanent)', { jobId: job?.id, error: error.message }),
    onError: (error) => deps.logger.warn('scene worker error', { error: error.message }),
  });
  watch(worker.worker, 'bullmq-worker');
  const sweeper = new SceneStoreSweeper(files, state, config.SCENE_SWEEP_GRACE_S * 1000);
  const sweep = setInterval(() => {
    sweeper.sweepOnce().then(
      (removed) => removed.length > 0 && deps.logger.info('swept expired scenes from the scene store', { scenes: removed.length }),
      (error: unknown) => deps.logger.warn('sweeping the scene store failed', { error: (error as Error).message }),
    );
  }, config.SCENE_SWEEP_INTERVAL_S * 1000);
  sweep.unref();
  return {
    driver,
    worker,
    ready: async () => void (await worker.worker.waitUntilReady()),
    async close() {
      clearInterval(sweep);
      // Running scenes are interrupted, not failed: their state stays in Redis and the next pick-up resumes them.
      await worker.close(true);
      await Promise.all([...queues.values()].map((q) => q.close()));
      if (ownsRouter) router.close();
    },
  };
}
