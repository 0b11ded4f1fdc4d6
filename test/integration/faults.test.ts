// Every Docker fault kind of faults/ against a real simulator container: the effect is
// observed from outside (Docker's own state and events, the node's answers, the kernel's
// counters in the container's namespace), and after revert nothing is left.
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FAULTS } from '../../faults/index.js';
import { GAUNTLET_QDISC_HANDLE } from '../../faults/packet-loss.js';
import { dockerClient, type Docker } from '../../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { injectFault, type ActiveFault } from '../../src/fault/ledger.js';
import { inNetnsOk, listTaggedRules } from '../../src/fault/netns.js';
import type { FaultContext } from '../../src/fault/types.js';
import { silentLogger } from '../../src/log.js';
import { openStore, type Store } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { until } from '../helpers/cli.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const NAME = 'gauntlet-it-faults';

/** One health probe on a fresh connection: its status, or 'timeout' / the error code. */
async function health(endpoint: string, timeoutMs = 1000): Promise<number | string> {
  try {
    const r = await request(`${endpoint}/health`, { signal: AbortSignal.timeout(timeoutMs), reset: true });
    await r.body.dump();
    return r.statusCode;
  } catch (err) {
    const e = err as Error & { code?: string };
    return e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timeout' : (e.code ?? e.message);
  }
}

async function tcpRetransmits(docker: Docker, name: string): Promise<number> {
  const pid = (await docker.getContainer(name).inspect()).State.Pid;
  const snmp = await inNetnsOk(pid, 'cat', ['/proc/net/snmp']);
  const [head, values] = snmp.split('\n').filter((l) => l.startsWith('Tcp:'));
  const i = (head as string).split(/\s+/).indexOf('RetransSegs');
  return Number((values as string).split(/\s+/)[i]);
}

describeDocker('fault kinds against a simulator container (real Docker)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const clock = new RealClock();
  const ctx: FaultContext = { docker, log: silentLogger, clock };
  let store: Store;
  let endpoint: string;
  let target: { node: string; containerId: string; containerName: string };
  let seq = 0;

  const inject = (kind: string, params: Record<string, unknown>): Promise<ActiveFault> => {
    const injector = FAULTS[kind];
    if (!injector) throw new Error(`no fault kind ${kind}`);
    return injectFault(store, 'it', injector, target, injector.params.parse(params), ctx, `it-f${++seq}`);
  };
  const inspect = () => docker.getContainer(NAME).inspect();
  const serving = () => until('the node to serve', async () => (await health(endpoint)) === 200, 30_000);

  beforeAll(async () => {
    store = openStore(join(dir, 'g.db'));
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    const port = await freePort();
    const info = await startSimContainer(docker, image, { name: NAME, targetLabel: 'it-faults', gpus: 2, loadMs: 300, hostPort: port, memoryMb: 256 });
    endpoint = `http://127.0.0.1:${port}`;
    target = { node: 'node', containerId: info.Id, containerName: NAME };
    await serving();
  }, 120_000);

  afterAll(async () => {
    store?.close();
    await removeContainers(docker, [NAME]);
  });

  it('hang: the container stays running, probes time out; revert unpauses and it serves again', async () => {
    await serving();
    const f = await inject('hang', { duration: '5s' });
    const info = await inspect();
    expect(info.State).toMatchObject({ Running: true, Paused: true });
    expect(await health(endpoint, 800)).toBe('timeout');
    expect(await f.revert()).toBe('unpaused the container');
    expect((await inspect()).State.Paused).toBe(false);
    await serving();
    expect(await f.revert()).toBe('unpaused the container'); // idempotent: the same result, nothing more done
    expect(store.faults('it').at(-1)).toMatchObject({ kind: 'hang', state: 'reverted' });
  }, 60_000);

  it('node-kill stop: down until revert starts it; no restart by policy', async () => {
    await serving();
    const before = await inspect();
    const f = await inject('node-kill', { mode: 'stop', down_for: '10s', stop_timeout: '2s' });
    const stopped = await inspect();
    expect(stopped.State.Running).toBe(false);
    expect(stopped.RestartCount).toBe(before.RestartCount);
    expect(await f.revert()).toMatch(/started the container/);
    await serving();
  }, 60_000);

  it('node-kill restart: a new incarnation at once', async () => {
    await serving();
    const before = await inspect();
    const f = await inject('node-kill', { mode: 'restart', stop_timeout: '2s' });
    const after = await inspect();
    expect(after.State.StartedAt).not.toBe(before.State.StartedAt);
    expect(await f.revert()).toMatch(/^nothing: container running again/);
    await serving();
  }, 60_000);

  it('oom kill: the kernel OOM-kills the node in its own cgroup, Docker says OOMKilled, the restart policy fires; nothing left', async () => {
    await serving();
    const before = await inspect();
    const f = await inject('oom', { mode: 'kill' });
    const after = await until(
      'the OOM kill and the restart',
      async () => {
        const i = await inspect();
        return i.RestartCount > before.RestartCount && i.State.Running ? i : null;
      },
      30_000,
    );
    expect(after.State.OOMKilled).toBe(true);
    await serving();
    expect(await f.revert()).toMatch(/^the node was OOM-killed; it runs again \(restart policy restarts: 1\)/);
    const row = store.faults('it').at(-1);
    expect(JSON.parse(row?.result ?? '{}')).toMatchObject({ outcome: 'oom_killed', oom_killed: true });
    // The hog removed its own file; the new incarnation runs no hog.
    await expect(docker.getContainer(NAME).getArchive({ path: `/.gauntlet-hog-it-f${seq}` })).rejects.toMatchObject({ statusCode: 404 });
    const top = (await docker.getContainer(NAME).top({ ps_args: '-eo pid,args' })) as { Processes: string[][] };
    expect(top.Processes.flat().join(' ')).not.toContain('gauntlet-hog');
  }, 60_000);

  it('oom pressure: the hog holds a share of the limit; the node survives and the numbers are recorded', async () => {
    await serving();
    const before = await inspect();
    const f = await inject('oom', { mode: 'pressure', share: 0.4, duration: '20s' });
    const limitMib = 256;
    const stats = await until(
      'the hog to fill its share',
      async () => {
        const s = (await docker.getContainer(NAME).stats({ stream: false })) as { memory_stats: { usage: number } };
        return s.memory_stats.usage / 2 ** 20 > 0.35 * limitMib ? s : null;
      },
      20_000,
    );
    expect(stats).toBeTruthy();
    expect(await health(endpoint)).toBe(200);
    const action = await f.revert();
    expect(action).toMatch(/^the node survived; killed the hog/);
    expect((await inspect()).State.StartedAt).toBe(before.State.StartedAt);
    const result = JSON.parse(store.faults('it').at(-1)?.result ?? '{}');
    expect(result.outcome).toBe('survived');
    expect(result.max_usage_mib).toBeGreaterThan(0.35 * limitMib);
    const top = (await docker.getContainer(NAME).top({ ps_args: '-eo pid,args' })) as { Processes: string[][] };
    expect(top.Processes.flat().join(' ')).not.toContain('gauntlet-hog');
  }, 60_000);

  it('oom refuses a container without a memory limit, touching nothing', async () => {
    const other = `${NAME}-nolimit`;
    await removeContainers(docker, [other]);
    const image = await ensureSimImage(docker, silentLogger);
    const info = await startSimContainer(docker, image, { name: other, targetLabel: 'it-nolimit', gpus: 1, loadMs: 100, hostPort: await freePort() });
    try {
      const injector = FAULTS.oom;
      if (!injector) throw new Error('oom missing');
      const t = { node: 'nolimit', containerId: info.Id, containerName: other };
      await expect(injectFault(store, 'it', injector, t, injector.params.parse({ mode: 'kill' }), ctx, 'it-nolimit')).rejects.toThrow(/has no memory limit/);
      expect(store.faults('it').find((r) => r.id === 'it-nolimit')).toMatchObject({ state: 'failed' });
      const pid = (await docker.getContainer(other).inspect()).State.Pid;
      expect((await import('node:fs')).readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim()).toBe('0');
    } finally {
      await removeContainers(docker, [other]);
    }
  }, 60_000);

  it('packet-loss: rules in the namespace drop packets (TCP retransmits grow); revert leaves no rule', async () => {
    await serving();
    const pid = (await inspect()).State.Pid;
    const retransBefore = await tcpRetransmits(docker, NAME);
    const f = await inject('packet-loss', { share: 0.5, duration: '30s' });
    const row = store.faults('it').at(-1);
    if (row?.driver === 'iptables') expect(await listTaggedRules(pid, row.id)).toHaveLength(2);
    else expect(await inNetnsOk(pid, 'tc', ['qdisc', 'show', 'dev', 'eth0'])).toContain(GAUNTLET_QDISC_HANDLE);
    // Traffic through the published port crosses the namespace: half its packets vanish.
    let failed = 0;
    for (let i = 0; i < 10; i++) if ((await health(endpoint, 1000)) !== 200) failed++;
    const retransAfter = await tcpRetransmits(docker, NAME);
    process.stderr.write(`packet-loss test: driver ${row?.driver}; 10 probes, ${failed} failed; TCP retransmits in the namespace ${retransBefore} → ${retransAfter}\n`);
    expect(retransAfter).toBeGreaterThan(retransBefore);
    expect(await f.revert()).toMatch(/^removed (2 iptables rule\(s\)|the netem qdisc)$/);
    expect(await listTaggedRules(pid)).toEqual([]);
    expect(await inNetnsOk(pid, 'tc', ['qdisc', 'show', 'dev', 'eth0'])).not.toContain(GAUNTLET_QDISC_HANDLE);
    // The ledger records what the drops did, from the kernel's counters.
    const result = JSON.parse(store.faults('it').find((r) => r.id === row?.id)?.result ?? '{}');
    expect(result.dropped_packets).toBeGreaterThan(0);
    expect(result.tcp_retransmits).toBeGreaterThanOrEqual(retransAfter - retransBefore);
    await serving();
  }, 90_000);

  it('packet-loss on a target restarted mid-fault: the new namespace has no rule; revert says so and leaves nothing', async () => {
    await serving();
    const f = await inject('packet-loss', { share: 0.2, duration: '30s', driver: 'iptables' });
    const oldPid = (await inspect()).State.Pid;
    expect(await listTaggedRules(oldPid)).toHaveLength(2);
    await docker.getContainer(NAME).restart({ t: 1 });
    const pid = (await inspect()).State.Pid;
    expect(pid).not.toBe(oldPid);
    expect(await f.revert()).toBe('nothing: the container restarted; its new namespace has no rules');
    expect(await listTaggedRules(pid)).toEqual([]);
    await serving();
  }, 60_000);

  it('oom pressure on a target restarted mid-fault: the hog went with the old incarnation', async () => {
    await serving();
    const f = await inject('oom', { mode: 'pressure', share: 0.2, duration: '30s' });
    await until('the hog to run', async () => ((await docker.getContainer(NAME).top({ ps_args: '-eo pid,args' })) as { Processes: string[][] }).Processes.flat().join(' ').includes('gauntlet-hog'), 10_000);
    await docker.getContainer(NAME).restart({ t: 1 });
    expect(await f.revert()).toMatch(/^the node's incarnation ended without an OOM kill \(restarted by someone else\); it runs again/);
    const top = (await docker.getContainer(NAME).top({ ps_args: '-eo pid,args' })) as { Processes: string[][] };
    expect(top.Processes.flat().join(' ')).not.toContain('gauntlet-hog');
    await serving();
  }, 60_000);
});
