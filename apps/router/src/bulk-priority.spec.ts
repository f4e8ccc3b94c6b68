import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { BULK_JOB_PRIORITY, expertQueueName, type ExpertJobData } from '@rsmoe/contracts';
import { JobDispatcher } from './job-dispatcher.adapter';

function job(requestId: string): ExpertJobData {
  return {
    requestId,
    task: 'caption',
    expertId: 'theme',
    prompt: 'describe',
    images: [{ sha256: 'a'.repeat(64), byteLength: 1, mediaType: 'image/png' }],
    generation: {},
    deadlineUnixMs: Date.now() + 60_000,
    fuseAtUnixMs: Date.now() + 50_000,
    enqueuedAtUnixMs: Date.now(),
    replyTo: 'rsmoe:inbox:test',
  } as ExpertJobData;
}

/** The bulk path on real Redis and BullMQ: a scene's tile jobs wait behind every interactive job. */
describe('bulk priority (a scene’s tiles)', () => {
  const prefix = `bulk${randomBytes(4).toString('hex')}`;
  const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  const dispatcher = new JobDispatcher(redis, { queuePrefix: prefix, attempts: 1, backoffMs: 100, retentionSeconds: 60 });
  const queue = new Queue(expertQueueName('theme'), { connection: redis, prefix });

  afterAll(async () => {
    await dispatcher.close();
    await queue.obliterate({ force: true });
    await queue.close();
    redis.disconnect();
  });

  it('adds bulk jobs at BULK_JOB_PRIORITY, and a worker takes an interactive job added later first', async () => {
    await dispatcher.dispatch([job('tile1'), job('tile2')], { priority: 'bulk' });
    await dispatcher.dispatch([job('interactive')]);
    expect(await queue.getJobCounts('prioritized', 'waiting')).toEqual({ prioritized: 2, waiting: 1 });
    expect((await queue.getJob('tile1.theme'))?.opts.priority).toBe(BULK_JOB_PRIORITY);
    const order: string[] = [];
    const worker = new Worker(
      expertQueueName('theme'),
      async (taken) => {
        order.push(String(taken.data.requestId));
      },
      { connection: redis.duplicate({ maxRetriesPerRequest: null }), prefix, concurrency: 1 },
    );
    while (order.length < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    await worker.close();
    expect(order).toEqual(['interactive', 'tile1', 'tile2']);
  });
});
