// "A fault is never left behind": Ctrl-C during a fault, and SIGKILL of Gauntlet during a
// fault followed by a restart, both end with the target as it was. The target container has
// no restart policy, so only Gauntlet's revert can bring it back after the crash.
import Database from 'better-sqlite3';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dockerClient } from '../../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { silentLogger } from '../../src/log.js';
import { freePort } from '../../src/util/ports.js';
import { runCli, startCli, until } from '../helpers/cli.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const NAME = 'gauntlet-e2e-safety';

describeDocker('fault safety (real Docker, real processes)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const db = join(dir, 'g.db');
  const reports = join(dir, 'reports');
  const plan = join(dir, 'plan.yaml');

  const faultState = (): { state: string; revert_action: string | null } | undefined => {
    if (!existsSync(db)) return undefined;
    const conn = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return conn.prepare('SELECT state, revert_action FROM faults ORDER BY planned_at DESC LIMIT 1').get() as { state: string; revert_action: string | null } | undefined;
    } catch {
      return undefined; // schema not created yet
    } finally {
      conn.close();
    }
  };
  const running = async (): Promise<boolean> => (await docker.getContainer(NAME).inspect()).State.Running;

  beforeAll(async () => {
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    await startSimContainer(docker, image, { name: NAME, targetLabel: 'e2e-safety', gpus: 2, loadMs: 300, hostPort: await freePort(), restart: 'no' });
    writeFileSync(
      plan,
      `name: safety
duration: 60s
targets: [{ name: node, container: ${NAME} }]
load: { rate: 4, max_tokens: 8, timeout: 5s }
faults: [{ kind: node-kill, target: node, at: 1s }]
probes: { interval: 500ms, fast_interval: 100ms }
recovery_limit: 50s
ready_timeout: 30s
`,
    );
  }, 60_000);

  afterAll(() => removeContainers(docker, [NAME]));

  // Ctrl-C the instant the ledger says active: the revert then races Docker reaping the killed
  // process (it once concluded "still running, nothing to do" and left the node down). Three tries.
  it.each([1, 2, 3])('Ctrl-C right at the fault (try %i): exit 130, fault reverted (container started again), report written as aborted', async () => {
    await until('the container to run', () => running(), 10_000);
    const run = startCli(['run', plan, '--db', db, '--reports', reports]);
    await until('the fault to be active', () => faultState()?.state === 'active', 30_000);
    run.proc.kill('SIGINT');
    expect(await run.exit, run.stderr()).toBe(130);
    expect(faultState()).toMatchObject({ state: 'reverted', revert_action: 'started the container (it had not come back by itself)' });
    expect(await running()).toBe(true);
    const id = /^run (\S+): aborted/m.exec(run.stdout())?.[1];
    expect(id, run.stdout() + run.stderr()).toBeDefined();
    const report = JSON.parse(readFileSync(join(reports, id as string, 'report.json'), 'utf8'));
    expect(report.run.status).toBe('aborted');
    expect(report.faults[0]).toMatchObject({ state: 'reverted' });
    // The container is reused across tries: a run must not see the events of earlier ones.
    expect(report.episodes.map((e: { cause: string }) => e.cause)).toEqual([`injected:${id}-f1`]);
    expect(report.requests.cancelled).toBeGreaterThanOrEqual(0);
  }, 90_000);

  it('SIGKILL of Gauntlet during a fault, then a restart: the ledger reverts it', async () => {
    await until('the container to serve again', async () => running(), 10_000);
    const run = startCli(['run', plan, '--db', db, '--reports', reports]);
    await until('the new fault to be active', () => faultState()?.state === 'active', 30_000);
    run.proc.kill('SIGKILL');
    await run.exit;
    expect(faultState()?.state).toBe('active');
    // Left behind by the killed process (Docker registers the exit ~150 ms after the kill).
    await until('the container to be down', async () => !(await running()), 10_000);

    const revert = await runCli(['revert', '--db', db]);
    expect(revert.code, revert.stderr).toBe(0);
    expect(revert.stdout).toMatch(/\(node-kill on node\): started the container/);
    expect(await running()).toBe(true);
    expect(faultState()).toMatchObject({ state: 'reverted', revert_action: 'on start, left by an earlier process: started the container (it had not come back by itself)' });
    expect((await runCli(['revert', '--db', db])).stdout).toContain('no active faults in the ledger');
  }, 90_000);
});
