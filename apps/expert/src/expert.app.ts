import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { RedisBlobStore } from '@rsmoe/blobstore';
import {
  checkSharedEncoders,
  createRedisKeys,
  expertDtype,
  formatDtypeSetting,
  loadPackManifest,
  type DtypeSetting,
  type PackExpert,
  type RouterInboxMessage,
} from '@rsmoe/contracts';
import { RedisOutageLog, ServiceMetrics, createLogger, redisReadiness, startOpsServer, type Logger, type OpsServer } from '@rsmoe/observability';
import { VlmRuntime, readEncoderId, type ImageLimits } from '@rsmoe/runtime';
import type { ExpertConfig } from './expert.config';
import { ExpertJobProcessor, type ExpertModel } from './expert-job.processor';
import { ExpertMetrics } from './expert-metrics';
import { startExpertWorker } from './expert.worker';
import { RequestCancellations } from './request-cancellations';
import { RedisFeatureCache } from './feature-cache.adapter';

/** A loaded model an expert serves: what the processor uses, plus its release and its provider (for the log). */
export interface LoadedExpertModel extends ExpertModel {
  readonly executionProvider: string;
  release(): Promise<void>;
}

/** Replacements for what createExpertApp would otherwise build from the configuration. */
export interface ExpertDeps {
  logger?: Logger;
  /** Default: an ioredis client on REDIS_URL (closed with the app). A given one is left open. */
  redis?: Redis;
  /** Default: VlmRuntime.load of the expert's model directory. */
  loadModel?: (expert: PackExpert, options: { dtype: DtypeSetting; imageLimits: ImageLimits }) => Promise<LoadedExpertModel>;
}

export interface ExpertApp {
  readonly expertId: string;
  readonly logger: Logger;
  /** Port of the metrics + health server (the configured one, or the free one picked for 0). */
  readonly metricsPort: number;
  readonly worker: Worker;
  /** Stops fetching jobs and waits for the active ones (jobs not yet started stay in the queue). */
  drain(): Promise<void>;
  /** Releases the model, the ops server and the Redis connections the app made. */
  release(): Promise<void>;
  /** drain() then release(). */
  close(): Promise<void>;
}

/** The image limits of an expert's configuration. */
export function expertImageLimits(config: ExpertConfig): ImageLimits {
  return {
    maxBytes: config.BLOB_MAX_BYTES,
    maxPixels: config.IMAGE_MAX_PIXELS,
    maxSide: config.IMAGE_MAX_SIDE,
    maxDecodeBytes: config.IMAGE_MAX_DECODE_MB * 1024 * 1024,
  };
}

/**
 * Builds and starts one expert: the ops server first (liveness answers during a long model load, readiness
 * waits for the model), the model, the shared-encoder check, then the BullMQ worker on `expert.<id>`.
 * Resolves when the worker is connected. Configuration comes in already parsed (main.ts reads the
 * environment once); anything in `deps` replaces what would be built from it.
 */
export async function createExpertApp(config: ExpertConfig, deps: ExpertDeps = {}): Promise<ExpertApp> {
  const logger = deps.logger ?? createLogger(`expert.${config.EXPERT_ID}`, { level: config.LOG_LEVEL });
  const manifest = loadPackManifest(config.PACK_DIR);
  const expert = manifest.experts.find((candidate) => candidate.id === config.EXPERT_ID);
  if (!expert) {
    throw new Error(`EXPERT_ID "${config.EXPERT_ID}" is not in pack ${manifest.name} (experts: ${manifest.experts.map((e) => e.id).join(', ')})`);
  }
  const outages = new RedisOutageLog(logger);
  const ownsRedis = deps.redis === undefined;
  const redis = deps.redis ?? outages.watch(new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }), 'main');
  const loading: { model?: LoadedExpertModel; cancellations?: RequestCancellations } = {};
  const serviceMetrics = new ServiceMetrics();
  const ops: OpsServer = await startOpsServer({
    port: config.METRICS_PORT,
    host: config.METRICS_HOST,
    metrics: serviceMetrics,
    readiness: [
      {
        name: 'model',
        check: async () => {
          if (!loading.model) throw new Error(`model ${expert.modelName} is still loading`);
        },
      },
      redisReadiness(redis),
    ],
    logger,
  });
  const workerConnections: Redis[] = [];
  try {
    const dtype = expertDtype(expert, config.MODEL_DTYPE);
    const imageLimits = expertImageLimits(config);
    const model = await (deps.loadModel ?? loadRuntime(config, logger))(expert, { dtype, imageLimits });
    loading.model = model;
    // The pack says which experts share image features (same encoderId): refuse to serve when a peer's
    // encoder, at its dtype, is not this one (the cache would silently hold one entry per encoder).
    await checkSharedEncoders(manifest, readEncoderId, { dtypeOverride: config.MODEL_DTYPE, expertId: expert.id, known: { [expert.id]: model.encoderId } });
    const metrics = new ExpertMetrics(serviceMetrics, { expert: expert.id, model: expert.modelName, version: manifest.version });
    const keys = createRedisKeys(config.KEY_PREFIX);
    const processor = new ExpertJobProcessor({
      expertId: expert.id,
      modelName: expert.modelName,
      model,
      images: new RedisBlobStore(redis, { keyPrefix: config.KEY_PREFIX, ttlSeconds: config.BLOB_TTL_S, maxBytes: config.BLOB_MAX_BYTES }),
      features: new RedisFeatureCache(redis, keys, {
        ttlSeconds: config.FEATURE_CACHE_TTL_S,
        lockTimeoutMs: 5_000,
        pollIntervalMs: 1,
        memoryBytes: config.FEATURE_MEMORY_CACHE_MB * 1024 * 1024,
      }),
      batching: { maxBatchSize: config.MAX_BATCH_SIZE, maxWaitMs: config.MAX_BATCH_WAIT_MS, onBatch: (size) => metrics.batch(size) },
      imageLimits,
      publishPartial: async (replyTo, requestId, output) => {
        const message: RouterInboxMessage = { kind: 'partial', requestId, output };
        await redis.publish(replyTo, JSON.stringify(message));
      },
    });
    const connection = outages.watch(new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }), 'bullmq');
    workerConnections.push(connection);
    const cancellations = new RequestCancellations(outages.watch(new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }), 'cancel-subscriber'), keys.requestCancelChannel(), logger);
    loading.cancellations = cancellations;
    await cancellations.start();
    const typed = startExpertWorker({
      expertId: expert.id,
      connection,
      queuePrefix: config.QUEUE_PREFIX,
      concurrency: Math.max(config.CONCURRENCY, 1),
      lockDurationMs: config.JOB_LOCK_MS,
      processor,
      cancellations,
      reportFailure: async (replyTo, requestId, reason) => {
        const message: RouterInboxMessage = { kind: 'failure', requestId, expertId: expert.id, reason };
        await redis.publish(replyTo, JSON.stringify(message));
      },
      metrics,
      logger,
      outages,
    });
    const { worker } = typed;
    await worker.waitUntilReady();
    logger.info('expert ready', {
      expertId: expert.id,
      pack: manifest.name,
      model: expert.modelDir,
      dtype: formatDtypeSetting(dtype),
      encoderId: model.encoderId,
      provider: model.executionProvider,
      metricsPort: ops.port,
    });
    const drain = () => typed.close();
    const release = async (): Promise<void> => {
      await cancellations.close();
      await model.release();
      await ops.close();
      for (const client of workerConnections) client.disconnect();
      if (ownsRedis) redis.disconnect();
    };
    return {
      expertId: expert.id,
      logger,
      metricsPort: ops.port,
      worker,
      drain,
      release,
      close: async () => {
        await drain();
        await release();
      },
    };
  } catch (error) {
    await loading.cancellations?.close();
    await loading.model?.release();
    await ops.close();
    for (const client of workerConnections) client.disconnect();
    if (ownsRedis) redis.disconnect();
    throw error;
  }
}

function loadRuntime(config: ExpertConfig, logger: Logger): NonNullable<ExpertDeps['loadModel']> {
  return (expert, { dtype, imageLimits }) =>
    VlmRuntime.load(expert.modelDir, {
      executionProvider: config.EXECUTION_PROVIDER,
      intraOpThreads: config.INTRA_OP_THREADS,
      dtype,
      imageLimits,
      logger,
    });
}
