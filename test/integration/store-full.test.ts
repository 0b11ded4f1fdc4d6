// The disk under the database fills up in the middle of a fault. The run must fail through its
// normal path: the fault reverted (the container is no longer paused), the run marked failed
// with the reason (written thanks to the reserve the store keeps next to the database), the
// process exiting non-zero with a sentence, not a stack trace. The database sits on a small
// tmpfs of its own (root: mount), filled with a file once the fault is active.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dockerClient } from '../../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { silentLogger } from '../../src/log.js';
import { freePort } from '../../src/util/ports.js';
import { startCli, until } from '../helpers/cli.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const NAME = 'gauntlet-it-store-full';

/** Mounts a tmpfs of `mb` MiB at `dir`; false when this process may not (not root). */
function mountTmpfs(dir: string, mb: number): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Writes zeros into `file` until the file system refuses (ENOSPC); bounded by `maxMb`. */
function fill(file: string, maxMb: number): number {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  let written = 0;
  try {
    while (written < maxMb * 1024 * 1024) written += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return written;
}

describeDocker('the database disk fills up in the middle of a fault', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const disk = join(dir, 'disk');
  let mounted = false;

  beforeAll(async () => {
    mkdirSync(disk);
    mounted = mountTmpfs(disk, 16);
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    await startSimContainer(docker, image, { name: NAME, targetLabel: 'it-store-full', gpus: 1, loadMs: 200, ttftMs: 20, itlMs: 5, hostPort: await freePort() });
  }, 120_000);

  afterAll(async () => {
    await removeContainers(docker, [NAME]);
    if (mounted) execFileSync('umount', ['-l', disk], { stdio: 'ignore' });
  });

  it('reverts the fault, marks the run failed with the reason, and exits 1 without a stack trace', async () => {
    if (!mounted) {
      if (process.env.CI) throw new Error('cannot mount a tmpfs (needs root): CI runs as root');
      process.stderr.write('\n*** SKIPPED store-full: cannot mount a tmpfs (needs root). ***\n\n');
      return;
    }
    const db = join(disk, 'g.db');
    const plan = join(dir, 'full.yaml');
    writeFileSync(
      plan,
      `name: store-full\nduration: 40s\ntargets: [{ name: node, container: ${NAME} }]\n` +
        `load: { rate: 20, arrival: constant, api: chat, stream: true, prompt_tokens: 16, max_tokens: 4, timeout: 5s, model: sim-llama, raw_requests: true }\n` +
        `probes: { interval: 500ms, timeout: 400ms }\ntelemetry: { interval: 1s }\nrecovery_limit: 30s\nready_timeout: 30s\n` +
        `faults: [{ kind: hang, target: node, at: 2s, params: { duration: 30s } }]\n`,
    );
    const cli = startCli(['run', plan, '--db', db, '--reports', join(dir, 'reports')]);
    try {
      // The fault is active (the container paused): now the disk fills.
      await until(
        'the fault to be active',
        () => {
          try {
            const r = new Database(db, { readonly: true, fileMustExist: true });
            try {
              return (r.prepare("SELECT COUNT(*) AS n FROM faults WHERE state = 'active'").get() as { n: number }).n > 0;
            } finally {
              r.close();
            }
          } catch {
            return false;
          }
        },
        20_000,
      );
      expect((await docker.getContainer(NAME).inspect()).State.Paused).toBe(true);
      fill(join(disk, 'filler'), 64);
      const code = await Promise.race([cli.exit, new Promise<'late'>((r) => setTimeout(() => r('late'), 30_000))]);
      const stderr = cli.stderr();
      process.stderr.write(`store-full: exit ${String(code)}; stdout:\n${cli.stdout()}\n`);
      expect(code, stderr).toBe(1);
      expect(stderr).not.toMatch(/\n\s+at \S+ \(/); // no stack trace
      expect((await docker.getContainer(NAME).inspect()).State.Paused).toBe(false);
      expect(cli.stdout()).toMatch(/^run store-full-\S+: failed \(store \(writing [^)]+\): .*(full|FULL)/m);
    } finally {
      cli.proc.kill('SIGKILL');
    }
    // What it says it wrote is there (the reserve made room for the end): read after freeing space.
    rmSync(join(disk, 'filler'), { force: true });
    const r = new Database(db, { readonly: true, fileMustExist: true });
    try {
      const run = r.prepare('SELECT status, error FROM runs').get() as { status: string; error: string };
      expect(run.status).toBe('failed');
      expect(run.error).toMatch(/full/i);
      const f = r.prepare('SELECT state FROM faults').get() as { state: string };
      expect(f.state).toBe('reverted');
    } finally {
      r.close();
    }
  }, 120_000);
});
