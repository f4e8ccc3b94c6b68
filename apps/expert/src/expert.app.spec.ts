import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBlobStore } from '@rsmoe/blobstore';
import { REPO_ROOT } from '@rsmoe/config';
import { JOB_NAMES, createRedisKeys, expertQueueName, parseExpertJobFailure, parseRouterInboxMessage, type ExpertJobData, type ExpertJobResult, type RouterInboxMessage } from '@rsmoe/contracts';
import { createLogger } from '@rsmoe/observability';
import { readEncoderId } from '@rsmoe/runtime';
import { createExpertApp, type ExpertApp, type LoadedExpertModel } from './expert.app';
import { loadExpertConfig } from './expert.config';

const prefix = `expertapp${randomBytes(4).toString('hex')}`;
const REDIS_URL = 'redis://127.0.0.1:6379';

describe('createExpertApp (in-process, real Redis, the tiny pack)', () => {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const subscriber = new Redis(REDIS_URL);
  const queue = new Queue(expertQueueName('theme'), { connection: redis, prefix });
  const published: RouterInboxMessage[] = [];
  const replyTo = `${prefix}:inbox:test`;
  let app: ExpertApp;
  let image: { sha256: string; byteLength: number; mediaType: string };

  beforeAll(async () => {
    const config = loadExpertConfig({
      EXPERT_ID: 'theme',
      PACK_DIR: resolve(REPO_ROOT, 'models/fixtures/tiny-pack'),
      REDIS_URL,
      KEY_PREFIX: prefix,
      QUEUE_PREFIX: prefix,
      METRICS_PORT: '0',
      EXECUTION_PROVIDER: 'cpu',
      INTRA_OP_THREADS: '1',
    });
    app = await createExpertApp(config, { logger: createLogger('expert.theme', { level: 'error' }) });
    const blobs = new RedisBlobStore(redis, { keyPrefix: prefix, ttlSeconds: 60, maxBytes: 1 << 20 });
    image = await blobs.put(new Uint8Array(await sharp({ create: { width: 32, height: 32, channels: 3, background: '#557733' } }).png().toBuffer()), 'image/png');
    await subscriber.subscribe(replyTo);
    subscriber.on('message', (_channel, message: string) => published.push(parseRouterInboxMessage(message)));
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    subscriber.disconnect();
    redis.disconnect();
  });

  function data(requestId: string, overrides: Partial<ExpertJobData> = {}): ExpertJobData {
    const now = Date.now();
    return {
      requestId,
      task: 'caption',
      expertId: 'theme',
      prompt: 'describe the scene theme of the image .',
      images: [image],
      generation: { maxNewTokens: 6 },
      deadlineUnixMs: now + 30_000,
      fuseAtUnixMs: now + 29_000,
      enqueuedAtUnixMs: now,
      replyTo,
      ...overrides,
    };
  }

  async function settled(job: Job): Promise<Job> {
    for (let attempt = 0; attempt < 400; attempt++) {
      const state = await job.getState();
      if (state === 'completed' || state === 'failed') return (await Job.fromId(queue, job.id!))!;
      await new Promise((resolveWait) => setTimeout(resolveWait, 25));
    }
    throw new Error(`job ${job.id} did not settle`);
  }

  it('serves a job: the output is the return value and is published to replyTo', async () => {
    const job = await settled(await queue.add(JOB_NAMES.expertGenerate, data('ok1'), { jobId: 'ok1.theme' }));
    const output = job.returnvalue as ExpertJobResult;
    expect(output).toMatchObject({ expertId: 'theme', status: 'ok', generatedTokens: 6, finishReason: 'length' });
    expect(output.errorCode).toBeUndefined();
    expect(published.find((message) => message.requestId === 'ok1')).toMatchObject({ kind: 'partial', output: { text: output.text } });
  });

  it('drops a job past its fuse point without computing it: deadline_exceeded', async () => {
    const now = Date.now();
    const job = await settled(
      await queue.add(JOB_NAMES.expertGenerate, data('late1', { deadlineUnixMs: now + 60_000, fuseAtUnixMs: now - 1 }), { jobId: 'late1.theme' }),
    );
    expect(job.returnvalue).toMatchObject({ status: 'timed_out', errorCode: 'deadline_exceeded', generatedTokens: 0, promptTokens: 0 });
  });

  it('stops a long generation at its fuse point and answers deadline_exceeded', async () => {
    // 512 tokens with 8 beams take the tiny model several hundred ms on an idle machine, so a fuse point
    // 50 ms away comes first (a job picked up after it is dropped, answered the same way).
    const now = Date.now();
    const job = await settled(
      await queue.add(JOB_NAMES.expertGenerate, data('long1', { generation: { maxNewTokens: 512, numBeams: 8 }, fuseAtUnixMs: now + 50 }), { jobId: 'long1.theme' }),
    );
    const output = job.returnvalue as ExpertJobResult;
    expect(output).toMatchObject({ status: 'timed_out', errorCode: 'deadline_exceeded', text: '' });
    expect(output.generatedTokens).toBeLessThan(512);
    // Answered close to the fuse point, not after 500 tokens.
    expect(job.finishedOn! - now).toBeLessThan(5_000);
  });

  it('stops a running job when a router publishes its request as cancelled, and answers cancelled long before the fuse point', async () => {
    const now = Date.now();
    const job = await queue.add(JOB_NAMES.expertGenerate, data('cancel1', { generation: { maxNewTokens: 512, numBeams: 8 }, fuseAtUnixMs: now + 25_000 }), { jobId: 'cancel1.theme' });
    for (let i = 0; i < 400 && (await job.getState()) !== 'active'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await job.getState()).toBe('active');
    // What JobDispatcher.withdraw publishes for a job a worker already holds.
    await redis.publish(createRedisKeys(prefix).requestCancelChannel(), 'cancel1');
    const done = await settled(job);
    const output = done.returnvalue as ExpertJobResult;
    expect(output).toMatchObject({ errorCode: 'cancelled', text: '' });
    expect(done.finishedOn! - now).toBeLessThan(10_000);
  });

  it('fails an undecodable or a missing image for good, with its errorCode in the failure reason', async () => {
    const blobs = new RedisBlobStore(redis, { keyPrefix: prefix, ttlSeconds: 60, maxBytes: 1 << 20 });
    const broken = await blobs.put(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4), 'image/png');
    const options = { attempts: 3, backoff: { type: 'fixed', delay: 10 } };
    const bad = await settled(await queue.add(JOB_NAMES.expertGenerate, data('bad1', { images: [broken] }), { jobId: 'bad1.theme', ...options }));
    expect(parseExpertJobFailure(bad.failedReason)).toMatchObject({ errorCode: 'invalid_image', message: expect.stringMatching(/image_undecodable/) });
    expect(bad.attemptsMade).toBe(1);
    const missing = await settled(
      await queue.add(JOB_NAMES.expertGenerate, data('gone1', { images: [{ ...image, sha256: 'f'.repeat(64) }] }), { jobId: 'gone1.theme', ...options }),
    );
    expect(parseExpertJobFailure(missing.failedReason)).toMatchObject({ errorCode: 'image_missing' });
    const params = await settled(await queue.add(JOB_NAMES.expertGenerate, { ...data('params1'), images: [] }, { jobId: 'params1.theme', ...options }));
    expect(parseExpertJobFailure(params.failedReason)).toMatchObject({ errorCode: 'invalid_params' });
    // Each final failure is reported to the router's inbox at once, with the job's failure reason.
    for (const job of [bad, missing, params]) {
      await expect
        .poll(() => published.find((message) => message.kind === 'failure' && message.requestId === job.data.requestId))
        .toEqual({ kind: 'failure', requestId: job.data.requestId, expertId: 'theme', reason: job.failedReason });
    }
  });

  it('answers readiness on its metrics port, bound to loopback by default', async () => {
    const response = await fetch(`http://127.0.0.1:${app.metricsPort}/health/ready`);
    expect(response.status).toBe(200);
  });
});

describe('createExpertApp: a job computing longer than its lock keeps the lock', () => {
  const lockPrefix = `expertlock${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(expertQueueName('theme'), { connection: redis, prefix: lockPrefix });
  let app: ExpertApp | undefined;

  afterAll(async () => {
    await app?.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    const keys = await redis.keys(`${lockPrefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('renews a 1 s lock through 3 s of decoding steps (each one synchronous, as an onnxruntime run is) and completes once', async () => {
    const config = loadExpertConfig({
      EXPERT_ID: 'theme',
      PACK_DIR: resolve(REPO_ROOT, 'models/fixtures/tiny-pack'),
      REDIS_URL,
      KEY_PREFIX: lockPrefix,
      QUEUE_PREFIX: lockPrefix,
      METRICS_PORT: '0',
      JOB_LOCK_MS: '1000',
    });
    const busy = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // a decoder step holding the thread
      }
    };
    const encoderId = await readEncoderId(resolve(REPO_ROOT, 'models/fixtures/tiny-llava'));
    const model: LoadedExpertModel = {
      encoderId,
      executionProvider: 'cpu',
      featurePacking: () => 'single-crop',
      encodeImages: async () => [{ encoderId, packing: 'single-crop', tokens: 1, hiddenSize: 1, data: new Float32Array(1) }],
      // 150 steps of 20 ms, each started from setImmediate like onnxruntime-node's session.run.
      generate: async (requests) => {
        for (let step = 0; step < 150; step++) await new Promise<void>((resolveStep) => setImmediate(() => (busy(20), resolveStep())));
        return requests.map(() => ({ text: 'done', tokenIds: [1], promptTokens: 1, generatedTokens: 1, finishReason: 'length' as const, timings: { preprocessMs: 0, visionEncodeMs: 0, prefillMs: 0, decodeMs: 0, timeToFirstTokenMs: 0, totalMs: 0 } }));
      },
      release: async () => undefined,
    };
    app = await createExpertApp(config, { logger: createLogger('expert.theme', { level: 'error' }), loadModel: async () => model });
    const image = await new RedisBlobStore(redis, { keyPrefix: lockPrefix, ttlSeconds: 60, maxBytes: 1 << 20 }).put(
      new Uint8Array(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png().toBuffer()),
      'image/png',
    );
    const now = Date.now();
    const job = await queue.add(
      JOB_NAMES.expertGenerate,
      { requestId: 'lock1', task: 'caption', expertId: 'theme', prompt: 'describe .', images: [image], generation: {}, deadlineUnixMs: now + 60_000, enqueuedAtUnixMs: now, replyTo: `${lockPrefix}:inbox` },
      { jobId: 'lock1.theme' },
    );
    const stalled: string[] = [];
    app.worker.on('stalled', (jobId) => stalled.push(jobId));
    // Well past the 1 s lock, mid-computation: the lock is still there, renewed.
    await new Promise((resolveWait) => setTimeout(resolveWait, 1_800));
    expect(await job.getState(), (await Job.fromId(queue, 'lock1.theme'))?.failedReason).toBe('active');
    expect(await redis.pttl(`${lockPrefix}:${expertQueueName('theme')}:lock1.theme:lock`)).toBeGreaterThan(0);
    for (let attempt = 0; attempt < 200 && (await job.getState()) !== 'completed'; attempt++) await new Promise((resolveWait) => setTimeout(resolveWait, 25));
    const finished = (await Job.fromId(queue, 'lock1.theme'))!;
    expect(finished.returnvalue).toMatchObject({ status: 'ok', text: 'done' });
    expect(finished.attemptsStarted).toBe(1);
    expect(stalled).toEqual([]);
  }, 30_000);
});
