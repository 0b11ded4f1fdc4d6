// Telling a busy server from a hung one, against simulator processes and a whole run:
//   busy — the llama.cpp profile (its few HTTP threads all streaming): /health times out while
//          every request succeeds. No episode; the node is `busy`, counted available.
//   hung — the node's process frozen (SIGSTOP): probes, canaries and load all stop. One
//          spontaneous episode, detected within two fast intervals of the first missed deadline.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { simBundlePath } from '../../src/docker/sim-image.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { buildReport } from '../../src/report/build.js';
import { runPlan } from '../../src/run/runner.js';
import { openStore } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { watchLateness } from '../helpers/timing.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
const clock = new RealClock();
const procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) {
    if (p.exitCode === null) {
      p.kill('SIGCONT');
      p.kill('SIGKILL');
    }
  }
});

async function startSim(args: string[]): Promise<{ proc: ChildProcess; endpoint: string }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [simBundlePath(), '--port', String(port), '--load-ms', '0', ...args], { stdio: 'ignore' });
  procs.push(proc);
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    const ok = await request(`${endpoint}/health`).then(
      (r) => (r.body.dump(), r.statusCode === 200),
      () => false,
    );
    if (ok) return { proc, endpoint };
    await clock.sleep(50);
  }
  throw new Error('simulator not healthy within 15 s');
}

describe('busy or hung', () => {
  it('a llama.cpp-profile node loaded past its HTTP threads: /health times out, requests succeed, no episode; the node is busy and available', async () => {
    // 6 threads; 2 s streams at 4/s want 8 at once: every thread streams, /health and new
    // requests wait in the queue (as llama.cpp's do), and every request still completes.
    const { endpoint } = await startSim(['--profile', 'llamacpp', '--gpus', '2', '--ttft-ms', '50', '--itl-ms', '20', '--jitter', '0']);
    const store = openStore(join(dir, 'busy.db'));
    const plan = parsePlanText(`
name: busy
duration: 12s
targets: [{ name: llama, endpoint: "${endpoint}" }]
load: { rate: 4, arrival: constant, api: chat, stream: true, prompt_tokens: 16, max_tokens: 100, timeout: 40s, model: sim-llama }
probes: { interval: 500ms, timeout: 500ms, failures: 2, fast_interval: 200ms }
`);
    const result = await runPlan(plan, null, { store, clock, log: silentLogger, docker: null, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });
    expect(result.status).toBe('completed');
    const { report } = buildReport(store, result.runId);
    const probes = store.probes(result.runId).filter((p) => p.kind === 'health');
    const timedOut = probes.filter((p) => !p.ok).length;
    const states = store.nodeStates(result.runId);
    process.stderr.write(
      `busy llama.cpp profile: ${report.requests.total} requests, ${report.requests.failed} failed; health probes ${probes.length}, ${timedOut} failed; states ${states.map((s) => s.state).join(' → ')}; episodes ${store.episodes(result.runId).length}; availability ${report.availability.value}\n`,
    );
    // the profile really overwhelmed /health …
    expect(timedOut).toBeGreaterThanOrEqual(3);
    // … while every request succeeded: no failure, a busy state, and availability intact
    expect(report.requests.failed).toBe(0);
    expect(report.requests.ok).toBeGreaterThanOrEqual(40);
    expect(store.episodes(result.runId)).toEqual([]);
    expect(states.map((s) => s.state)).toContain('busy');
    expect(states.map((s) => s.state)).not.toContain('down');
    expect(report.availability.busy).toBeGreaterThanOrEqual(1);
    expect(report.availability.value).toBeGreaterThanOrEqual(0.9);
    store.close();
  }, 90_000);

  it('a frozen node (SIGSTOP) is a hang: one spontaneous episode, detected within two fast intervals of the first missed deadline, closed when it serves again', async () => {
    const { proc, endpoint } = await startSim(['--gpus', '2', '--ttft-ms', '30', '--itl-ms', '10', '--jitter', '0']);
    const store = openStore(join(dir, 'hung.db'));
    const fast = 100;
    const timeout = 500;
    const plan = parsePlanText(`
name: hung
duration: 9s
targets: [{ name: frozen, endpoint: "${endpoint}" }]
load: { rate: 4, arrival: constant, api: chat, stream: true, prompt_tokens: 16, max_tokens: 8, timeout: 20s, model: sim-llama }
probes: { interval: 1s, timeout: ${timeout}ms, failures: 2, fast_interval: ${fast}ms }
`);
    const lateness = watchLateness(() => clock.now());
    let stoppedAt = 0;
    let continuedAt = 0;
    const freezer = (async () => {
      await clock.sleep(3000);
      stoppedAt = clock.now();
      proc.kill('SIGSTOP');
      await clock.sleep(3000);
      continuedAt = clock.now();
      proc.kill('SIGCONT');
    })();
    const result = await runPlan(plan, null, { store, clock, log: silentLogger, docker: null, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });
    await freezer;
    const l = lateness.stop();
    const episodes = store.episodes(result.runId);
    expect(episodes).toHaveLength(1);
    const ep = episodes[0] as (typeof episodes)[number];
    const evidence = JSON.parse(ep.evidence) as { hang?: boolean };
    // The first failed probe was sent after the last sign of life, at most one normal interval after the freeze.
    const firstMissedDeadline = ep.started_at + timeout;
    const detectDelay = ep.detected_at - firstMissedDeadline;
    const late = l.worst(stoppedAt, ep.detected_at);
    process.stderr.write(
      `hang (SIGSTOP): episode starts ${(ep.started_at - stoppedAt).toFixed(0)} ms after the freeze; detected ${detectDelay.toFixed(0)} ms after the first missed deadline (fast interval ${fast} ms, loop late ≤ ${late.toFixed(0)} ms); serving again ${((ep.serving_again_at ?? 0) - continuedAt).toFixed(0)} ms after SIGCONT\n`,
    );
    expect(ep).toMatchObject({ cause: 'spontaneous', status: 'recovered' });
    expect(evidence.hang).toBe(true);
    expect(ep.started_at).toBeGreaterThanOrEqual(stoppedAt - 250); // signs of life come a few times a second
    expect(ep.started_at).toBeLessThanOrEqual(stoppedAt + 1000 + late);
    expect(detectDelay).toBeLessThanOrEqual(2 * fast + late + 20);
    expect(ep.serving_again_at as number).toBeGreaterThanOrEqual(continuedAt);
    expect((ep.serving_again_at as number) - continuedAt).toBeLessThanOrEqual(fast + late + 100);
    store.close();
  }, 90_000);

  it('availability over 50 s with a 10 s freeze is 80 % ± 2 %: every scheduled probe counts, the fast pace does not weigh more', async () => {
    const { proc, endpoint } = await startSim(['--gpus', '1', '--ttft-ms', '20', '--itl-ms', '10', '--jitter', '0']);
    const store = openStore(join(dir, 'avail.db'));
    const plan = parsePlanText(`
name: availability
duration: 50s
targets: [{ name: frozen, endpoint: "${endpoint}" }]
load: { rate: 2, arrival: constant, api: chat, stream: true, prompt_tokens: 16, max_tokens: 4, timeout: 30s, model: sim-llama }
probes: { interval: 500ms, timeout: 2s, failures: 2, fast_interval: 100ms }
recovery_limit: 60s
`);
    let frozenFor = 0;
    const freezer = (async () => {
      await clock.sleep(20_000);
      const from = clock.now();
      proc.kill('SIGSTOP');
      await clock.sleep(10_000);
      proc.kill('SIGCONT');
      frozenFor = clock.now() - from;
    })();
    const result = await runPlan(plan, null, { store, clock, log: silentLogger, docker: null, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });
    await freezer;
    const { report } = buildReport(store, result.runId);
    const run = store.getRun(result.runId);
    const loadMs = (run?.load_ended_at as number) - (run?.load_started_at as number);
    // the truth, from this test's own clock: the share of the load the process was not frozen
    const truth = 1 - frozenFor / loadMs;
    process.stderr.write(`availability: ${((report.availability.value ?? 0) * 100).toFixed(2)} % over ${report.availability.probes} health probes; truth ${(truth * 100).toFixed(2)} % (frozen ${frozenFor.toFixed(0)} ms of ${loadMs.toFixed(0)} ms)\n`);
    if (Math.abs((report.availability.value as number) - truth) > 0.01) {
      // what the figure was made of, to tell a measurement error from a slow machine's gaps
      const t0 = run?.load_started_at as number;
      const probes = store.db.prepare("SELECT sent_at, response_at, ok FROM probes WHERE run_id = ? AND kind = 'health' ORDER BY sent_at").all(result.runId) as { sent_at: number; response_at: number | null; ok: number }[];
      const gaps = probes.slice(1).map((p, i) => [p.sent_at - (probes[i] as { sent_at: number }).sent_at, (probes[i] as { sent_at: number }).sent_at - t0]).filter(([g]) => (g as number) > 500);
      const late = probes.filter((p) => !(p.ok && p.response_at !== null && p.response_at - p.sent_at <= 100)).map((p) => `${((p.sent_at - t0) / 1000).toFixed(2)}s:${p.response_at === null ? 'none' : `${(p.response_at - p.sent_at).toFixed(0)}ms`}${p.ok ? '' : '!'}`);
      const states = store.nodeStates(result.runId).map((x) => `${((x.at - t0) / 1000).toFixed(2)}s ${x.state}`);
      process.stderr.write(`  gaps over 500 ms between health probes (ms, at): ${JSON.stringify(gaps)}\n  probes not answered within 100 ms: ${late.join(' ')}\n  states: ${states.join(', ')}\n  report: ${JSON.stringify(report.availability)}\n`);
    }
    expect(report.availability.value as number).toBeGreaterThanOrEqual(0.78);
    expect(report.availability.value as number).toBeLessThanOrEqual(0.82);
    expect(Math.abs((report.availability.value as number) - truth)).toBeLessThanOrEqual(0.02);
    store.close();
  }, 180_000);
});
