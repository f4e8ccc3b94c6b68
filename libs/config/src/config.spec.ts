import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_PACK_DIR, env, parseEnv } from './config';

const shape = {
  PORT: env.integer(8080, 1, 65535),
  REDIS_URL: env.redisUrl(),
  MODE: env.oneOf(['cpu', 'cuda', 'auto'] as const, 'auto'),
  PACK_DIR: env.packDir(),
};

describe('parseEnv', () => {
  it('applies defaults for unset and empty variables', () => {
    expect(parseEnv('svc', shape, { PORT: '' })).toEqual({
      PORT: 8080,
      REDIS_URL: 'redis://127.0.0.1:6379',
      MODE: 'auto',
      PACK_DIR: DEFAULT_PACK_DIR,
    });
  });

  it('coerces and validates values', () => {
    expect(parseEnv('svc', shape, { PORT: '9000', MODE: 'cpu', REDIS_URL: 'redis://r:6380/1' })).toMatchObject({
      PORT: 9000,
      MODE: 'cpu',
      REDIS_URL: 'redis://r:6380/1',
    });
  });

  it('reports every invalid variable at once, with its value', () => {
    const error = (() => {
      try {
        parseEnv('gateway', shape, { PORT: '70000', MODE: 'tpu', REDIS_URL: 'localhost' });
      } catch (caught) {
        return caught as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.problems).toHaveLength(3);
    expect(error.message).toMatch(/^gateway: invalid configuration/);
    expect(error.message).toMatch(/PORT="70000"/);
    expect(error.message).toMatch(/MODE="tpu"/);
    expect(error.message).toMatch(/REDIS_URL="localhost": must be a redis/);
  });
});
