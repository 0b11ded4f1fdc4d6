// One temporary folder for the whole test run, removed when the run ends: every tempDir() lives
// inside it, so folders made by suites that were then skipped (no Docker, no k6: their afterAll
// never runs) or by a test that failed half-way are removed too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'gauntlet-test-'));
  process.env.GAUNTLET_TEST_TMP = root;
  return () => rmSync(root, { recursive: true, force: true });
}
