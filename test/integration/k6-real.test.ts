// Gauntlet's k6 scenario on a real k6 binary against the simulator. Runs when K6_BIN or PATH
// has a real k6 (not the test stand-in); otherwise it says plainly that it was skipped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateK6, probeK6 } from '../../src/load/k6/binary.js';
import { BuiltinEngine } from '../../src/load/builtin.js';
import { K6Engine } from '../../src/load/k6/engine.js';
import type { RequestRecord } from '../../src/load/types.js';
import { silentLogger } from '../../src/log.js';
import { QUEUE_DELAY_LIMIT_MS } from '../../src/analysis/generator.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { quantile } from '../helpers/timing.js';
import { startSimProcess, type SimProcess } from '../helpers/sim-process.js';
import { testMix, testWorkload } from '../helpers/workload.js';

const path = locateK6();
const real = path !== null && (await probeK6(path)).version.indexOf('fake') === -1 && !path.includes('fake-k6');
if (!real) process.stderr.write('\n*** SKIPPED k6-real.test.ts: no real k6 binary (set K6_BIN or put k6 on PATH to run Gauntlet\'s k6 scenario for real). ***\n\n');

describe.runIf(real)('k6 engine with a real k6 binary', () => {
  let sim: SimProcess;
  let endpoint: string;
  beforeAll(async () => {
    sim = await startSimProcess(['--gpus', '2', '--load-ms', '0']);
    endpoint = sim.endpoint;
  });
  afterAll(() => sim?.kill());

  it("each record says when its response began and its first token came (k6 sample metadata), so recovery is timed as with the builtin engine", async () => {
    // A second simulator with a long, known time to first token: 150 ms, then 7 × 20 ms.
    const slow = await startSimProcess(['--gpus', '1', '--load-ms', '0', '--ttft-ms', '150', '--itl-ms', '20', '--jitter', '0']);
    try {
      const at = slow.endpoint;
      const workload = testWorkload({
        targets: [{ node: 'n', endpoint: at }],
        durationMs: 2000,
        profile: { startRate: 4, stages: [] },
        mix: [testMix({ name: 'streamed', model: 'sim-llama', maxTokens: { fixed: 8 } }), testMix({ name: 'plain', stream: false, model: 'sim-llama', maxTokens: { fixed: 8 } })],
        defaultModel: 'sim-llama',
      });
      // Ground truth from the same simulator in the same run: the builtin engine's own times.
      const truth: RequestRecord[] = [];
      await new BuiltinEngine(new RealClock()).run(workload, new AbortController().signal, { record: (r) => truth.push(r) });
      const engine = await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger });
      const records: RequestRecord[] = [];
      await engine.run(workload, new AbortController().signal, { record: (r) => records.push(r) });
      const ok = records.filter((r) => r.outcome === 'ok');
      expect(ok.length).toBeGreaterThan(3);
      for (const r of ok) {
        const line = JSON.stringify(r);
        expect(r.respondedAt, line).not.toBeNull();
        expect(r.respondedAt as number, line).toBeGreaterThanOrEqual(r.sentAt);
        expect(r.respondedAt as number, line).toBeLessThanOrEqual(r.endAt);
        if (r.mix !== 'streamed') continue;
        expect(r.firstTokenAt, line).not.toBeNull();
        expect(r.respondedAt as number, line).toBeLessThanOrEqual(r.firstTokenAt as number);
        expect(r.firstTokenAt as number, line).toBeLessThanOrEqual(r.endAt);
      }
      // Where the first token falls in the stream agrees with the builtin engine's (k6 times in whole ms).
      const firstMs = (rs: RequestRecord[]) => quantile(rs.filter((r) => r.outcome === 'ok' && r.mix === 'streamed').map((r) => (r.firstTokenAt as number) - r.sentAt), 0.5);
      const restMs = (rs: RequestRecord[]) => quantile(rs.filter((r) => r.outcome === 'ok' && r.mix === 'streamed').map((r) => r.endAt - (r.firstTokenAt as number)), 0.5);
      process.stderr.write(`k6-real first token: k6 p50 ${firstMs(ok).toFixed(1)} ms after the send, ${restMs(ok).toFixed(1)} ms before the end; builtin ${firstMs(truth).toFixed(1)} / ${restMs(truth).toFixed(1)} ms\n`);
      expect(firstMs(ok)).toBeGreaterThanOrEqual(150 - 1);
      expect(Math.abs(firstMs(ok) - firstMs(truth))).toBeLessThan(25);
      expect(Math.abs(restMs(ok) - restMs(truth))).toBeLessThan(25);
      expect(ok.some((r) => r.mix === 'streamed')).toBe(true);
    } finally {
      slow.kill();
    }
  }, 60_000);

  it('runs the plan at the planned rate and reports every request', async () => {
    const engine = await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger });
    const records: RequestRecord[] = [];
    let missed = 0;
    await engine.run(
      testWorkload({
        targets: [{ node: 'n', endpoint }],
        durationMs: 3000,
        profile: { startRate: 10, stages: [] },
        mix: [testMix({ model: 'sim-llama', maxTokens: { fixed: 8 } })],
        defaultModel: 'sim-llama',
      }),
      new AbortController().signal,
      { record: (r) => records.push(r), scheduleMiss: (_node, _at, n) => (missed += n) },
    );
    // 30 planned (10/s × 3 s, not 31: k6 would start one more at t = duration). On a busy machine
    // k6 may fall behind and drop arrivals; it reports each one (dropped_iterations), so sent +
    // missed is still exactly the plan.
    expect(records.length + missed).toBe(30);
    expect(records.length).toBeGreaterThanOrEqual(15);
    expect(records.every((r) => r.outcome === 'ok')).toBe(true);
  }, 60_000);

  it('a mix with a non-streamed kind: those requests go through k6/http and are ok, with their tokens', async () => {
    const engine = await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger });
    const records: RequestRecord[] = [];
    await engine.run(
      testWorkload({
        targets: [{ node: 'n', endpoint }],
        durationMs: 3000,
        profile: { startRate: 10, stages: [] },
        mix: [testMix({ name: 'streamed', model: 'sim-llama', maxTokens: { fixed: 8 } }), testMix({ name: 'plain', stream: false, model: 'sim-llama', maxTokens: { fixed: 8 } })],
        defaultModel: 'sim-llama',
      }),
      new AbortController().signal,
      { record: (r) => records.push(r) },
    );
    const plain = records.filter((r) => r.mix === 'plain');
    expect(plain.length).toBeGreaterThan(3);
    expect(plain.every((r) => r.outcome === 'ok'), JSON.stringify(plain.slice(0, 3))).toBe(true);
    expect(records.filter((r) => r.mix === 'streamed').every((r) => r.outcome === 'ok')).toBe(true);
  }, 60_000);

  it('150 streams/s for 20 s: k6 records at least 97 % of the plan, ttft and ITL as builtin measures them on the same plan', async () => {
    // A simulator of its own with room for the load (150/s × ~0.35 s in flight), no jitter.
    // ttft 200 ms, as a loaded server's; k6 adds its own 1–5 ms to each first token (its JS
    // event loop; whole-ms Date.now()), which is over 5 % of a 64 ms ttft but not of a real one.
    const node = await startSimProcess(['--gpus', '1', '--load-ms', '0', '--ttft-ms', '200', '--itl-ms', '20', '--jitter', '0', '--max-batch', '1024']);
    try {
      const at = node.endpoint;
      const workload = testWorkload({
        targets: [{ node: 'n', endpoint: at }],
        durationMs: 20_000,
        profile: { startRate: 150, stages: [] },
        mix: [testMix({ model: 'sim-llama', promptTokens: { fixed: 64 }, maxTokens: { fixed: 8 } })],
        defaultModel: 'sim-llama',
      });
      const planned = 150 * 20;
      const truth: RequestRecord[] = [];
      await new BuiltinEngine(new RealClock()).run(workload, new AbortController().signal, { record: (r) => truth.push(r) });
      const engine = await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger });
      const records: RequestRecord[] = [];
      const ttft: number[] = [];
      const itl: number[] = [];
      let missed = 0;
      await engine.run(workload, new AbortController().signal, {
        record: (r) => records.push(r),
        scheduleMiss: (_n, _a, c) => (missed += c),
        sample: (_n, metric, _a, ms) => (metric === 'ttft' ? ttft.push(ms) : metric === 'itl' ? itl.push(ms) : undefined),
      });
      const okK6 = records.filter((r) => r.outcome === 'ok').length;
      const bTtft = truth.filter((r) => r.outcome === 'ok').map((r) => r.ttftMs as number);
      const bItl = truth.filter((r) => r.outcome === 'ok').flatMap((r) => r.gaps);
      const queue = records.map((r) => r.queueDelayMs);
      const qs = queue.filter((x): x is number => x !== null);
      const line =
        `k6 at 150/s: planned ${planned}; k6 recorded ${records.length} (${okK6} ok), missed ${missed}; builtin recorded ${truth.length}; ` +
        `k6 queue delay (late starts against its own schedule) p50 ${quantile(qs, 0.5).toFixed(1)} p99 ${quantile(qs, 0.99).toFixed(1)} ms; ` +
        `ttft p50 k6 ${quantile(ttft, 0.5).toFixed(1)} vs builtin ${quantile(bTtft, 0.5).toFixed(1)} ms; itl p50 k6 ${quantile(itl, 0.5).toFixed(1)} vs builtin ${quantile(bItl, 0.5).toFixed(1)} ms`;
      expect(qs.length, line).toBe(queue.length); // every first attempt says how late it started
      // On a machine whose cores are taken (CI under stress-ng) k6 cannot keep 150/s: then what
      // must hold is that it says so — arrivals missed or started late, the signals Gauntlet's
      // generator verdict reads — and the latency comparison does not apply.
      const saturated = missed > 0 || quantile(qs, 0.99) > QUEUE_DELAY_LIMIT_MS;
      process.stderr.write(`${line}${saturated ? ' — k6 fell behind on this machine and says so (missed or late arrivals): accuracy not compared' : ''}\n`);
      if (saturated) {
        expect(records.length + missed, line).toBeGreaterThanOrEqual(0.97 * planned);
        return;
      }
      expect(records.length, line).toBeGreaterThanOrEqual(0.97 * planned);
      expect(Math.abs(quantile(ttft, 0.5) - quantile(bTtft, 0.5)), line).toBeLessThanOrEqual(0.05 * quantile(bTtft, 0.5));
      expect(Math.abs(quantile(itl, 0.5) - quantile(bItl, 0.5)), line).toBeLessThanOrEqual(0.1 * quantile(bItl, 0.5));
    } finally {
      node.kill();
    }
  }, 120_000);

  it('failed requests carry their error text (a refused connection, an HTTP error), as builtin records them', async () => {
    // A port nothing listens on, and a simulator still loading its model (503 "Loading model").
    const loading = await startSimProcess(['--gpus', '1', '--load-ms', '600000'], 503);
    try {
      const at = loading.endpoint;
      const refused = `http://127.0.0.1:${await freePort()}`;
      const records: RequestRecord[] = [];
      const engine = await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger });
      await engine.run(
        testWorkload({
          targets: [{ node: 'gone', endpoint: refused }, { node: 'loading', endpoint: at }],
          durationMs: 2000,
          profile: { startRate: 6, stages: [] },
          mix: [testMix({ name: 'streamed', model: 'sim-llama', maxTokens: { fixed: 4 } }), testMix({ name: 'plain', stream: false, model: 'sim-llama', maxTokens: { fixed: 4 } })],
          defaultModel: 'sim-llama',
        }),
        new AbortController().signal,
        { record: (r) => records.push(r) },
      );
      const by = (node: string, mix: string) => records.filter((r) => r.node === node && r.mix === mix);
      const show = JSON.stringify(records.slice(0, 6).map((r) => [r.node, r.mix, r.outcome, r.status, r.error]));
      for (const mix of ['streamed', 'plain']) {
        expect(by('gone', mix).length, show).toBeGreaterThan(0);
        for (const r of by('gone', mix)) expect([r.outcome, r.error], show).toEqual(['conn_error', expect.stringMatching(/connection refused/)]);
        expect(by('loading', mix).length, show).toBeGreaterThan(0);
        for (const r of by('loading', mix)) {
          expect([r.outcome, r.status], show).toEqual(['http_error', 503]);
          expect(r.error, show).toMatch(mix === 'plain' ? /^HTTP 503: Loading model/ : /^HTTP 503/);
        }
      }
    } finally {
      loading.kill();
    }
  }, 60_000);
});
