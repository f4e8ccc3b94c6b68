import { Redis } from 'ioredis';
import { RedisBlobStore } from '@rsmoe/blobstore';
import { checkSharedEncoders, createRedisKeys, expertDtype, formatDtypeSetting, loadPackManifest, type RouterInboxMessage } from '@rsmoe/contracts';
import { ServiceMetrics, createLogger, drainOnSignals, runService, startOpsServer, redisReadiness } from '@rsmoe/observability';
import { VlmRuntime, readEncoderId } from '@rsmoe/runtime';
import { loadExpertConfig } from './expert.config';
import { ExpertJobProcessor } from './expert-job.processor';
import { ExpertMetrics } from './expert-metrics';
import { startExpertWorker } from './expert.worker';
import { RedisFeatureCache } from './feature-cache.adapter';

async function main(): Promise<void> {
  const config = loadExpertConfig(process.env);
  const logger = createLogger(`expert.${config.EXPERT_ID}`, { level: config.LOG_LEVEL });
  const manifest = loadPackManifest(config.PACK_DIR);
  const expert = manifest.experts.find((candidate) => candidate.id === config.EXPERT_ID);
  if (!expert) {
    throw new Error(`EXPERT_ID "${config.EXPERT_ID}" is not in pack ${manifest.name} (experts: ${manifest.experts.map((e) => e.id).join(', ')})`);
  }
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const loading: { runtime?: VlmRuntime } = {};
  const serviceMetrics = new ServiceMetrics();
  // Up before the model loads: liveness answers during a long load, readiness waits for the model.
  const ops = await startOpsServer({
    port: config.METRICS_PORT,
    host: config.METRICS_HOST,
    metrics: serviceMetrics,
    readiness: [
      { name: 'model', check: async () => void (loading.runtime ?? fail(`model ${expert.modelName} is still loading`)) },
      redisReadiness(redis),
    ],
    logger,
  });
  const dtype = expertDtype(expert, config.MODEL_DTYPE);
  const runtime = await VlmRuntime.load(expert.modelDir, {
    executionProvider: config.EXECUTION_PROVIDER,
    intraOpThreads: config.INTRA_OP_THREADS,
    dtype,
    logger,
  });
  // The pack says which experts share image features (same encoderId): refuse to serve when a peer's
  // encoder, at its dtype, is not this one (the cache would silently hold one entry per encoder).
  await checkSharedEncoders(manifest, readEncoderId, { dtypeOverride: config.MODEL_DTYPE, expertId: expert.id, known: { [expert.id]: runtime.encoderId } });
  loading.runtime = runtime;
  const metrics = new ExpertMetrics(serviceMetrics, { expert: expert.id, model: expert.modelName, version: manifest.version });
  const keys = createRedisKeys(config.KEY_PREFIX);
  const processor = new ExpertJobProcessor({
    expertId: expert.id,
    modelName: expert.modelName,
    model: runtime,
    images: new RedisBlobStore(redis, { keyPrefix: config.KEY_PREFIX, ttlSeconds: config.BLOB_TTL_S, maxBytes: config.BLOB_MAX_BYTES }),
    features: new RedisFeatureCache(redis, keys, {
      ttlSeconds: config.FEATURE_CACHE_TTL_S,
      lockTimeoutMs: 5_000,
      pollIntervalMs: 1,
      memoryBytes: config.FEATURE_MEMORY_CACHE_MB * 1024 * 1024,
    }),
    batching: { maxBatchSize: config.MAX_BATCH_SIZE, maxWaitMs: config.MAX_BATCH_WAIT_MS, onBatch: (size) => metrics.batch(size) },
    publishPartial: async (replyTo, requestId, output) => {
      const message: RouterInboxMessage = { kind: 'partial', requestId, output };
      await redis.publish(replyTo, JSON.stringify(message));
    },
  });
  const worker = startExpertWorker({
    expertId: expert.id,
    connection: new Redis(config.REDIS_URL, { maxRetriesPerRequest: null }),
    queuePrefix: config.QUEUE_PREFIX,
    concurrency: Math.max(config.CONCURRENCY, 1),
    processor,
    metrics,
    logger,
  });
  await worker.waitUntilReady();
  logger.info('expert ready', {
    expertId: expert.id,
    pack: manifest.name,
    model: expert.modelDir,
    dtype: formatDtypeSetting(dtype),
    encoderId: runtime.encoderId,
    provider: runtime.executionProvider,
    metricsPort: ops.port,
  });

  drainOnSignals({
    logger,
    timeoutMs: config.DRAIN_TIMEOUT_MS,
    // close() stops fetching and waits for active jobs; jobs not yet started stay in the queue.
    drain: () => worker.close(),
    release: async () => {
      await runtime.release();
      await ops.close();
      redis.disconnect();
    },
  });
}

function fail(message: string): never {
  throw new Error(message);
}

runService('expert', main);
