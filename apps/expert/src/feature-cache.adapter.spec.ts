import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisKeys } from '@rsmoe/contracts';
import type { FeaturePacking, ImageFeatures } from '@rsmoe/runtime';
import { decodeFeatureEntry, encodeFeatureEntry, RedisFeatureCache, type FeatureKey } from './feature-cache.adapter';

const ENCODER = 'e'.repeat(64);

function key(imageSha256: string, packing: FeaturePacking = 'single-crop', encoderId = ENCODER): FeatureKey {
  return { imageSha256, encoderId, packing };
}

function features(data: Float32Array, shape = { tokens: 2, hiddenSize: 3 }, packing: FeaturePacking = 'single-crop'): ImageFeatures {
  return { encoderId: ENCODER, packing, ...shape, data };
}

describe('feature cache entries', () => {
  it('carry their shape: features of any size come back exactly, with the key’s encoder and packing', () => {
    const stored = features(Float32Array.of(0.5, -1, 2, 3.25, 1e-7, 9, -0, 7.5), { tokens: 4, hiddenSize: 2 }, 'anyres');
    const entry = encodeFeatureEntry(stored);
    expect(entry.byteLength).toBe(12 + 8 * 4);
    expect(decodeFeatureEntry(entry, key('a'.repeat(64), 'anyres'))).toEqual(stored);
  });

  it('are refused when they are not a whole entry', () => {
    const entry = encodeFeatureEntry(features(new Float32Array(6)));
    expect(decodeFeatureEntry(entry.subarray(0, entry.byteLength - 4), key('a'))).toBeUndefined();
    expect(decodeFeatureEntry(Buffer.from(new Float32Array(6).buffer), key('a'))).toBeUndefined();
    expect(decodeFeatureEntry(Buffer.alloc(5), key('a'))).toBeUndefined();
  });
});

describe('RedisFeatureCache (real Redis)', () => {
  const prefix = `test${randomBytes(4).toString('hex')}`;
  const redis = new Redis('redis://127.0.0.1:6379');
  const keys = createRedisKeys(prefix);
  const redisKey = (k: FeatureKey) => keys.featureCacheKey(k.imageSha256, k.encoderId, k.packing);
  afterAll(async () => {
    const found = await redis.keys(`${prefix}:*`);
    if (found.length > 0) await redis.del(...found);
    redis.disconnect();
  });

  it('encodes once when two processes ask for the same image at the same time, and shares the values exactly', async () => {
    // Two caches = two expert processes sharing one Redis.
    const caches = [0, 1].map(() => new RedisFeatureCache(redis, keys, { ttlSeconds: 60, lockTimeoutMs: 2_000, pollIntervalMs: 2 }));
    let encodings = 0;
    const values = Float32Array.of(0.5, -1, 2, 3.25, 1e-7, 9);
    const compute = async () => {
      encodings++;
      await new Promise((resolve) => setTimeout(resolve, 30));
      return { features: features(values), preprocessMs: 1, visionEncodeMs: 2 };
    };
    const results = await Promise.all([
      caches[0].getOrCompute(key('c'.repeat(64)), compute),
      caches[1].getOrCompute(key('c'.repeat(64)), compute),
      caches[1].getOrCompute(key('c'.repeat(64)), compute),
    ]);
    expect(encodings).toBe(1);
    expect(results.filter((result) => !result.cached)).toHaveLength(1);
    for (const result of results) expect(result.features).toEqual(features(values));
    expect(await redis.ttl(redisKey(key('c'.repeat(64))))).toBeGreaterThan(0);
  });

  it('keeps one entry per packing and per encoder: the same image is encoded again for each', async () => {
    const cache = new RedisFeatureCache(redis, keys, { ttlSeconds: 60, lockTimeoutMs: 500, pollIntervalMs: 2 });
    const sha = '7'.repeat(64);
    const computed: string[] = [];
    const compute = (k: FeatureKey, tokens: number) => async () => {
      computed.push(`${k.encoderId.slice(0, 1)}/${k.packing}`);
      return { features: { encoderId: k.encoderId, packing: k.packing, tokens, hiddenSize: 2, data: new Float32Array(tokens * 2).fill(tokens) }, preprocessMs: 0, visionEncodeMs: 0 };
    };
    const anyres = key(sha, 'anyres');
    const crop = key(sha, 'single-crop');
    const otherEncoder = key(sha, 'anyres', 'f'.repeat(64));
    expect((await cache.getOrCompute(anyres, compute(anyres, 5))).features.tokens).toBe(5);
    expect((await cache.getOrCompute(crop, compute(crop, 3))).features.tokens).toBe(3);
    expect((await cache.getOrCompute(otherEncoder, compute(otherEncoder, 4))).features.tokens).toBe(4);
    // Each again: all three from the cache, each with its own shape.
    const again = await Promise.all([anyres, crop, otherEncoder].map((k) => cache.getOrCompute(k, compute(k, 1))));
    expect(again.map((found) => [found.cached, found.features.packing, found.features.tokens])).toEqual([
      [true, 'anyres', 5],
      [true, 'single-crop', 3],
      [true, 'anyres', 4],
    ]);
    expect(computed).toEqual(['e/anyres', 'e/single-crop', 'f/anyres']);
  });

  it('refuses to store features of another encoder or packing under a key', async () => {
    const cache = new RedisFeatureCache(redis, keys, { ttlSeconds: 60, lockTimeoutMs: 500, pollIntervalMs: 2 });
    const k = key('8'.repeat(64), 'single-crop');
    await expect(
      cache.getOrCompute(k, async () => ({ features: features(new Float32Array(6), undefined, 'anyres'), preprocessMs: 0, visionEncodeMs: 0 })),
    ).rejects.toThrow(/computed for the key of/);
    expect(await redis.exists(redisKey(k))).toBe(0);
  });

  it('does not encode again when another expert stores the features between our miss and our lock', async () => {
    const k = key('e'.repeat(64));
    const stored = features(Float32Array.of(1, 2, 3, 4, 5, 6));
    let raced = false;
    // Another process finishes storing exactly when we reach for the lock.
    const racing = new Proxy(redis, {
      get(target, property) {
        if (property === 'set') {
          return async (...args: unknown[]) => {
            if (!raced && String(args[0]).endsWith(':lock')) {
              raced = true;
              await target.set(redisKey(k), encodeFeatureEntry(stored), 'EX', 60);
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
    const result = await cache.getOrCompute(k, async () => {
      encodings++;
      return { features: features(new Float32Array(6)), preprocessMs: 0, visionEncodeMs: 0 };
    });
    expect(raced).toBe(true);
    expect(encodings).toBe(0);
    expect(result.cached).toBe(true);
    expect(Array.from(result.features.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('ignores a stored value that is not a whole entry instead of using it, and replaces it', async () => {
    const k = key('d'.repeat(64));
    await redis.set(redisKey(k), Buffer.alloc(5));
    const cache = new RedisFeatureCache(redis, keys, { ttlSeconds: 60, lockTimeoutMs: 500, pollIntervalMs: 2 });
    const result = await cache.getOrCompute(k, async () => ({ features: features(new Float32Array(6).fill(2)), preprocessMs: 0, visionEncodeMs: 0 }));
    expect(result.cached).toBe(false);
    expect(decodeFeatureEntry((await redis.getBuffer(redisKey(k)))!, k)?.data).toEqual(new Float32Array(6).fill(2));
  });

  it('keeps recent features in memory within its byte budget, and reads Redis for the rest', async () => {
    const [first, second] = [key('1'.repeat(64)), key('2'.repeat(64))];
    // 24 bytes per entry, 30 bytes of memory: one entry fits.
    const cache = new RedisFeatureCache(redis, keys, { ttlSeconds: 60, lockTimeoutMs: 500, pollIntervalMs: 2, memoryBytes: 30 });
    let encodings = 0;
    const compute = (value: number) => async () => {
      encodings++;
      return { features: features(new Float32Array(6).fill(value)), preprocessMs: 0, visionEncodeMs: 0 };
    };
    expect((await cache.getOrCompute(first, compute(1))).cached).toBe(false);
    // Gone from Redis, still in memory: served without encoding and without Redis.
    await redis.del(redisKey(first));
    const remembered = await cache.getOrCompute(first, compute(9));
    expect(remembered.cached).toBe(true);
    expect(Array.from(remembered.features.data)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(encodings).toBe(1);
    // A second image pushes the first out of memory: the first is encoded again (Redis no longer has it).
    await cache.getOrCompute(second, compute(2));
    expect((await cache.getOrCompute(first, compute(3))).cached).toBe(false);
    expect(encodings).toBe(3);
  });
});
