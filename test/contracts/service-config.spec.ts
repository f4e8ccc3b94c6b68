import { describe, expect, it } from 'vitest';
import { loadAggregatorConfig } from '../../apps/aggregator/src/aggregator.config';
import { loadExpertConfig } from '../../apps/expert/src/expert.config';
import { loadGatewayConfig } from '../../apps/gateway/src/gateway.config';
import { loadRouterConfig } from '../../apps/router/src/router.config';

const SHARED = ['REDIS_URL', 'KEY_PREFIX', 'QUEUE_PREFIX', 'METRICS_PORT', 'METRICS_HOST', 'LOG_LEVEL'] as const;

/** The environment block every service shares is written once (libs/config sharedServiceEnv): same names, same rules. */
describe('the shared service environment', () => {
  const loaders = {
    gateway: loadGatewayConfig,
    router: loadRouterConfig,
    aggregator: loadAggregatorConfig,
    expert: (source: Record<string, string>) => loadExpertConfig({ EXPERT_ID: 'theme', ...source }),
  };

  it('gives every service the same defaults: metrics on loopback, the local Redis', () => {
    for (const [service, load] of Object.entries(loaders)) {
      const config = load({}) as Record<string, unknown>;
      expect(Object.fromEntries(SHARED.map((key) => [key, config[key]])), service).toEqual({
        REDIS_URL: 'redis://127.0.0.1:6379',
        KEY_PREFIX: 'rsmoe',
        QUEUE_PREFIX: 'bull',
        METRICS_PORT: 9464,
        METRICS_HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
      });
    }
  });

  it('reads and checks them the same way everywhere', () => {
    const source = { REDIS_URL: 'rediss://:secret@redis.internal:6380/2', METRICS_HOST: '10.0.0.7', LOG_LEVEL: 'warn' };
    for (const [service, load] of Object.entries(loaders)) {
      expect(load(source), service).toMatchObject(source);
      expect(() => load({ LOG_LEVEL: 'loud' }), service).toThrow(/LOG_LEVEL/);
      expect(() => load({ KEY_PREFIX: 'has space' }), service).toThrow(/KEY_PREFIX/);
    }
  });
});
