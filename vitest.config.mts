import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['apps/**/*.spec.ts', 'libs/**/*.spec.ts', 'test/**/*.spec.ts'],
    // onnxruntime-node and sharp are native addons: separate processes are safer than worker threads.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
});
