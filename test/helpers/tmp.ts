// Temporary directories for tests: removed after each file, and in any case with the run's own
// folder (test/global-setup.ts) when the test run ends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** The test run's own temporary folder (set by test/global-setup.ts), or the system's. */
export function testTmp(): string {
  return process.env.GAUNTLET_TEST_TMP ?? tmpdir();
}

export function tempDir(prefix = 'gauntlet-test-'): string {
  const dir = mkdtempSync(join(testTmp(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
