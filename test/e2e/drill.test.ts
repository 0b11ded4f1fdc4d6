// `gauntlet drill` as a user runs it against a running container: a verdict, the exit code,
// the run saved and listed; a refused fault exits non-zero and says why.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dockerClient } from '../../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { silentLogger } from '../../src/log.js';
import { freePort } from '../../src/util/ports.js';
import { runCli } from '../helpers/cli.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const NAME = 'gauntlet-e2e-drill';

describeDocker('gauntlet drill (real Docker, real processes)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const db = join(dir, 'g.db');
  const common = ['--db', db, '--reports', join(dir, 'reports')];

  beforeAll(async () => {
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    // No memory limit: the oom drill below must be refused.
    await startSimContainer(docker, image, { name: NAME, targetLabel: 'e2e-drill', gpus: 2, loadMs: 300, hostPort: await freePort() });
  }, 60_000);

  afterAll(() => removeContainers(docker, [NAME]));

  it('hang: detected as a hang, recovered after the unpause, exit 0, listed by gauntlet runs', async () => {
    const r = await runCli(['drill', 'hang', '--target', NAME, '--duration', '3s', ...common]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^drill hang on gauntlet-e2e-drill: RECOVERED$/m);
    expect(r.stdout).toMatch(/reverted 3\.\d\ds later: unpaused the container/);
    expect(r.stdout).toMatch(/episode: first evidence "\d+ consecutive health probes timed out while the container runs, a canary inference failed and the load showed no sign of life: hang"/);
    expect((await docker.getContainer(NAME).inspect()).State.Paused).toBe(false);
    const runs = await runCli(['runs', ...common]);
    expect(runs.stdout).toMatch(/drill-hang-\S+\s+drill-hang\s+completed/);
  }, 90_000);

  it('oom on a container without a memory limit: refused, exit 1, the reason printed', async () => {
    const r = await runCli(['drill', 'oom', '--target', NAME, ...common]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/NOT INJECTED \(failed\): prepare: .*has no memory limit/);
  }, 90_000);

  it('bad input is named: an unknown container, an unknown kind, a bad param', async () => {
    const missing = await runCli(['drill', 'hang', '--target', 'no-such-container-xyz', '--duration', '1s', ...common]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/GAUNTLET_TARGET_NOT_FOUND.*no container is named no-such-container-xyz/);
    const kind = await runCli(['drill', 'meteor', '--target', NAME, ...common]);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toMatch(/kind: got "meteor"; expected one of/);
    const param = await runCli(['drill', 'packet-loss', '--target', NAME, '--duration', '2s', '--param', 'share=7', ...common]);
    expect(param.code).toBe(2);
    expect(param.stderr).toMatch(/params\.share: got 7; expected share at most 1/);
  }, 60_000);
});
