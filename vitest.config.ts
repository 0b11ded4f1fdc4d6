import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Docker tests share one engine and fixed container names; run files one at a time.
    fileParallelism: false,
    reporters: ['default'],
  },
});
