import { defineConfig } from 'vitest/config';

// Test files that must have the machine's Docker engine, ports and timing to themselves: they
// restart an engine, sweep every Gauntlet leftover on it (a daemon's start, `gauntlet revert`),
// count every helper container on it, or hold measurements to margins a second test running
// beside them on a 2-core machine could break (rates of 150/s and up, availability to 0.02,
// lateness to milliseconds, exit codes that say whether the load generator kept up). They run
// one at a time, after the others.
const ALONE = [
  'test/integration/engine-restart.test.ts',
  'test/integration/busy-or-hung.test.ts',
  'test/integration/k6-real.test.ts',
  'test/integration/k6-segments.test.ts',
  'test/integration/k6-ssh.test.ts',
  'test/integration/k6-operator.test.ts',
  'test/integration/builtin-engine.test.ts',
  'test/integration/parallel-engine.test.ts',
  'test/integration/failover.test.ts',
  'test/integration/fault-latency.test.ts',
  'test/e2e/fault-sigkill.test.ts',
  'test/e2e/fault-safety.test.ts',
  'test/e2e/daemon-sigkill.test.ts',
  'test/e2e/daemon-cli.test.ts',
  'test/e2e/dry-run.test.ts',
  'test/e2e/cli.test.ts',
];

const common = { testTimeout: 30_000, hookTimeout: 120_000 };

export default defineConfig({
  test: {
    // Once for the whole run (a temporary folder; the images the Docker tests share).
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default'],
    projects: [
      {
        // Everything else, two files at a time: each uses containers, ports and folders of its
        // own, and a sweep in one leaves another live process's faults alone.
        test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: ALONE, maxWorkers: 2, sequence: { groupOrder: 0 }, ...common },
      },
      {
        test: { name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 }, ...common },
      },
    ],
  },
});
