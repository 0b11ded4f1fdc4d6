// The simulator as a plain process losing one GPU worker, for each --worker-loss reaction:
// crash (exit at once), hang (alive, nothing answered, until the step watchdog), degraded
// (serving, slower). The worker is SIGKILLed here, by its pid from the node's own log.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { simBundlePath } from '../../src/docker/sim-image.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { median, metric, openStream, probeHealth, streamGaps, waitServing } from '../helpers/sim-stream.js';

const clock = new RealClock();
const procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

/** A line of the node's log: ISO timestamp, sim[pid], then the message. */
const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z sim\[\d+\] /;

async function startSim(args: string[]) {
  if (!existsSync(simBundlePath())) throw new Error(`${simBundlePath()} missing: run npm run build`);
  const port = await freePort();
  const proc = spawn(process.execPath, [simBundlePath(), '--port', String(port), '--gpus', '4', '--load-ms', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(proc, 'exit').then(([code]) => ({ code: code as number | null, at: clock.now() }));
  const base = `http://127.0.0.1:${port}`;
  await waitServing(base, 15_000);
  const pids = /shard pids (\d+),(\d+),(\d+),(\d+)/.exec(out)?.slice(1).map(Number);
  if (!pids) throw new Error(`no shard pids in the node's log:\n${out}`);
  return { proc, base, pids, exited, output: () => out, line: (re: RegExp) => out.split('\n').find((l) => re.test(l)) };
}

function alive(p: ChildProcess): boolean {
  return p.exitCode === null && p.signalCode === null;
}

describe('simulator losing one GPU worker (real processes)', () => {
  it('crash: logs FATAL and exits non-zero at once', async () => {
    const sim = await startSim(['--worker-loss', 'crash']);
    expect(await metric(sim.base, 'sim_workers_alive')).toBe(4);
    const killedAt = clock.now();
    process.kill(sim.pids[3] as number, 'SIGKILL');
    const { code, at } = await sim.exited;
    expect(code).toBe(1);
    expect(sim.line(/FATAL GPU worker rank 3/)).toMatch(new RegExp(`${LOG_LINE.source}FATAL GPU worker rank 3 \\(pid ${sim.pids[3]}\\) exited \\(SIGKILL\\); tensor-parallel group is broken; aborting$`));
    process.stderr.write(`worker-loss crash: node exited ${(at - killedAt).toFixed(0)} ms after the worker was killed\n`);
  });

  it('hang: the stream in flight and new requests get no token, /health is never answered, the process stays up', async () => {
    const sim = await startSim(['--worker-loss', 'hang', '--step-timeout-ms', '600000']);
    const inflight = openStream(sim.base, 20_000);
    for (let i = 0; i < 200 && inflight.reader.summary.contentChunks < 5; i++) await clock.sleep(20);
    expect(inflight.reader.summary.contentChunks).toBeGreaterThanOrEqual(5);
    expect(await probeHealth(sim.base, 5000)).toBe(200);

    process.kill(sim.pids[2] as number, 'SIGKILL');
    for (let i = 0; i < 100 && !sim.line(/worker-loss=hang/); i++) await clock.sleep(20);
    const chunksAtLoss = inflight.reader.summary.contentChunks;
    const fresh = openStream(sim.base, 8);
    const probes = [await probeHealth(sim.base, 1000), await probeHealth(sim.base, 1000), await probeHealth(sim.base, 1000)];
    const inflightAfter = inflight.reader.summary.contentChunks - chunksAtLoss;
    try {
      expect(probes).toEqual(['timeout', 'timeout', 'timeout']);
      // at most the step acknowledged just before the loss is still emitted
      expect(inflightAfter).toBeLessThanOrEqual(1);
      expect(fresh.reader.summary.contentChunks).toBe(0);
      expect(alive(sim.proc)).toBe(true);
      expect(await metric(sim.base, 'sim_workers_alive')).toBe(3);
      expect(sim.line(/worker-loss=hang/)).toMatch(new RegExp(`${LOG_LINE.source}WARN GPU worker rank 2 \\(pid ${sim.pids[2]}\\) exited \\(SIGKILL\\); worker-loss=hang: `));
      process.stderr.write(
        `worker-loss hang: 3 health probes timed out (1 s each); in-flight stream got ${inflightAfter} chunk(s) after the loss (${chunksAtLoss} before); new stream got ${fresh.reader.summary.contentChunks} in ${3} s\n`,
      );
    } finally {
      inflight.abort();
      fresh.abort();
    }
  });

  it('hang: the step watchdog still aborts the node when a stuck step has waited --step-timeout-ms', async () => {
    const sim = await startSim(['--worker-loss', 'hang', '--step-timeout-ms', '1500']);
    const inflight = openStream(sim.base, 20_000);
    for (let i = 0; i < 200 && inflight.reader.summary.contentChunks < 3; i++) await clock.sleep(20);
    const killedAt = clock.now();
    process.kill(sim.pids[1] as number, 'SIGKILL');
    const { code, at } = await sim.exited;
    inflight.abort();
    expect(code).toBe(1);
    // The stuck step began at most one decode step before the kill.
    expect(at - killedAt).toBeGreaterThan(1000);
    expect(sim.output()).toMatch(/FATAL decode step \d+ not acknowledged by all 4 shards within 1500 ms \(watchdog timeout\); no ack from rank 1; aborting/);
    process.stderr.write(`worker-loss hang, --step-timeout-ms 1500: watchdog aborted the node ${(at - killedAt).toFixed(0)} ms after the worker was killed\n`);
  });

  it('degraded: goes on with 3 of 4 workers, /health 200, each decode step twice as long', async () => {
    const sim = await startSim(['--worker-loss', 'degraded', '--itl-ms', '25']);
    const before: number[] = [];
    for (let i = 0; i < 3; i++) before.push(...(await streamGaps(sim.base, 30)));
    process.kill(sim.pids[0] as number, 'SIGKILL');
    for (let i = 0; i < 100 && !sim.line(/worker-loss=degraded/); i++) await clock.sleep(20);
    expect(sim.line(/worker-loss=degraded/)).toMatch(
      new RegExp(`${LOG_LINE.source}WARN GPU worker rank 0 \\(pid ${sim.pids[0]}\\) exited \\(SIGKILL\\); worker-loss=degraded: going on with 3 of 4 ranks, decode steps 2x slower$`),
    );
    expect(await probeHealth(sim.base, 5000)).toBe(200);
    expect(await metric(sim.base, 'sim_workers_alive')).toBe(3);
    const after: number[] = [];
    for (let i = 0; i < 3; i++) after.push(...(await streamGaps(sim.base, 30)));
    expect(alive(sim.proc)).toBe(true);
    const ratio = median(after) / median(before);
    process.stderr.write(`worker-loss degraded: median inter-token gap ${median(before).toFixed(1)} ms → ${median(after).toFixed(1)} ms (×${ratio.toFixed(2)}, factor 2)\n`);
    expect(ratio).toBeGreaterThan(1.5);
  });
});
