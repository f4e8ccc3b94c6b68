import { randomBytes } from 'node:crypto';
import { createRedisKeys } from '@rsmoe/contracts';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeBlobStoreBehaviour } from '../test-support/blob-store-behaviour';
import { RedisBlobStore, sha256Hex } from './index';

// Integration test against the Redis of the machine (127.0.0.1:6379; CI starts one), on a random key prefix.
const PREFIX = `rsmoe-test-blob-${randomBytes(6).toString('hex')}`;
const TTL = 60;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});

afterAll(async () => {
  if (!redis) return;
  const keys = await redis.keys(`${PREFIX}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

const store = (maxBytes = 1024) => new RedisBlobStore(redis, { keyPrefix: PREFIX, ttlSeconds: TTL, maxBytes });

describeBlobStoreBehaviour('RedisBlobStore', () => store());

describe('RedisBlobStore on Redis', () => {
  const keys = createRedisKeys(PREFIX);

  it('keeps one hash per blob with the raw bytes and the media type, expiring after the TTL', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 254]);
    const { sha256 } = await store().put(bytes, 'image/png');
    const key = keys.blobKey(sha256);
    expect(key).toBe(`${PREFIX}:blob:${sha256}`);
    expect(await redis.type(key)).toBe('hash');
    expect(await redis.hkeys(key)).toEqual(['bytes', 'type']);
    expect(Buffer.compare((await redis.hgetBuffer(key, 'bytes'))!, bytes)).toBe(0);
    const ttl = await redis.ttl(key);
    expect(ttl).toBeGreaterThan(TTL - 5);
    expect(ttl).toBeLessThanOrEqual(TTL);
  });

  it('refreshes the TTL when the same bytes are put again', async () => {
    const s = store();
    const { sha256 } = await s.put(Buffer.from('refresh me'), 'image/png');
    expect(await s.touch(sha256, 5)).toBe(true);
    expect(await redis.ttl(keys.blobKey(sha256))).toBeLessThanOrEqual(5);
    expect((await s.put(Buffer.from('refresh me'), 'image/png')).created).toBe(false);
    expect(await redis.ttl(keys.blobKey(sha256))).toBeGreaterThan(TTL - 5);
  });

  it('creates a blob exactly once when the same bytes are put concurrently', async () => {
    const bytes = randomBytes(300);
    const results = await Promise.all(Array.from({ length: 10 }, () => store().put(bytes, 'image/png')));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.sha256))).toEqual(new Set([sha256Hex(bytes)]));
  });

  it('reads an expired blob as absent', async () => {
    const s = store();
    const { sha256 } = await s.put(Buffer.from('short lived'), 'image/png');
    await redis.pexpire(keys.blobKey(sha256), 20);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await s.get(sha256)).toBeUndefined();
    expect(await s.has(sha256)).toBe(false);
  });

  it('keeps stores with different prefixes apart', async () => {
    const other = new RedisBlobStore(redis, { keyPrefix: `${PREFIX}-other`, ttlSeconds: TTL, maxBytes: 1024 });
    const { sha256 } = await store().put(Buffer.from('only in one'), 'image/png');
    expect(await other.has(sha256)).toBe(false);
  });

  it('refuses bad options', () => {
    expect(() => new RedisBlobStore(redis, { keyPrefix: PREFIX, ttlSeconds: 0, maxBytes: 1 })).toThrow(/ttlSeconds/);
    expect(() => new RedisBlobStore(redis, { keyPrefix: PREFIX, ttlSeconds: 1, maxBytes: 1.5 })).toThrow(/maxBytes/);
    expect(() => new RedisBlobStore(redis, { keyPrefix: 'has space', ttlSeconds: 1, maxBytes: 1 })).toThrow(/prefix/);
  });
});
