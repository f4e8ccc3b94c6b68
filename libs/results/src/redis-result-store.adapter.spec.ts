import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisKeys, parseRouterInboxMessage } from '@rsmoe/contracts';
import { captionResult } from '../../contracts/test-support/fixtures';
import { RedisResultStore } from './redis-result-store.adapter';

describe('RedisResultStore (real Redis)', () => {
  const prefix = `results${randomBytes(5).toString('hex')}`;
  const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  const store = new RedisResultStore(redis, createRedisKeys(prefix), 60);

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('stores a result once: the first writer wins, a second result for the same request is refused', async () => {
    const first = captionResult({ requestId: 'once-1', correlationId: 'x1' });
    expect(await store.store(first)).toBe(true);
    expect(await store.store(captionResult({ requestId: 'once-1', caption: 'another fusion' }))).toBe(false);
    expect(await store.get('once-1')).toEqual(first);
    expect(await store.exists('once-1')).toBe(true);
    expect(await store.get('never')).toBeUndefined();
    expect(await redis.ttl(createRedisKeys(prefix).resultKey('once-1'))).toBeGreaterThan(0);
  });

  it('publishes the stored result to the router inbox only when this call stored it', async () => {
    const channel = `${prefix}:inbox:test`;
    const subscriber = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
    const received: string[] = [];
    await subscriber.subscribe(channel);
    subscriber.on('message', (_channel, message: string) => received.push(message));
    try {
      expect(await store.store(captionResult({ requestId: 'pub-1' }), channel)).toBe(true);
      expect(await store.store(captionResult({ requestId: 'pub-1', caption: 'late' }), channel)).toBe(false);
      await expect.poll(() => received.length).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(received).toHaveLength(1);
      expect(parseRouterInboxMessage(received[0])).toMatchObject({ kind: 'result', requestId: 'pub-1', result: { caption: captionResult().caption } });
    } finally {
      subscriber.disconnect();
    }
  });
});
