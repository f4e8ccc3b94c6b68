import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisKeys } from '@rsmoe/contracts';
import type { ImageFeatures } from '@rsmoe/runtime';
import { RedisFeatureCache } from './feature-cache.adapter';

describe('RedisFeatureCache (real Redis)', () => {
  const prefix = `test${randomBytes(4).toString('hex')}`;
  const redis = new Redis('redis://127.0.0.1:6379');
  const keys = createRedisKeys(prefix);
  const shape = { tokens: 2, hiddenSize: 3 };
  afterAll(async () => {
    const found = await redis.keys(`${prefix}:*`);
    if (found.length > 0) await redis.del(...found);
    redis.disconnect();
  });

  it('encodes once when two processes ask for the same image at the same time, and shares the bytes exactly', async () => {
    // Two caches = two expert processes sharing one Redis.
    const caches = [0, 1].map(() => new RedisFeatureCache(redis, keys, { ttlSeconds: 60, lockTimeoutMs: 2_000, pollIntervalMs: 2 }));
    let encodings = 0;
    const compute = async () => {
      encodings++;
      await new Promise((resolve) => setTimeout(resolve, 30));
      const features: ImageFeatures = { encoderId: 'enc', ...shape, data: Float32Array.of(0.5, -1, 2, 3.25, 1e-7, 9) };
      return { features, preprocessMs: 1, visionEncodeMs: 2 };
    };
    const results = await Promise.all([
      caches[0].getOrCompute('c'.repeat(64), 'enc', shape, compute),
      caches[1].getOrCompute('c'.repeat(64), 'enc', shape, compute),
      caches[1].getOrCompute('c'.repeat(64), 'enc', shape, compute),
    ]);
    expect(encodings).toBe(1);
    expect(results.filter((result) => !result.cached)).toHaveLength(1);
    for (const result of results) expect(Array.from(result.features.data)).toEqual(Array.from(Float32Array.of(0.5, -1, 2, 3.25, 1e-7, 9)));
    expect(await redis.ttl(keys.featureCacheKey('c'.repeat(64), 'enc'))).toBeGreaterThan(0);
  });

  it('does not encode again when another expert stores the features between our miss and our lock', async () => {
    const sha = 'e'.repeat(64);
    const bytes = Buffer.from(Float32Array.of(1, 2, 3, 4, 5, 6).buffer);
    let raced = false;
    // Another process finishes storing exactly when we reach for the lock.
    const racing = new Proxy(redis, {
      get(target, property) {
        if (property === 'set') {
          return async (...args: unknown[]) => {
            if (!raced && String(args[0]).endsWith(':lock')) {
              raced = true;
              await target.set(keys.featureCacheKey(sha, 'enc'), bytes, 'EX', 60);
            }
            return (target.set as (...a: unknown[]) => Promise<unknown>)(...args);
          };
        }
        const value = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const cache = new RedisFeatureCache(racing, keys, { ttlSeconds: 60, lockTimeoutMs: 500, pollIntervalMs: 2 });
    let encodings = 0;
    const result = await cache.getOrCompute(sha, 'enc', shape, async () => {
      encodings++;
      return { features: { encoderId: 'enc', ...shape, data: new Float32Array(6) }, preprocessMs: 0, visionEncodeMs: 0 };
    });
    expect(raced).toBe(true);
    expect(encodings).toBe(0);
    expect(result.cached).toBe(true);
    expect(Array.from(result.features.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('ignores cached bytes of the wrong size instead of using them', async () => {
    await redis.set(keys.featureCacheKey('d'.repeat(64), 'enc'), Buffer.alloc(5));
    const cache = new RedisFeatureCache(redis, keys, { ttlSeconds: 60, lockTimeoutMs: 500, pollIntervalMs: 2 });
    const result = await cache.getOrCompute('d'.repeat(64), 'enc', shape, async () => ({
      features: { encoderId: 'enc', ...shape, data: new Float32Array(6) },
      preprocessMs: 0,
      visionEncodeMs: 0,
    }));
    expect(result.cached).toBe(false);
  });

  it('keeps recent features in memory within its byte budget, and reads Redis for the rest', async () => {
    const [first, second] = ['1'.repeat(64), '2'.repeat(64)];
    // 24 bytes per entry, 30 bytes of memory: one entry fits.
    const cache = new RedisFeatureCache(redis, keys, { ttlSeconds: 60, lockTimeoutMs: 500, pollIntervalMs: 2, memoryBytes: 30 });
    let encodings = 0;
    const compute = (value: number) => async () => {
      encodings++;
      return { features: { encoderId: 'enc', ...shape, data: new Float32Array(6).fill(value) }, preprocessMs: 0, visionEncodeMs: 0 };
    };
    expect((await cache.getOrCompute(first, 'enc', shape, compute(1))).cached).toBe(false);
    // Gone from Redis, still in memory: served without encoding and without Redis.
    await redis.del(keys.featureCacheKey(first, 'enc'));
    const remembered = await cache.getOrCompute(first, 'enc', shape, compute(9));
    expect(remembered.cached).toBe(true);
    expect(Array.from(remembered.features.data)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(encodings).toBe(1);
    // A second image pushes the first out of memory: the first is encoded again (Redis no longer has it).
    await cache.getOrCompute(second, 'enc', shape, compute(2));
    expect((await cache.getOrCompute(first, 'enc', shape, compute(3))).cached).toBe(false);
    expect(encodings).toBe(3);
  });
});
