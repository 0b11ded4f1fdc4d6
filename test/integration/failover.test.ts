// Failover at a service endpoint: two simulator containers behind the simulator's router mode
// (round-robin, health checks every 100 ms, a request retried elsewhere when its connection
// fails before any answer). Load goes to the router; a crash of one node and a freeze of the
// other are injected. The client-visible outage Gauntlet reports for each fault is compared
// with an independent poller's: every 25 ms a fresh request of the load's shape through the
// router, judged by the same definition (from the first failure until a response begun after the last
// failing send). The router's own log says when it took the dead node out (ground truth for the
// outage's end): after that no request can fail.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { clientOutage, type ServiceRequest } from '../../src/analysis/failover.js';
import { dockerClient } from '../../src/docker/engine.js';
import { ensureSimImage, removeContainers, simBundlePath, startSimContainer } from '../../src/docker/sim-image.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { buildReport } from '../../src/report/build.js';
import { runPlan } from '../../src/run/runner.js';
import { openStore } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { describeDocker } from '../helpers/docker.js';
import { watchLateness } from '../helpers/timing.js';
import { tempDir } from '../helpers/tmp.js';

const NAMES = ['gauntlet-it-failover-a', 'gauntlet-it-failover-b'];

describeDocker('failover through a service endpoint (real Docker, the simulator as router)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const clock = new RealClock();
  let router: ChildProcess | null = null;
  let routerUrl = '';
  let ports: number[] = [];
  /** The router's TRUTH lines: when it took a backend out or put it back. */
  const routerTruth: { at: number; event: string; backend?: string }[] = [];

  beforeAll(async () => {
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, NAMES);
    ports = [await freePort(), await freePort()];
    for (const [i, name] of NAMES.entries()) await startSimContainer(docker, image, { name, targetLabel: `it-failover-${i}`, gpus: 2, loadMs: 800, ttftMs: 20, itlMs: 10, hostPort: ports[i] as number });
    const rport = await freePort();
    router = spawn(process.execPath, [simBundlePath(), '--port', String(rport), '--router', ports.map((p) => `http://127.0.0.1:${p}`).join(','), '--router-check-ms', '100'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let rest = '';
    router.stdout?.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('TRUTH ')) routerTruth.push(JSON.parse(l.slice(6)));
    });
    routerUrl = `http://127.0.0.1:${rport}`;
    for (let i = 0; i < 600; i++) {
      const up = await request(`${routerUrl}/v1/models`, { reset: true }).then(
        (r) => (r.body.dump(), r.statusCode === 200),
        () => false,
      );
      if (up) return;
      await clock.sleep(50);
    }
    throw new Error('router or nodes not serving within 30 s');
  }, 120_000);

  afterAll(async () => {
    router?.kill('SIGKILL');
    await removeContainers(docker, NAMES);
  });

  // The load samples the service about as densely as the witness (every 33 ms; it every 25 ms):
  // the router sends each request to a random node, so a sparser load sees the outage begin and
  // end later or earlier by a few of its own spacings (at 20/s it was 410 ms against the
  // witness's 692 under stress-ng). Denser still (50/s) overloads a saturated CI machine.
  it("each fault's client-visible outage at the service agrees with an independent poller's within 100 ms beyond what random routing hid from either", async () => {
    const store = openStore(join(dir, 'f.db'));
    const plan = parsePlanText(`
name: failover
duration: 14s
targets: [{ name: a, container: ${NAMES[0]} }, { name: b, container: ${NAMES[1]} }]
service: { name: router, endpoint: "${routerUrl}" }
load: { rate: 30, arrival: constant, api: chat, stream: true, prompt_tokens: 16, max_tokens: 8, timeout: 1500ms, model: sim-llama }
faults:
  - { kind: node-kill, target: a, at: 3s, params: { mode: crash } }
  - { kind: hang, target: b, at: 9s, params: { duration: 2s } }
probes: { interval: 1s, timeout: 500ms, failures: 2, fast_interval: 100ms }
detection: { fault_grace: 2s }
recovery_limit: 20s
`);
    // the independent witness: every 25 ms a fresh request through the router of the same shape
    // as the load's (an 8-token stream, 1.5 s timeout), read with its own client code: ok when
    // the stream ends with [DONE], serving from its first content chunk
    const polls: ServiceRequest[] = [];
    const stop = new AbortController();
    const poller = (async () => {
      const start = clock.now();
      const inflight: Promise<void>[] = [];
      for (let k = 0; k < 2000 && !stop.signal.aborted; k++) {
        inflight.push(
          (async () => {
            const sent = clock.now();
            let responded: number | null = null;
            let outcome = 'ok';
            try {
              const r = await request(`${routerUrl}/v1/chat/completions`, {
                method: 'POST',
                reset: true,
                body: JSON.stringify({ model: 'sim-llama', messages: [{ role: 'user', content: 'x' }], max_tokens: 8, stream: true }),
                headers: { 'content-type': 'application/json' },
                signal: AbortSignal.timeout(1500),
              });
              let text = '';
              for await (const chunk of r.body) {
                text += (chunk as Buffer).toString('utf8');
                if (responded === null && text.includes('"content"')) responded = clock.now();
              }
              if (r.statusCode !== 200) outcome = 'http_error';
              else if (!text.includes('[DONE]')) outcome = 'truncated';
            } catch (err) {
              outcome = (err as Error).name === 'TimeoutError' ? 'timeout' : 'conn_error';
            }
            polls.push({ sent_at: sent, response_at: responded, end_at: clock.now(), outcome });
          })(),
        );
        try {
          await clock.sleep(start + (k + 1) * 25 - clock.now(), stop.signal);
        } catch {
          break;
        }
      }
      await Promise.all(inflight);
    })();
    const lateness = watchLateness(() => clock.now());
    const result = await runPlan(plan, null, { store, clock, log: silentLogger, docker, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });
    stop.abort();
    await poller;
    const late = lateness.stop();
    expect(result.status).toBe('completed');
    const { report } = buildReport(store, result.runId);
    const sv = report.service;
    expect(sv).not.toBeNull();
    const ledger = store.faults(result.runId);
    expect(ledger.map((f) => f.state), JSON.stringify(ledger.map((f) => [f.kind, f.state, f.error]))).toEqual(['reverted', 'reverted']);
    const lines: string[] = [];
    const rows = store.db.prepare("SELECT sent_at, response_at, end_at, outcome FROM requests WHERE run_id = ? AND node = 'router' AND outcome != 'cancelled'").all(result.runId) as ServiceRequest[];
    for (const f of ledger) {
      const window = [f.injected_at as number, (f.reverted_at as number) + 2000] as const;
      const mine = sv?.outages.find((o) => o.fault_id === f.id);
      const own = clientOutage(rows, ...window);
      const truth = clientOutage(polls, ...window);
      const measured = mine?.outage_ms ?? 0;
      expect(measured).toBeCloseTo(own?.outageMs ?? 0, 1); // the report says what the rows say (rounded to 0.1 ms)
      const witnessed = truth?.outageMs ?? 0;
      const busy = late.worst(...window);
      // When the router took the node out (its own log): no request sent after that can fail.
      // On a starved machine its health checks can time out and take a healthy node out before
      // the fault: then the router was already failing over and this fault shows nothing to compare.
      const port = ports[f.node === 'a' ? 0 : 1];
      const seen = routerTruth.filter((t) => t.backend === `127.0.0.1:${port}` && (t.event === 'backend_down' || t.event === 'backend_up'));
      const before = seen.filter((t) => t.at < window[0]).at(-1);
      if (before?.event === 'backend_down') {
        lines.push(`${f.kind} on ${f.node}: the router had already taken it out ${(window[0] - before.at).toFixed(0)} ms before the fault (its checks timed out on a busy machine): not compared`);
        continue;
      }
      const down = seen.find((t) => t.event === 'backend_down' && t.at >= window[0] - 100 && t.at <= window[1]);
      // Two samplers of one outage agree to within how finely each saw its end: between its
      // last failing send and the first answer after it the router stopped failing. The router
      // picks a backend at random for each request, so a sampler's last sends before the node
      // was taken out may all have gone to the live node by chance: it is blind from its last
      // failing send until the takedown (each send there had a 1 in 2 chance of showing the
      // outage still on; the chance that 12 in a row did not is 1 in 4096).
      const blind = (o: typeof own, reqs: readonly ServiceRequest[]): number => {
        if (!o || !down) return 0;
        const missed = reqs.filter((r) => r.sent_at > o.lastFailedSentAt && r.sent_at < down.at).length;
        expect(missed, `${f.kind} on ${f.node}: ${missed} sends in a row went to the live node before the router took ${f.node} out: not random routing`).toBeLessThanOrEqual(12);
        return Math.max(0, down.at - o.lastFailedSentAt);
      };
      const resolution = Math.max(own?.servingAgainAt != null ? own.servingAgainAt - own.lastFailedSentAt : 0, truth?.servingAgainAt != null ? truth.servingAgainAt - truth.lastFailedSentAt : 0);
      const blindMs = Math.max(blind(own, rows), blind(truth, polls));
      lines.push(`${f.kind} on ${f.node}: Gauntlet ${measured.toFixed(0)} ms (${mine?.failed_requests ?? 0} failed), poller ${witnessed.toFixed(0)} ms (${truth?.failed ?? 0} failed), end seen to within ${resolution.toFixed(0)} ms, blind by chance ≤ ${blindMs.toFixed(0)} ms, router took it out ${down ? `${(down.at - window[0]).toFixed(0)} ms after injection` : 'never'}, loop late ≤ ${busy.toFixed(0)} ms`);
      expect(Math.abs(measured - witnessed), lines.at(-1)).toBeLessThanOrEqual(100 + busy + resolution + blindMs);

    }
    // the nodes' own recovery is still measured, apart from the service's outage
    const episodes = store.episodes(result.runId);
    lines.push(`node episodes: ${episodes.map((e) => `${e.node} ${e.cause.split('-').at(-1)} ${((e.serving_again_at ?? 0) - e.started_at).toFixed(0)} ms`).join(', ')}`);
    process.stderr.write(`failover: ${lines.join(' | ')}\n`);
    expect(episodes.map((e) => e.node).sort(), episodes.map((x) => `${x.node} ${x.cause}: ${x.first_evidence}`).join('; ')).toEqual(['a', 'b']);
    for (const e of episodes) expect(e.cause, episodes.map((x) => `${x.node} ${x.cause}: ${x.first_evidence}`).join('; ')).toMatch(/^injected:/);
    store.close();
  }, 120_000);
});
