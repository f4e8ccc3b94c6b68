import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGGREGATE_QUEUE, deadlineJobId, expertJobId, expertQueueName } from '@rsmoe/contracts';
import { aggregateJobData, expertJobData } from '../../../libs/contracts/test-support/fixtures';
import { JobDispatcher } from './job-dispatcher.adapter';
import { deleteKeysWithPrefix } from '../../../test/support/redis-cleanup';

/** The router's queue edge on real Redis and BullMQ, under a prefix no other run shares. */
describe('JobDispatcher on real Redis', () => {
  const prefix = `jdtest${randomBytes(5).toString('hex')}`;
  let redis: Redis;
  let dispatcher: JobDispatcher;
  const queues: Queue[] = [];
  const queue = (name: string): Queue => {
    const made = new Queue(name, { connection: redis, prefix });
    queues.push(made);
    return made;
  };

  beforeAll(() => {
    redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
    dispatcher = new JobDispatcher(redis, { queuePrefix: prefix, attempts: 1, backoffMs: 10, retentionSeconds: 60, cancelChannel: `${prefix}:cancelled-requests` });
  });

  afterAll(async () => {
    await dispatcher.close();
    await Promise.all(queues.map((made) => made.close()));
    // Every key of this run (jobs, queues).
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  });

  it('withdraws a cancelled request: its waiting jobs and its deadline job go; the job a worker holds stays', async () => {
    const requestId = 'withdraw1';
    const future = Date.now() + 60_000;
    await dispatcher.dispatch(
      ['theme', 'object', 'relation'].map((expertId) => expertJobData({ requestId, expertId, deadlineUnixMs: future, fuseAtUnixMs: future - 1_000 })),
    );
    await dispatcher.armDeadline(aggregateJobData({ requestId, deadlineUnixMs: future, fuseAtUnixMs: future - 1_000 }));
    // A worker picks theme's job up: it is active and locked.
    const workerConnection = redis.duplicate();
    const worker = new Worker(expertQueueName('theme'), null, { connection: workerConnection, prefix, autorun: false });
    const held = await worker.getNextJob('test-lock-token');
    expect(held?.id).toBe(expertJobId(requestId, 'theme'));

    const cancels: string[] = [];
    const subscriber = redis.duplicate();
    subscriber.on('message', (_channel: string, message: string) => cancels.push(message));
    await subscriber.subscribe(`${prefix}:cancelled-requests`);

    // One job left running: the one the worker holds; its expert is told to stop it.
    expect(await dispatcher.withdraw(requestId, ['theme', 'object', 'relation'])).toBe(1);
    for (let i = 0; i < 100 && cancels.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(cancels).toEqual([requestId]);
    const theme = queue(expertQueueName('theme'));
    expect(await theme.getJobState(expertJobId(requestId, 'theme'))).toBe('active');
    for (const expertId of ['object', 'relation']) expect(await queue(expertQueueName(expertId)).getJob(expertJobId(requestId, expertId))).toBeUndefined();
    expect(await queue(AGGREGATE_QUEUE).getJob(deadlineJobId(requestId))).toBeUndefined();
    // Another request's jobs are untouched.
    await dispatcher.dispatch([expertJobData({ requestId: 'other1', expertId: 'object', deadlineUnixMs: future, fuseAtUnixMs: future - 1_000 })]);
    await dispatcher.withdraw(requestId, ['object']);
    expect(await queue(expertQueueName('object')).getJobState(expertJobId('other1', 'object'))).toBe('waiting');
    // Nothing of that withdraw was running: no cancel published.
    await new Promise((r) => setTimeout(r, 50));
    expect(cancels).toEqual([requestId]);
    subscriber.disconnect();
    await worker.close(true);
    workerConnection.disconnect();
  });
});
