import { randomBytes } from 'node:crypto';
import { createRedisKeys, utcDay } from '@rsmoe/contracts';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApiKey } from '../testing/gateway-test-kit';
import { RedisApiKeyLimiter } from './api-key-limiter.adapter';

/** The token bucket and the daily quota, on real Redis, with a clock the test moves. */
describe('RedisApiKeyLimiter', () => {
  const prefix = `limtest-${randomBytes(6).toString('hex')}`;
  const keys = createRedisKeys(prefix);
  let redis: Redis;
  // 2026-03-01 23:59:00 UTC
  let now = Date.UTC(2026, 2, 1, 23, 59, 0);
  const clock = () => now;

  beforeAll(() => {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    const written = await redis.keys(`${prefix}:*`);
    if (written.length > 0) await redis.del(...written);
    await redis.quit();
  });

  it('answers unauthenticated for an unknown key, forbidden for a task the key may not run', async () => {
    const limiter = new RedisApiKeyLimiter(redis, keys, clock);
    expect(await limiter.admit('rsk_nobody', { images: 0 })).toEqual({ outcome: 'unauthenticated' });
    const secret = await createTestApiKey(redis, prefix, { name: 'captions-only', tasks: ['caption'] });
    expect(await limiter.admit(secret, { task: 'vqa', images: 1 })).toMatchObject({ outcome: 'forbidden', key: { name: 'captions-only' } });
    expect(await limiter.admit(secret, { task: 'caption', images: 1 })).toMatchObject({ outcome: 'admitted', key: { name: 'captions-only', tasks: ['caption'] } });
  });

  it('lets a burst through, then refills at the rate', async () => {
    const limiter = new RedisApiKeyLimiter(redis, keys, clock);
    const secret = await createTestApiKey(redis, prefix, { name: 'bursty', ratePerSecond: 2, burst: 3 });
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await limiter.admit(secret, { images: 0 }));
    expect(outcomes.map((a) => a.outcome)).toEqual(['admitted', 'admitted', 'admitted', 'rate_limited']);
    expect(outcomes[2]).toMatchObject({ bucket: { limit: 3, remaining: 0, resetSeconds: 2 } });
    // Empty bucket, 2 tokens/s: the next token is 500 ms away.
    expect(outcomes[3]).toMatchObject({ outcome: 'rate_limited', retryAfterMs: 500, bucket: { remaining: 0 } });
    now += 499;
    expect((await limiter.admit(secret, { images: 0 })).outcome).toBe('rate_limited');
    now += 1;
    expect((await limiter.admit(secret, { images: 0 })).outcome).toBe('admitted');
    // Long idle: refilled to the burst, never beyond.
    now += 60_000;
    const full = await limiter.admit(secret, { images: 0 });
    expect(full).toMatchObject({ outcome: 'admitted', bucket: { limit: 3, remaining: 2 } });
  });

  it('does not refill from a clock behind the bucket (another replica ahead)', async () => {
    const limiter = new RedisApiKeyLimiter(redis, keys, clock);
    const behind = new RedisApiKeyLimiter(redis, keys, () => now - 10_000);
    const secret = await createTestApiKey(redis, prefix, { name: 'skewed', ratePerSecond: 1, burst: 1 });
    expect((await limiter.admit(secret, { images: 0 })).outcome).toBe('admitted');
    expect((await behind.admit(secret, { images: 0 })).outcome).toBe('rate_limited');
  });

  it('counts images against the daily quota, refuses past it until 00:00 UTC, and takes refunds', async () => {
    now = Date.UTC(2026, 2, 1, 23, 59, 0);
    const limiter = new RedisApiKeyLimiter(redis, keys, clock);
    const secret = await createTestApiKey(redis, prefix, { name: 'quota', ratePerSecond: 1000, burst: 1000, dailyQuota: 2 });
    const first = await limiter.admit(secret, { task: 'caption', images: 1 });
    expect(first).toMatchObject({ outcome: 'admitted', quota: { limit: 2, used: 1, resetSeconds: 60 } });
    expect(await limiter.admit(secret, { task: 'change', images: 1 })).toMatchObject({ outcome: 'admitted', quota: { used: 2 } });
    const refused = await limiter.admit(secret, { task: 'caption', images: 1 });
    expect(refused).toMatchObject({ outcome: 'quota_exceeded', retryAfterMs: 60_000, quota: { limit: 2, used: 2 } });
    // Routes without images do not count and still pass.
    expect((await limiter.admit(secret, { images: 0 })).outcome).toBe('admitted');
    if (first.outcome !== 'admitted' || !first.charged) throw new Error(`not admitted: ${first.outcome}`);
    expect(first.charged).toEqual({ usageKey: keys.dailyUsageKey(first.key.id, '2026-03-01'), images: 1 });
    await limiter.refund(first.charged);
    expect((await limiter.admit(secret, { task: 'caption', images: 1 })).outcome).toBe('admitted');
    expect((await limiter.admit(secret, { task: 'caption', images: 1 })).outcome).toBe('quota_exceeded');
    expect(await limiter.usage()).toContainEqual({ name: 'quota', imagesToday: 2, dailyQuota: 2 });
    // Midnight UTC: a new day, a new count.
    now = Date.UTC(2026, 2, 2, 0, 0, 0);
    expect(utcDay(now)).toBe('2026-03-02');
    expect(await limiter.admit(secret, { task: 'caption', images: 1 })).toMatchObject({ outcome: 'admitted', quota: { used: 1, resetSeconds: 86_400 } });
    expect(await limiter.usage()).toContainEqual({ name: 'quota', imagesToday: 1, dailyQuota: 2 });
  });

  it('keeps a usage counter a day past its own day, and the bucket only while it can matter', async () => {
    now = Date.UTC(2026, 2, 3, 12, 0, 0);
    const limiter = new RedisApiKeyLimiter(redis, keys, clock);
    const secret = await createTestApiKey(redis, prefix, { name: 'ttl', ratePerSecond: 1, burst: 5 });
    const admitted = await limiter.admit(secret, { task: 'caption', images: 1 });
    if (admitted.outcome !== 'admitted' || !admitted.charged) throw new Error(`not admitted: ${admitted.outcome}`);
    const usageTtl = await redis.pttl(admitted.charged.usageKey);
    expect(usageTtl).toBeGreaterThan(36 * 3600_000 - 5_000);
    expect(usageTtl).toBeLessThanOrEqual(36 * 3600_000);
    const bucketTtl = await redis.pttl(keys.rateBucketKey(admitted.key.id));
    expect(bucketTtl).toBeGreaterThan(60_000);
    expect(bucketTtl).toBeLessThanOrEqual(65_000);
  });
});
