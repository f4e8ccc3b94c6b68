import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expertQueueName } from '@rsmoe/contracts';
import { ExpertQueueProbe } from './expert-queue-probe.adapter';

const REDIS_URL = 'redis://127.0.0.1:6379';

describe('ExpertQueueProbe (real Redis)', () => {
  const prefix = `probe${randomBytes(5).toString('hex')}`;
  let redis: Redis;
  let probe: ExpertQueueProbe;
  let queue: Queue;

  beforeAll(async () => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    probe = new ExpertQueueProbe(redis, prefix);
    queue = new Queue(expertQueueName('theme'), { connection: redis, prefix });
  });

  afterAll(async () => {
    await probe.close();
    await queue.obliterate({ force: true });
    await queue.close();
    redis.disconnect();
  });

  it('sees a worker connect and, once its connection is gone, sees none (BullMQ CLIENT LIST)', async () => {
    expect((await probe.sample('theme', 10_000)).liveWorkers).toBe(0);
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const worker = new Worker(expertQueueName('theme'), async () => 'done', { connection, prefix, autorun: true });
    await worker.waitUntilReady();
    // The worker names its blocking connection when it starts waiting for jobs.
    await expect.poll(async () => (await probe.sample('theme', 10_000)).liveWorkers, { timeout: 5_000 }).toBe(1);
    // Another expert's queue sees nobody.
    expect((await probe.sample('object', 10_000)).liveWorkers).toBe(0);
    // A killed process's connections drop at once: disconnect without closing the worker.
    await worker.close(true);
    connection.disconnect();
    await expect.poll(async () => (await probe.sample('theme', 10_000)).liveWorkers, { timeout: 5_000 }).toBe(0);
  });

  it('counts interactive (priority 0) and bulk (priority > 0) waiting jobs apart, and finished jobs in the window', async () => {
    await queue.addBulk([
      { name: 'generate', data: {} },
      { name: 'generate', data: {} },
      { name: 'generate', data: {}, opts: { priority: 5 } },
    ]);
    expect(await probe.sample('theme', 10_000)).toMatchObject({ interactiveWaiting: 2, bulkWaiting: 1, finishedInWindow: 0 });
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    let seen = 0;
    const worker = new Worker(
      expertQueueName('theme'),
      async () => {
        seen += 1;
        if (seen === 3) throw new Error('boom');
        return 'ok';
      },
      { connection, prefix },
    );
    await expect.poll(async () => (await probe.sample('theme', 10_000)).finishedInWindow, { timeout: 5_000 }).toBe(3);
    await worker.close();
    connection.disconnect();
    expect(await probe.sample('theme', 10_000)).toMatchObject({ interactiveWaiting: 0, bulkWaiting: 0 });
    // Finished more than the window ago: not counted.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await probe.sample('theme', 1_000)).finishedInWindow).toBe(0);
  });
});
