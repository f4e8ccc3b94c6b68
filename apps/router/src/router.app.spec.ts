import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBlobStore } from '@rsmoe/blobstore';
import {
  expertQueueName,
  imageRefToProto,
  loadRouterPackage,
  parseExpertJobData,
  type ExpertOutputJson,
  type ImageRefJson,
  type ProtoInferenceResult__Output,
  type ProtoRouterClient,
  type RouterInboxMessage,
} from '@rsmoe/contracts';
import { ServiceMetrics, createLogger } from '@rsmoe/observability';
import { createAggregatorApp, type AggregatorApp } from '../../aggregator/src/aggregator.app';
import { loadAggregatorConfig } from '../../aggregator/src/aggregator.config';
import { createRouterApp, type RouterApp } from './router.app';
import { loadRouterConfig } from './router.config';

const REDIS_URL = 'redis://127.0.0.1:6379';
const PACK_DIR = resolve(__dirname, '../../../models/fixtures/tiny-pack');
const EXPERTS = ['theme', 'object', 'relation'];

/**
 * The router and the aggregator in this process on real Redis, with fake experts: BullMQ workers on the
 * expert queues that publish their partial to the router's inbox and return it, as real experts do.
 */
describe('createRouterApp (in-process, real Redis, fake experts)', () => {
  const prefix = `rtr${randomBytes(5).toString('hex')}`;
  const env = { REDIS_URL, KEY_PREFIX: prefix, QUEUE_PREFIX: prefix, PACK_DIR, GRPC_PORT: '0', METRICS_PORT: '0', ROUTER_MODEL: 'off' };
  let redis: Redis;
  let subscriber: Redis;
  let aggregatorConnection: Redis;
  let router: RouterApp;
  let aggregator: AggregatorApp;
  let client: ProtoRouterClient;
  let image: ImageRefJson;
  const metrics = new ServiceMetrics();
  const experts = new Map<string, { worker: Worker; connection: Redis }>();
  const watched: string[] = [];

  function startExpert(expertId: string, options: { autorun?: boolean } = {}): Worker {
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const worker = new Worker(
      expertQueueName(expertId),
      async (job) => {
        const data = parseExpertJobData(job.data);
        const output: ExpertOutputJson = {
          expertId,
          prompt: data.prompt,
          text: `the ${expertId} of the scene .`,
          status: 'ok',
          promptTokens: 3,
          generatedTokens: 5,
          finishReason: 'eos',
          timings: { queueMs: 1, preprocessMs: 0, visionEncodeMs: 0, prefillMs: 1, decodeMs: 1, timeToFirstTokenMs: 1, computeMs: 2 },
          model: 'fake',
          featuresCached: false,
        };
        const message: RouterInboxMessage = { kind: 'partial', requestId: data.requestId, output };
        await redis.publish(data.replyTo, JSON.stringify(message));
        return output;
      },
      { connection, prefix, autorun: options.autorun ?? true },
    );
    experts.set(expertId, { worker, connection });
    return worker;
  }

  /** As kill -9 does: the worker's connections are dropped without a goodbye. */
  async function killExpert(expertId: string): Promise<void> {
    const expert = experts.get(expertId)!;
    experts.delete(expertId);
    expert.connection.disconnect();
    await expert.worker.close(true).catch(() => undefined);
  }

  beforeAll(async () => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    subscriber = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    aggregatorConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const logger = createLogger('router-app-test', { level: 'error' });
    router = await createRouterApp(loadRouterConfig({ ...env, EXPERT_POLL_INTERVAL_MS: '100', MAX_WAITING_PER_EXPERT: '3' }), {
      redis,
      subscriber,
      logger,
      metrics,
      watchEmitter: (emitter, name) => {
        watched.push(name);
        return emitter;
      },
    });
    aggregator = createAggregatorApp(loadAggregatorConfig(env), { redis, workerConnection: aggregatorConnection, logger, metrics: new ServiceMetrics() });
    await aggregator.ready();
    client = new (loadRouterPackage().rsmoe.v1.Router)(`127.0.0.1:${router.port}`, grpc.credentials.createInsecure());
    const blobs = new RedisBlobStore(redis, { keyPrefix: prefix, ttlSeconds: 300, maxBytes: 1 << 20 });
    const { sha256, byteLength, mediaType } = await blobs.put(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]), 'image/png');
    image = { sha256, byteLength, mediaType };
    for (const expertId of EXPERTS) startExpert(expertId);
  });

  afterAll(async () => {
    client?.close();
    await router?.close();
    await aggregator?.close(true);
    await Promise.all([...experts.keys()].map(killExpert));
    for (const name of ['aggregate', ...EXPERTS.map(expertQueueName)]) {
      const queue = new Queue(name, { connection: redis, prefix });
      await queue.obliterate({ force: true });
      await queue.close();
    }
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    subscriber.disconnect();
    aggregatorConnection.disconnect();
    redis.disconnect();
  });

  function caption(requestId: string, timeoutMs = 5_000) {
    return new Promise<{ error: grpc.ServiceError | null; value?: ProtoInferenceResult__Output }>((done) =>
      client.Caption(
        { requestId, images: [imageRefToProto(image)], correlationId: `client-${requestId}`, deadlineUnixMs: String(Date.now() + timeoutMs) },
        (error, value) => done({ error, value }),
      ),
    );
  }

  function liveWorkers() {
    return new Promise<Record<string, number | undefined>>((done, fail) =>
      client.ListExperts({}, (error, value) => (error ? fail(error) : done(Object.fromEntries(value!.experts.map((expert) => [expert.id, expert.liveWorkers]))))),
    );
  }

  it('answers a complete caption from live experts, with the correlation id, and lists every expert live', async () => {
    await expect.poll(liveWorkers, { timeout: 5_000 }).toEqual({ theme: 1, object: 1, relation: 1 });
    const { error, value } = await caption('ok1');
    expect(error).toBeNull();
    expect(value).toMatchObject({ requestId: 'ok1', correlationId: 'client-ok1', degraded: false });
    expect(value?.experts.map((expert) => expert.status)).toEqual(['OK', 'OK', 'OK']);
  });

  it('hands every BullMQ emitter it makes to watchEmitter (one outage log, no unhandled error events)', () => {
    const names = watched;
    expect(names).toContain('bullmq-queue aggregate (dispatch)');
    // The dispatcher's expert queues, made at the first request to each (the test above).
    for (const expertId of EXPERTS) expect(names).toContain(`bullmq-queue ${expertQueueName(expertId)} (dispatch)`);
    // The capacity probe's queues, made at its first poll (every 100 ms here).
    for (const expertId of EXPERTS) expect(names).toContain(`bullmq-queue ${expertQueueName(expertId)} (capacity probe)`);
  });

  it('routes around a killed expert at once: degraded with EXPERT_UNAVAILABLE, well before the deadline, no job queued for it', async () => {
    await killExpert('relation');
    await expect.poll(liveWorkers, { timeout: 5_000 }).toMatchObject({ relation: 0 });
    const started = Date.now();
    const { error, value } = await caption('dead1', 10_000);
    expect(error).toBeNull();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(value).toMatchObject({ degraded: true, missingExperts: ['relation'] });
    expect(value?.experts[2]).toMatchObject({ expertId: 'relation', status: 'SKIPPED', errorCode: 'EXPERT_UNAVAILABLE' });
    const relation = new Queue(expertQueueName('relation'), { connection: redis, prefix });
    expect(await relation.getJob('dead1.relation')).toBeUndefined();
    await relation.close();
    // Seen on /metrics: the expert down, and the request it was left out of.
    const { body } = await metrics.expose();
    expect(body).toContain('rsmoe_router_expert_live_workers{expert="relation"} 0');
    expect(body).toContain('rsmoe_router_expert_live_workers{expert="theme"} 1');
    expect(body).toContain('rsmoe_router_admission_refusals_total{expert="relation",reason="unavailable"} 1');
  });

  it('answers UNAVAILABLE at once, naming the experts, when no routed expert is alive', async () => {
    await killExpert('theme');
    await killExpert('object');
    await expect.poll(liveWorkers, { timeout: 5_000 }).toEqual({ theme: 0, object: 0, relation: 0 });
    const started = Date.now();
    const { error } = await caption('none1');
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(error?.details).toMatch(/no live worker for caption experts theme, object, relation/);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('refuses with RESOURCE_EXHAUSTED and retry-after-ms when an expert queue holds its limit of waiting jobs, before queueing anything', async () => {
    // Alive (connected) but not taking jobs: its queue fills.
    for (const expertId of EXPERTS) startExpert(expertId, { autorun: expertId !== 'object' });
    await expect.poll(liveWorkers, { timeout: 5_000 }).toEqual({ theme: 1, object: 1, relation: 1 });
    const object = new Queue(expertQueueName('object'), { connection: redis, prefix });
    await object.addBulk([1, 2, 3].map((n) => ({ name: 'generate', data: { n } })));
    // Bulk work (priority > 0) never counts against interactive requests.
    await object.addBulk([1, 2, 3, 4, 5].map((n) => ({ name: 'generate', data: { n }, opts: { priority: 10 } })));
    await expect.poll(() => new Promise((done) => client.ListExperts({}, (_e, v) => done(v?.experts.find((e) => e.id === 'object')?.waitingJobs))), { timeout: 5_000 }).toBe(3);
    const { error } = await caption('full1');
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error?.details).toMatch(/expert object has 3 interactive jobs waiting \(limit 3\)/);
    expect(Number(error?.metadata.get('retry-after-ms')[0])).toBeGreaterThanOrEqual(1_000);
    expect(await object.getJob('full1.object')).toBeUndefined();
    expect((await metrics.expose()).body).toContain('rsmoe_router_admission_refusals_total{expert="object",reason="queue_full"} 1');
    await object.close();
  });
});
