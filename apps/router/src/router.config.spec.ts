import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@rsmoe/config';
import { loadRouterConfig } from './router.config';

const PACK_DIR = resolve(__dirname, '../../../models/fixtures/tiny-pack');

describe('loadRouterConfig', () => {
  it('has long tasks’ own budgets, and keeps finished jobs at least as long as the longest budget', () => {
    const config = loadRouterConfig({ PACK_DIR });
    expect([config.LONG_TASK_DEFAULT_DEADLINE_MS, config.LONG_TASK_MAX_DEADLINE_MS, config.JOB_RETENTION_S]).toEqual([300_000, 1_800_000, 3_600]);
    expect(() => loadRouterConfig({ PACK_DIR, JOB_RETENTION_S: '600' })).toThrow(ConfigError);
    expect(() => loadRouterConfig({ PACK_DIR, JOB_RETENTION_S: '600' })).toThrow(/JOB_RETENTION_S=600: must be at least the longest deadline \(1800 s/);
    expect(loadRouterConfig({ PACK_DIR, JOB_RETENTION_S: '600', LONG_TASK_MAX_DEADLINE_MS: '600000' }).JOB_RETENTION_S).toBe(600);
  });
});
