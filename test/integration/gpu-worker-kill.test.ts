// gpu-worker-kill against simulator containers on the real Docker engine, one per reaction of
// the node to the loss (--worker-loss): crash, hang, degraded. Each fault goes through the
// ledger (injectFault) as a run would inject it; the effects are measured here, from Docker's
// events, health probes and streamed requests of the same run.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_WORKER_PATTERN, chooseWorker, gpuWorkerKill, parseTop } from '../../faults/gpu-worker-kill.js';
import { dockerClient, tailLogs, watchContainerEvents, type EventWatch } from '../../src/docker/engine.js';
import type { ContainerEvent } from '../../src/docker/events.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { injectFault } from '../../src/fault/ledger.js';
import type { FaultContext, FaultInjector, FaultTarget } from '../../src/fault/types.js';
import { silentLogger } from '../../src/log.js';
import { openStore, type Store } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { describeDocker } from '../helpers/docker.js';
import { median, metric, openStream, probeHealth, streamGaps, waitServing } from '../helpers/sim-stream.js';
import { tempDir } from '../helpers/tmp.js';

const NAMES = { crash: 'gauntlet-it-gpuw-crash', hang: 'gauntlet-it-gpuw-hang', degraded: 'gauntlet-it-gpuw-degraded' } as const;
type Reaction = keyof typeof NAMES;

describeDocker('gpu-worker-kill on simulator containers (real Docker)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const clock = new RealClock();
  const ctx: FaultContext = { docker, log: silentLogger, clock };
  const injector = gpuWorkerKill as FaultInjector<unknown>;
  const params = gpuWorkerKill.params.parse({});
  let image: string;
  let store: Store;
  const watches: EventWatch[] = [];

  beforeAll(async () => {
    image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, Object.values(NAMES));
    store = openStore(join(dir, 'g.db'));
  }, 120_000);

  afterAll(async () => {
    for (const w of watches) w.stop();
    store?.close();
    await removeContainers(docker, Object.values(NAMES));
  });

  /** A 4-GPU simulator container with this reaction, serving, with its Docker events followed. */
  async function startNode(reaction: Reaction, extraArgs: string[] = []) {
    const port = await freePort();
    const info = await startSimContainer(docker, image, {
      name: NAMES[reaction],
      targetLabel: `it-gpuw-${reaction}`,
      gpus: 4,
      loadMs: 500,
      hostPort: port,
      extraArgs: ['--worker-loss', reaction, ...extraArgs],
    });
    const events: ContainerEvent[] = [];
    const watch = watchContainerEvents(docker, [info.Id], (e) => events.push(e), silentLogger);
    watches.push(watch);
    await watch.ready;
    const base = `http://127.0.0.1:${port}`;
    await waitServing(base, 30_000);
    const target: FaultTarget = { node: `node-${reaction}`, containerId: info.Id, containerName: NAMES[reaction] };
    return { info, base, target, events };
  }

  /** The container's GPU workers now, as the fault would count them. */
  async function workerPids(name: string): Promise<number[]> {
    const info = await docker.getContainer(name).inspect();
    const procs = parseTop(await docker.getContainer(name).top({ ps_args: '-eo pid,ppid,args' }));
    return chooseWorker(procs, info.State.Pid, DEFAULT_WORKER_PATTERN).matches.map((p) => p.pid);
  }

  async function until<T>(what: string, limitMs: number, fn: () => T | undefined | Promise<T | undefined>): Promise<T> {
    const deadline = clock.now() + limitMs;
    for (let i = 0; i < 10_000 && clock.now() < deadline; i++) {
      const v = await fn();
      if (v !== undefined) return v;
      await clock.sleep(25);
    }
    throw new Error(`${what}: not within ${limitMs} ms`);
  }

  /** After revert: the container runs all 4 workers and serves. */
  async function expectRestored(name: string, base: string): Promise<void> {
    await waitServing(base, 30_000);
    const info = await docker.getContainer(name).inspect();
    expect(info.State.Running).toBe(true);
    expect(await until('4 workers', 10_000, async () => ((await workerPids(name)).length === 4 ? true : undefined))).toBe(true);
    expect(await metric(base, 'sim_workers_alive')).toBe(4);
  }

  it('crash: the node exits non-zero at once and the restart policy brings it back; revert has nothing to do', async () => {
    const { info, base, target, events } = await startNode('crash');
    const workersBefore = await workerPids(NAMES.crash);
    expect(workersBefore).toHaveLength(4);

    const fault = await injectFault(store, null, injector, target, params, ctx);
    const row = store.db.prepare('SELECT detail FROM faults WHERE id = ?').get(fault.id) as { detail: string };
    const detail = JSON.parse(row.detail) as { pid: number; mainPid: number };
    expect(detail.pid).toBe(workersBefore[3]); // the last worker by default
    expect(detail.mainPid).toBe(info.State.Pid);

    const die = await until('die event', 15_000, () => events.find((e) => e.action === 'die'));
    expect(die.exitCode).toBe(1); // the node's own FATAL exit, not the SIGKILL of its main process (137)
    expect(events.some((e) => e.action === 'kill')).toBe(false);
    const start = await until('restart by policy', 30_000, () => events.find((e) => e.action === 'start' && e.at > die.at));
    const servingAt = await waitServing(base, 30_000);
    const after = await docker.getContainer(NAMES.crash).inspect();
    expect(after.RestartCount).toBe(info.RestartCount + 1);
    expect(after.State.StartedAt).not.toBe(info.State.StartedAt);
    const logs = await tailLogs(docker, NAMES.crash, 40);
    expect(logs.join('\n')).toMatch(new RegExp(`FATAL GPU worker rank 3 \\(pid \\d+\\) exited \\(SIGKILL\\); tensor-parallel group is broken`));

    const action = await fault.revert();
    expect(action).toBe('nothing: the container has restarted since (by its restart policy); its workers came back with it');
    expect(await fault.revert()).toBe(action);
    await expectRestored(NAMES.crash, base);
    process.stderr.write(
      `gpu-worker-kill crash: die (exit ${die.exitCode}) ${(die.at - fault.injectedAt).toFixed(0)} ms after the kill; restarted by policy at +${(start.at - fault.injectedAt).toFixed(0)} ms; serving again at +${(servingAt - fault.injectedAt).toFixed(0)} ms; restart count ${info.RestartCount} → ${after.RestartCount}\n`,
    );
  }, 120_000);

  it('hang: health probes time out while the container runs; revert restarts it and it serves again', async () => {
    const { info, base, target } = await startNode('hang', ['--step-timeout-ms', '600000']);
    expect(await probeHealth(base, 5000)).toBe(200);
    const inflight = openStream(base, 20_000);
    try {
      await until('in-flight stream under way', 10_000, () => (inflight.reader.summary.contentChunks >= 3 ? true : undefined));
      const fault = await injectFault(store, null, injector, target, params, ctx);
      await until('the loss is seen by the node', 5000, async () => ((await metric(base, 'sim_workers_alive')) === 3 ? true : undefined));
      const chunksAtLoss = inflight.reader.summary.contentChunks;
      const probes: (number | string)[] = [];
      probes.push(await probeHealth(base, 1000));
      // A chunk the node wrote just before the loss may still be on its way when the loss is
      // seen: the stall is measured from a second later.
      const chunksAfterFirstProbe = inflight.reader.summary.contentChunks;
      for (let i = 0; i < 2; i++) probes.push(await probeHealth(base, 1000));
      const state = await docker.getContainer(NAMES.hang).inspect();
      expect(probes).toEqual(['timeout', 'timeout', 'timeout']);
      expect(state.State.Running).toBe(true);
      expect(state.State.StartedAt).toBe(info.State.StartedAt);
      expect(state.State.Pid).toBe(info.State.Pid);
      expect(inflight.reader.summary.contentChunks - chunksAtLoss).toBeLessThanOrEqual(1);
      expect(inflight.reader.summary.contentChunks).toBe(chunksAfterFirstProbe);
      expect(await workerPids(NAMES.hang)).toHaveLength(3);
      const hungFor = clock.now() - fault.injectedAt;

      const revertStarted = clock.now();
      const action = await fault.revert();
      const reverted = clock.now();
      expect(action).toBe('restarted the container through the Docker API: it was still running with 3 of 4 GPU workers');
      const servingAt = await waitServing(base, 30_000);
      const after = await docker.getContainer(NAMES.hang).inspect();
      expect(after.State.StartedAt).not.toBe(info.State.StartedAt);
      expect(after.RestartCount).toBe(info.RestartCount); // a restart through the API, not by policy
      await expectRestored(NAMES.hang, base);
      expect(await probeHealth(base, 5000)).toBe(200);
      expect(await fault.revert()).toBe(action);
      const row = store.db.prepare('SELECT state, revert_action FROM faults WHERE id = ?').get(fault.id);
      expect(row).toEqual({ state: 'reverted', revert_action: action });
      process.stderr.write(
        `gpu-worker-kill hang: 3/3 health probes timed out (1 s each) while the container ran, ${hungFor.toFixed(0)} ms into the hang; in-flight stream got 0 chunks after the loss; revert took ${(reverted - revertStarted).toFixed(0)} ms; serving again ${(servingAt - reverted).toFixed(0)} ms after it\n`,
      );
    } finally {
      inflight.abort();
    }
  }, 120_000);

  it('degraded: the inter-token gap grows against the same requests before the fault; revert restores the workers and the pace', async () => {
    const { info, base, target } = await startNode('degraded', ['--itl-ms', '25']);
    const gapsOf = async (): Promise<number[]> => {
      const gaps: number[] = [];
      for (let i = 0; i < 3; i++) gaps.push(...(await streamGaps(base, 30)));
      return gaps;
    };
    const before = await gapsOf();
    const fault = await injectFault(store, null, injector, target, params, ctx);
    await until('the loss is seen by the node', 5000, async () => ((await metric(base, 'sim_workers_alive')) === 3 ? true : undefined));
    expect(await probeHealth(base, 5000)).toBe(200);
    const during = await gapsOf();
    const ratio = median(during) / median(before);
    expect(ratio).toBeGreaterThan(1.5);
    expect((await docker.getContainer(NAMES.degraded).inspect()).State.StartedAt).toBe(info.State.StartedAt);

    const action = await fault.revert();
    expect(action).toBe('restarted the container through the Docker API: it was still running with 3 of 4 GPU workers');
    await expectRestored(NAMES.degraded, base);
    const restored = await gapsOf();
    expect(median(restored)).toBeLessThan(median(during));
    process.stderr.write(
      `gpu-worker-kill degraded: median inter-token gap ${median(before).toFixed(1)} ms before, ${median(during).toFixed(1)} ms with 3 of 4 workers (×${ratio.toFixed(2)}), ${median(restored).toFixed(1)} ms after revert; /health 200 throughout\n`,
    );
  }, 120_000);

  it('refuses a container without matching workers, naming what it saw, and records the refusal', async () => {
    await removeContainers(docker, [NAMES.crash]);
    const { target } = await startNode('crash');
    const refused = await injectFault(store, null, injector, target, gpuWorkerKill.params.parse({ pattern: 'no-such-worker' }), ctx).then(
      () => 'injected',
      (err: Error) => err.message,
    );
    expect(refused).toMatch(/injecting gpu-worker-kill into node-crash failed: no process matches \/no-such-worker\/ besides the main process \(pid \d+\); processes seen: /);
    // every process, in Docker's order (host pids: after a wrap-around the main one can come last)
    expect(refused).toMatch(/\d+ \(main\) \/usr\/bin\/node \/opt\/gauntlet\/sim\.cjs /);
    expect(refused).toMatch(/\d+ \/usr\/bin\/node \/opt\/gauntlet\/sim\.cjs --worker 0/);
    expect(await workerPids(NAMES.crash)).toHaveLength(4);
    const rows = store.db.prepare("SELECT state, error FROM faults WHERE state = 'failed'").all() as { state: string; error: string }[];
    expect(rows.map((r) => r.error)).toEqual([expect.stringMatching(/^prepare: .*no process matches \/no-such-worker\//)]);
  }, 60_000);
});
