import { defineConfig } from 'vitest/config';

/** Suites that load the whole machine and assert on timing: run alone, one file at a time, after the rest. */
const HEAVY_SUITES = ['test/faults/**/*.spec.ts', 'test/e2e/mesh-benchmark.e2e.spec.ts', 'test/fuzz/**/*.spec.ts', 'test/deploy/container.e2e.spec.ts', 'test/deploy/prometheus.e2e.spec.ts', 'test/browser/**/*.spec.ts'];

export default defineConfig({
  test: {
    // onnxruntime-node and sharp are native addons: separate processes are safer than worker threads.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['apps/**/*.spec.ts', 'libs/**/*.spec.ts', 'test/**/*.spec.ts'],
          exclude: ['**/node_modules/**', ...HEAVY_SUITES],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'heavy',
          include: HEAVY_SUITES,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
