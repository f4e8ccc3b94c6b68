import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrivateRedis } from '../../../apps/cli/src/mesh/private-redis';
import { ConfigError, env, parseEnv, redactRedisUrl } from './config';

const shape = { REDIS_URL: env.redisUrl(), METRICS_HOST: env.metricsHost() };

describe('REDIS_URL', () => {
  it('accepts a password, a user, a database and TLS in the URL', () => {
    for (const url of ['redis://:s3cret@redis:6379', 'redis://app:p%40ss@10.0.0.5:6380/2', 'rediss://:s3cret@redis.example.com:6380']) {
      expect(parseEnv('svc', shape, { REDIS_URL: url }).REDIS_URL).toBe(url);
    }
  });

  it('refuses a URL with no host or a path that is no database, without printing the password', () => {
    const error = (() => {
      try {
        parseEnv('svc', shape, { REDIS_URL: 'redis://:topsecret@host:6379/queues' });
      } catch (caught) {
        return caught as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error.message).toMatch(/database number/);
    expect(error.message).not.toContain('topsecret');
    expect(() => parseEnv('svc', shape, { REDIS_URL: 'redis://' })).toThrow(/no host|not a valid URL/);
  });

  it('redacts the credentials for logs', () => {
    expect(redactRedisUrl('redis://:s3cret@redis:6379/1')).toBe('redis://:***@redis:6379/1');
    expect(redactRedisUrl('rediss://app:s3cret@redis:6380')).toBe('rediss://***:***@redis:6380');
    expect(redactRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });

  it('binds metrics to loopback unless told otherwise', () => {
    expect(parseEnv('svc', shape, {}).METRICS_HOST).toBe('127.0.0.1');
    expect(parseEnv('svc', shape, { METRICS_HOST: '10.1.2.3' }).METRICS_HOST).toBe('10.1.2.3');
  });

  it('is read by ioredis as TLS for rediss:// (asked of the library, no connection made)', () => {
    const tls = new Redis('rediss://:s3cret@redis.example.com:6380/3', { lazyConnect: true });
    const plain = new Redis('redis://:s3cret@redis.example.com:6380/3', { lazyConnect: true });
    try {
      expect(tls.options).toMatchObject({ tls: expect.anything(), password: 's3cret', host: 'redis.example.com', port: 6380, db: 3 });
      expect(plain.options.tls).toBeFalsy();
    } finally {
      tls.disconnect();
      plain.disconnect();
    }
  });
});

describe('REDIS_URL with a password, against a private redis-server with requirepass', () => {
  let server: PrivateRedis;
  let port: number;

  beforeAll(async () => {
    server = await PrivateRedis.start({ password: 'p@ss word' });
    port = server.port;
  });
  afterAll(() => server?.stop('SIGKILL'));

  it('authenticates with the percent-encoded password from the URL, and is refused without it', async () => {
    const { REDIS_URL } = parseEnv('svc', shape, { REDIS_URL: `redis://:${encodeURIComponent('p@ss word')}@127.0.0.1:${port}/1` });
    const authed = new Redis(REDIS_URL, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    const anonymous = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 0, retryStrategy: () => null, enableReadyCheck: false });
    anonymous.on('error', () => undefined);
    try {
      expect(await authed.set('rsmoe-config-test', 'x')).toBe('OK');
      expect(await authed.client('INFO')).toMatch(/ db=1 /);
      await expect(anonymous.get('rsmoe-config-test')).rejects.toThrow(/NOAUTH/);
    } finally {
      authed.disconnect();
      anonymous.disconnect();
    }
  });
});
