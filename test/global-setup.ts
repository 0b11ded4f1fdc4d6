// One temporary folder for the whole test run, removed when the run ends: every tempDir() lives
// inside it, so folders made by suites that were then skipped (no Docker, no k6: their afterAll
// never runs) or by a test that failed half-way are removed too.
//
// And the images the Docker tests share, built once before any test file starts: files run two
// at a time, and two of them building the same image at once would each pay for the build.
// Without an engine (a unit-only run) nothing is built here; the Docker tests say what is missing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerClient } from '../src/docker/engine.js';
import { ensureHelperImage, ensureSimImage } from '../src/docker/sim-image.js';
import { silentLogger } from '../src/log.js';

export default async function setup(): Promise<() => void> {
  const root = mkdtempSync(join(tmpdir(), 'gauntlet-test-'));
  process.env.GAUNTLET_TEST_TMP = root;
  const docker = dockerClient();
  const reachable = await docker.ping().then(
    () => true,
    () => false,
  );
  if (reachable) {
    try {
      await ensureSimImage(docker, silentLogger);
      await ensureHelperImage(docker, silentLogger);
    } catch (err) {
      // e.g. no build yet: the tests that need an image build it, or fail saying why
      process.stderr.write(`global setup: images not built here (${(err as Error).message})\n`);
    }
  }
  return () => rmSync(root, { recursive: true, force: true });
}
