// "A fault is never left behind", for every fault kind: Gauntlet is SIGKILLed while the fault
// is in effect (checked from outside), then started again (`gauntlet revert`), and the target
// is found as it was: running, not paused, no rule, no helper container, no hog, serving.
import Database from 'better-sqlite3';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FAULTS } from '../../faults/index.js';
import { dockerClient } from '../../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { inNetnsOk, listTaggedRules } from '../../src/fault/netns.js';
import { silentLogger } from '../../src/log.js';
import { freePort } from '../../src/util/ports.js';
import { runCli, startCli, until } from '../helpers/cli.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const NAME = 'gauntlet-e2e-sigkill';

interface Case {
  kind: string;
  params: string;
  /** True once the fault is visibly in effect on the target. */
  inEffect: () => Promise<boolean>;
}

describeDocker('SIGKILL of Gauntlet during each fault kind, then a restart (real Docker, real processes)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const db = join(dir, 'g.db');
  let endpoint = '';
  let startedAt = '';

  const inspect = () => docker.getContainer(NAME).inspect();
  const pid = async () => (await inspect()).State.Pid;
  const processes = async (): Promise<string> => ((await docker.getContainer(NAME).top({ ps_args: '-eo pid,args' })) as { Processes: string[][] }).Processes.flat().join('\n');
  const serves = async (): Promise<boolean> => {
    try {
      const r = await request(`${endpoint}/v1/completions`, { method: 'POST', body: '{"prompt":"x","max_tokens":1}', signal: AbortSignal.timeout(1500), reset: true });
      await r.body.dump();
      return r.statusCode === 200;
    } catch {
      return false;
    }
  };
  const helpers = async () => docker.listContainers({ all: true, filters: { label: ['gauntlet.fault'] } });
  const faultState = (): string | undefined => {
    if (!existsSync(db)) return undefined;
    const conn = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return (conn.prepare('SELECT state FROM faults ORDER BY planned_at DESC LIMIT 1').get() as { state: string } | undefined)?.state;
    } catch {
      return undefined;
    } finally {
      conn.close();
    }
  };

  const cases: Case[] = [
    { kind: 'hang', params: '{ duration: 60s }', inEffect: async () => (await inspect()).State.Paused },
    { kind: 'node-kill', params: '{ mode: stop, down_for: 60s, stop_timeout: 1s }', inEffect: async () => !(await inspect()).State.Running },
    { kind: 'packet-loss', params: '{ share: 0.2, duration: 60s, driver: iptables }', inEffect: async () => (await listTaggedRules(await pid())).length > 0 },
    { kind: 'oom', params: '{ mode: pressure, share: 0.3, duration: 60s }', inEffect: async () => (await processes()).includes('gauntlet-hog') },
    { kind: 'oom', params: '{ mode: kill }', inEffect: async () => (await inspect()).RestartCount > 0 || (await processes()).includes('gauntlet-hog') },
    { kind: 'latency', params: '{ delay: 200ms, duration: 60s, driver: proxy }', inEffect: async () => (await helpers()).length > 0 && (await listTaggedRules(await pid())).length > 0 },
    { kind: 'gpu-worker-kill', params: '{ restore: restart }', inEffect: async () => (await processes()).split('\n').filter((l) => l.includes('--worker ')).length < 2 },
  ];

  beforeAll(async () => {
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    const port = await freePort();
    // degraded: a lost GPU worker leaves the node serving, so only the revert restores it.
    const info = await startSimContainer(docker, image, { name: NAME, targetLabel: 'e2e-sigkill', gpus: 2, loadMs: 300, hostPort: port, memoryMb: 256, extraArgs: ['--worker-loss', 'degraded'] });
    endpoint = `http://127.0.0.1:${port}`;
    startedAt = info.State.StartedAt;
    await until('the node to serve', serves, 30_000);
  }, 120_000);

  afterAll(() => removeContainers(docker, [NAME]));

  it.each(cases.map((c) => [c.kind, c.params, c] as const))('%s %s: in effect when Gauntlet dies; gauntlet revert puts the target back', async (kind, params, c) => {
    expect(FAULTS[kind], `fault kind ${kind} is registered`).toBeDefined();
    await until('the node to serve before the fault', serves, 30_000);
    const plan = join(dir, `${kind}-${params.length}.yaml`);
    writeFileSync(
      plan,
      `name: sigkill
duration: 120s
targets: [{ name: node, container: ${NAME} }]
load: { rate: 2, max_tokens: 8, timeout: 5s }
faults: [{ kind: ${kind}, target: node, at: 1s, params: ${params} }]
probes: { interval: 500ms, fast_interval: 100ms }
recovery_limit: 100s
ready_timeout: 30s
`,
    );
    const run = startCli(['run', plan, '--db', db, '--reports', join(dir, 'reports')]);
    await until(`the ${kind} fault to be active`, () => faultState() === 'active', 30_000);
    await until(`the ${kind} fault to be visible on the target`, c.inEffect, 15_000);
    run.proc.kill('SIGKILL');
    await run.exit;
    expect(faultState()).toBe('active');

    const revert = await runCli(['revert', '--db', db]);
    expect(revert.code, revert.stdout + revert.stderr).toBe(0);
    expect(revert.stdout).toMatch(new RegExp(`\\(${kind} on node\\): `));
    expect(faultState()).toBe('reverted');

    // As it was: running, not paused, no rules, no qdisc of ours, no helper, no hog, all workers, serving.
    await until('the target to run again', async () => (await inspect()).State.Running, 20_000);
    const info = await inspect();
    expect(info.State.Paused).toBe(false);
    expect(await listTaggedRules(info.State.Pid)).toEqual([]);
    expect(await inNetnsOk(info.State.Pid, 'tc', ['qdisc', 'show'])).not.toMatch(/6a1[78]:/);
    expect(await helpers()).toEqual([]);
    await until('the workers to be back', async () => (await processes()).split('\n').filter((l) => l.includes('--worker ')).length === 2, 20_000);
    expect(await processes()).not.toContain('gauntlet-hog');
    await until('the node to serve again', serves, 30_000);
    process.stderr.write(`sigkill ${kind} ${params}: revert said: ${revert.stdout.trim().split('\n').join(' | ')}; container ${info.State.StartedAt === startedAt ? 'same incarnation' : 'restarted'}\n`);
  }, 120_000);
});
