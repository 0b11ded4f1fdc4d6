// --dry-run prints every action and touches nothing: the container's state, restart count,
// rules, qdiscs and processes are the same after as before, no helper container exists, no
// run is recorded and no request reaches the node.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { faultKinds } from '../../faults/index.js';
import { dockerClient } from '../../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { inNetnsOk } from '../../src/fault/netns.js';
import { silentLogger } from '../../src/log.js';
import { freePort } from '../../src/util/ports.js';
import { runCli, until } from '../helpers/cli.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const NAME = 'gauntlet-e2e-dryrun';

describeDocker('--dry-run touches nothing (real Docker)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const db = join(dir, 'g.db');
  let endpoint = '';

  /** Everything a fault could change, as one comparable value. */
  const snapshot = async () => {
    const info = await docker.getContainer(NAME).inspect();
    const pid = info.State.Pid;
    const top = (await docker.getContainer(NAME).top({ ps_args: '-eo pid,args' })) as { Processes: string[][] };
    const metrics = await request(`${endpoint}/metrics`, { reset: true });
    const requests = /sim_requests_total (\d+)/.exec(await metrics.body.text())?.[1];
    return {
      state: info.State.Status,
      paused: info.State.Paused,
      startedAt: info.State.StartedAt,
      restarts: info.RestartCount,
      rules: await inNetnsOk(pid, 'iptables-save', []),
      qdiscs: await inNetnsOk(pid, 'tc', ['qdisc', 'show']),
      processes: top.Processes.map((p) => p.join(' ')).sort(),
      oomScoreAdj: (await import('node:fs')).readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim(),
      helpers: (await docker.listContainers({ all: true, filters: { label: ['gauntlet.fault'] } })).length,
      inferenceRequests: requests,
    };
  };

  beforeAll(async () => {
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    const port = await freePort();
    await startSimContainer(docker, image, { name: NAME, targetLabel: 'e2e-dryrun', gpus: 2, loadMs: 200, hostPort: port, memoryMb: 256 });
    endpoint = `http://127.0.0.1:${port}`;
    await until('the node to be healthy', async () => {
      try {
        const r = await request(`${endpoint}/health`, { reset: true, signal: AbortSignal.timeout(1000) });
        await r.body.dump();
        return r.statusCode === 200;
      } catch {
        return false;
      }
    }, 30_000);
  }, 60_000);

  afterAll(() => removeContainers(docker, [NAME]));

  it('a run with every fault kind, and a drill: the actions are printed, the target is unchanged', async () => {
    const faults = [
      { kind: 'node-kill', params: '{ mode: crash }' },
      { kind: 'node-kill', params: '{ mode: stop, down_for: 5s }' },
      { kind: 'hang', params: '{ duration: 5s }' },
      { kind: 'oom', params: '{ mode: kill }' },
      { kind: 'oom', params: '{ mode: pressure, share: 0.5, duration: 5s }' },
      { kind: 'latency', params: '{ delay: 100ms, duration: 5s }' },
      { kind: 'packet-loss', params: '{ share: 0.5, duration: 5s }' },
      { kind: 'gpu-worker-kill', params: '{}' },
      { kind: 'gpu-memory-pressure', params: '{ image: gauntlet-sim:latest, command: ["x"], duration: 5s }' },
    ];
    expect([...new Set(faults.map((f) => f.kind))].sort()).toEqual(faultKinds());
    const plan = join(dir, 'plan.yaml');
    writeFileSync(
      plan,
      `name: dry
duration: 300s
targets: [{ name: node, container: ${NAME} }]
load: { rate: 5 }
faults:
${faults.map((f, i) => `  - { kind: ${f.kind}, target: node, at: ${10 + i * 20}s, params: ${f.params} }`).join('\n')}
`,
    );
    const before = await snapshot();
    const r = await runCli(['run', plan, '--dry-run', '--db', db]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('nothing below is done');
    expect(r.stdout).toMatch(/f1 at \+10\.0s: node-kill on node/);
    expect(r.stdout).toMatch(/SIGKILL the main process of container gauntlet-e2e-dryrun/);
    expect(r.stdout).toMatch(/pause container gauntlet-e2e-dryrun/);
    expect(r.stdout).toMatch(/oom_score_adj/);
    expect(r.stdout).toMatch(/iptables -I INPUT -m statistic|netem loss/);
    const drill = await runCli(['drill', 'hang', '--target', NAME, '--duration', '3s', '--dry-run', '--db', db]);
    expect(drill.code, drill.stderr).toBe(0);
    expect(drill.stdout).toMatch(/pause container gauntlet-e2e-dryrun/);
    expect(await snapshot()).toEqual(before);
    // Nothing recorded either: not even a database was created.
    const runs = await runCli(['runs', '--db', db]);
    expect(runs.stderr).toContain(`error GAUNTLET_STORE_MISSING: no database at ${db}`);
  }, 60_000);
});
