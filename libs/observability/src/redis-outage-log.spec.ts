import { EventEmitter } from 'node:events';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { PrivateRedis } from '../../../apps/cli/src/mesh/private-redis';
import { createLogger } from './logger';
import { RedisOutageLog } from './redis-outage-log';

function capture() {
  const lines: { level: string; msg: string; [key: string]: unknown }[] = [];
  const logger = createLogger('test', { level: 'debug', write: (line) => void lines.push(JSON.parse(line)) });
  return { lines, logger, visible: () => lines.filter((line) => line.level !== 'debug') };
}

class FakeClient extends EventEmitter {
  status = 'ready';
}

describe('RedisOutageLog', () => {
  it('logs the first error of an outage and one reconnect line, whatever the number of clients and retries', () => {
    let now = 1_000;
    const { logger, visible } = capture();
    const log = new RedisOutageLog(logger, { now: () => now, settleMs: 500 });
    const main = log.watch(new FakeClient(), 'main');
    const subscriber = log.watch(new FakeClient(), 'subscriber');
    const worker = log.watchEmitter(new EventEmitter(), 'bullmq');
    for (const client of [main, subscriber]) client.status = 'reconnecting';
    for (let retry = 0; retry < 10; retry++) {
      main.emit('error', new Error('connect ECONNREFUSED'));
      subscriber.emit('error', new Error('connect ECONNREFUSED'));
      worker.emit('error', new Error('Connection is closed.'));
      now += 100;
    }
    expect(log.inOutage).toBe(true);
    // One client back is not the end of the outage.
    main.status = 'ready';
    main.emit('ready');
    expect(visible()).toHaveLength(1);
    subscriber.status = 'ready';
    subscriber.emit('ready');
    expect(visible()).toEqual([
      expect.objectContaining({ level: 'warn', msg: 'redis unavailable', connection: 'main', error: 'connect ECONNREFUSED' }),
      expect.objectContaining({ level: 'info', msg: 'redis reconnected after 1000 ms, 30 errors', afterMs: 1000, errors: 30 }),
    ]);
    // A late error of a BullMQ connection just after the reconnect opens no new outage ...
    now += 100;
    worker.emit('error', new Error('Connection is closed.'));
    expect(log.inOutage).toBe(false);
    // ... but one after the settling time does.
    now += 1_000;
    main.emit('error', new Error('read ECONNRESET'));
    expect(visible()).toHaveLength(3);
    expect(visible()[2]).toMatchObject({ msg: 'redis unavailable', error: 'read ECONNRESET' });
  });
});

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('RedisOutageLog against a real redis-server that stops and starts', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it('logs one outage for ioredis clients and a BullMQ worker, and no unhandled error event', async () => {
    const server = await PrivateRedis.start();
    cleanup.push(() => server.stop('SIGKILL'));
    const { url } = server;
    const { logger, visible } = capture();
    const log = new RedisOutageLog(logger);
    const options = { maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(times * 20, 200) };
    const main = log.watch(new Redis(url, options), 'main');
    const subscriber = log.watch(new Redis(url, options), 'subscriber');
    await subscriber.subscribe('outage-test');
    const worker = log.watchEmitter(new Worker('outage-test', async () => 'done', { connection: log.watch(new Redis(url, options), 'bullmq'), prefix: 'outage-test' }), 'bullmq-worker');
    cleanup.push(async () => {
      await worker.close(true).catch(() => undefined);
      main.disconnect();
      subscriber.disconnect();
    });
    await worker.waitUntilReady();
    await until(() => main.status === 'ready' && subscriber.status === 'ready', 5_000);

    await server.stop('SIGKILL');
    // Long enough for every client to retry several times.
    await until(() => log.inOutage, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 600));
    await server.start();
    await until(() => visible().some((line) => line.msg.startsWith('redis reconnected')), 10_000);

    const lines = visible();
    expect(lines.filter((line) => line.msg === 'redis unavailable')).toHaveLength(1);
    const [reconnected] = lines.filter((line) => line.msg.startsWith('redis reconnected'));
    expect(reconnected.msg).toMatch(/^redis reconnected after \d+ ms, \d+ errors$/);
    expect(reconnected.errors as number).toBeGreaterThan(3);
    // The mesh works again: a job round trip on the restarted server.
    const queueConnection = new Redis(url, options);
    const queue = new Queue('outage-test', { connection: queueConnection, prefix: 'outage-test' });
    cleanup.push(async () => {
      await queue.close();
      queueConnection.disconnect();
    });
    const job = await queue.add('ping', {});
    const state = await (async () => {
      for (let attempt = 0; attempt < 100; attempt++) {
        const current = await job.getState();
        if (current === 'completed') return current;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return job.getState();
    })();
    expect(state).toBe('completed');
  }, 30_000);
});
