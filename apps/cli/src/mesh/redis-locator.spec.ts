import { describe, expect, it } from 'vitest';
import { freePort, locateRedis } from './redis-locator';

describe('locateRedis', () => {
  it('uses REDIS_URL when it answers, and refuses one that does not', async () => {
    expect(await locateRedis('redis://127.0.0.1:6379')).toMatchObject({ url: 'redis://127.0.0.1:6379', how: 'REDIS_URL' });
    const silent = `redis://127.0.0.1:${await freePort()}`;
    await expect(locateRedis(silent)).rejects.toThrow(`REDIS_URL=${silent} does not answer PING`);
  });

  it('falls back to the Redis on 127.0.0.1:6379', async () => {
    const found = await locateRedis(undefined);
    expect(found.url).toBe('redis://127.0.0.1:6379');
    expect(found.started).toBeUndefined();
  });
});
