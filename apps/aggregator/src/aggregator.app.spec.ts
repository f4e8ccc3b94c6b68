import { randomBytes } from 'node:crypto';
import { FlowProducer, Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AGGREGATE_QUEUE,
  JOB_NAMES,
  aggregateJobId,
  createRedisKeys,
  deadlineJobId,
  expertJobId,
  expertQueueName,
  formatExpertJobFailure,
  parseInferenceResult,
  parseRouterInboxMessage,
  type AggregateJobData,
  type InferenceResultJson,
} from '@rsmoe/contracts';
import { ServiceMetrics, createLogger } from '@rsmoe/observability';
import { aggregateJobData, expertOutput } from '../../../libs/contracts/test-support/fixtures';
import { createAggregatorApp, type AggregatorApp } from './aggregator.app';
import { loadAggregatorConfig } from './aggregator.config';

const REDIS_URL = 'redis://127.0.0.1:6379';

describe('createAggregatorApp (in-process, real Redis)', () => {
  const prefix = `agg${randomBytes(5).toString('hex')}`;
  const config = loadAggregatorConfig({ REDIS_URL, KEY_PREFIX: prefix, QUEUE_PREFIX: prefix, METRICS_PORT: '0' });
  const keys = createRedisKeys(prefix);
  const inbox = `${prefix}:inbox:test`;
  const received: InferenceResultJson[] = [];
  let redis: Redis;
  let workerConnection: Redis;
  let subscriber: Redis;
  let app: AggregatorApp;
  let flows: FlowProducer;

  beforeAll(async () => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    workerConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    subscriber = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    await subscriber.subscribe(inbox);
    subscriber.on('message', (_channel, message: string) => {
      const parsed = parseRouterInboxMessage(message);
      if (parsed.kind === 'result') received.push(parsed.result);
    });
    app = createAggregatorApp(config, { redis, workerConnection, logger: createLogger('aggregator-test', { level: 'error' }), metrics: new ServiceMetrics() });
    await app.ready();
    flows = new FlowProducer({ connection: redis, prefix });
  });

  afterAll(async () => {
    await app.close(true);
    await flows.close();
    for (const name of [AGGREGATE_QUEUE, expertQueueName('object'), expertQueueName('relation')]) {
      const queue = new Queue(name, { connection: redis, prefix });
      await queue.obliterate({ force: true });
      await queue.close();
    }
    const stored = await redis.keys(`${prefix}:*`);
    if (stored.length > 0) await redis.del(...stored);
    subscriber.disconnect();
    workerConnection.disconnect();
    redis.disconnect();
  });

  function parent(requestId: string, overrides: Partial<AggregateJobData> = {}): AggregateJobData {
    return aggregateJobData({
      requestId,
      task: 'caption',
      question: undefined,
      questionType: undefined,
      routed: [
        { expertId: 'object', prompt: 'objects', reason: 'caption' },
        { expertId: 'relation', prompt: 'relations', reason: 'caption' },
      ],
      deadlineUnixMs: Date.now() + 30_000,
      fuseAtUnixMs: Date.now() + 27_000,
      receivedAtUnixMs: Date.now(),
      fusionStrategy: 'ordered-dedup',
      replyTo: inbox,
      correlationId: 'client-1',
      ...overrides,
    });
  }

  async function addFlow(data: AggregateJobData, experts = data.routed.map((r) => r.expertId)) {
    await flows.add({
      name: JOB_NAMES.aggregate,
      queueName: AGGREGATE_QUEUE,
      data,
      opts: { jobId: aggregateJobId(data.requestId) },
      children: experts.map((expertId) => ({
        name: JOB_NAMES.expertGenerate,
        queueName: expertQueueName(expertId),
        data: { expertId },
        opts: { jobId: expertJobId(data.requestId, expertId), ignoreDependencyOnFailure: true },
      })),
    });
  }

  /** Plain jobs, as the router adds them: one per expert, no parent. */
  async function addJobs(data: AggregateJobData, experts = data.routed.map((r) => r.expertId)) {
    for (const expertId of experts) {
      const queue = new Queue(expertQueueName(expertId), { connection: redis, prefix });
      await queue.add(JOB_NAMES.expertGenerate, { expertId }, { jobId: expertJobId(data.requestId, expertId) });
      await queue.close();
    }
  }

  async function storedResult(requestId: string): Promise<InferenceResultJson | undefined> {
    const value = await redis.get(keys.resultKey(requestId));
    return value ? parseInferenceResult(JSON.parse(value)) : undefined;
  }

  it('fuses the flow of a router before plain jobs once every child finished or failed: typed failure codes, the correlation id, published to the router', async () => {
    const data = parent('a1');
    await addFlow(data);
    // Fake experts: object answers, relation refuses the image with a typed failure.
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const experts = [
      new Worker(expertQueueName('object'), async () => expertOutput({ expertId: 'object', text: 'many cars.' }), { connection, prefix }),
      new Worker(
        expertQueueName('relation'),
        async () => {
          throw new UnrecoverableError(formatExpertJobFailure({ errorCode: 'invalid_image', message: 'image_undecodable: bad bytes' }));
        },
        { connection, prefix },
      ),
    ];
    try {
      await expect.poll(() => storedResult('a1'), { timeout: 10_000 }).toBeDefined();
    } finally {
      await Promise.all(experts.map((worker) => worker.close()));
      connection.disconnect();
    }
    const result = (await storedResult('a1'))!;
    expect(result).toMatchObject({ requestId: 'a1', correlationId: 'client-1', degraded: true, missingExperts: ['relation'], caption: 'Many cars.' });
    expect(result.experts[1]).toMatchObject({ expertId: 'relation', status: 'failed', errorCode: 'invalid_image', error: 'image_undecodable: bad bytes' });
    await expect.poll(() => received.find((r) => r.requestId === 'a1')).toEqual(result);
  });

  it('at the deadline job fuses whatever the jobs hold, a job still waiting deadline_exceeded, and a routed-around one expert_unavailable', async () => {
    const data = parent('a2', { unavailableExperts: ['relation'] });
    await addJobs(data, ['object']);
    const aggregate = new Queue(AGGREGATE_QUEUE, { connection: redis, prefix });
    await aggregate.add(JOB_NAMES.finalizeAtDeadline, data, { jobId: deadlineJobId('a2') });
    await aggregate.close();
    await expect.poll(() => storedResult('a2'), { timeout: 10_000 }).toBeDefined();
    const result = (await storedResult('a2'))!;
    expect(result.experts.map(({ expertId, status, errorCode }) => ({ expertId, status, errorCode }))).toEqual([
      { expertId: 'object', status: 'timed_out', errorCode: 'deadline_exceeded' },
      { expertId: 'relation', status: 'skipped', errorCode: 'expert_unavailable' },
    ]);
  });

  it('at the deadline job reads the outputs and final failures of plain jobs that finished, and publishes the result to the router', async () => {
    const data = parent('a4');
    await addJobs(data);
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const experts = [
      new Worker(expertQueueName('object'), async () => expertOutput({ expertId: 'object', text: 'many cars.' }), { connection, prefix }),
      new Worker(
        expertQueueName('relation'),
        async () => {
          throw new UnrecoverableError(formatExpertJobFailure({ errorCode: 'invalid_image', message: 'image_undecodable: bad bytes' }));
        },
        { connection, prefix },
      ),
    ];
    try {
      for (const expertId of ['object', 'relation']) {
        const queue = new Queue(expertQueueName(expertId), { connection: redis, prefix });
        await expect.poll(async () => (await queue.getJob(expertJobId('a4', expertId)))?.finishedOn, { timeout: 10_000 }).toBeDefined();
        await queue.close();
      }
    } finally {
      await Promise.all(experts.map((worker) => worker.close()));
      connection.disconnect();
    }
    expect(await storedResult('a4')).toBeUndefined();
    const aggregate = new Queue(AGGREGATE_QUEUE, { connection: redis, prefix });
    await aggregate.add(JOB_NAMES.finalizeAtDeadline, data, { jobId: deadlineJobId('a4') });
    await aggregate.close();
    await expect.poll(() => storedResult('a4'), { timeout: 10_000 }).toBeDefined();
    const result = (await storedResult('a4'))!;
    expect(result).toMatchObject({ requestId: 'a4', correlationId: 'client-1', degraded: true, missingExperts: ['relation'], caption: 'Many cars.' });
    expect(result.experts[1]).toMatchObject({ expertId: 'relation', status: 'failed', errorCode: 'invalid_image' });
    await expect.poll(() => received.find((r) => r.requestId === 'a4')).toEqual(result);
  });

  it('fails a job with invalid data at once, without retrying, and stores nothing', async () => {
    const aggregate = new Queue(AGGREGATE_QUEUE, { connection: redis, prefix });
    const job = await aggregate.add(JOB_NAMES.aggregate, { requestId: 'a3' }, { attempts: 3 });
    await expect.poll(async () => (await aggregate.getJob(job.id!))?.getState(), { timeout: 10_000 }).toBe('failed');
    expect((await aggregate.getJob(job.id!))?.attemptsMade).toBe(1);
    await aggregate.close();
    expect(await storedResult('a3')).toBeUndefined();
  });
});
