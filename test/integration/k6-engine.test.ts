// The k6 engine's plumbing against a stand-in k6 (test/fixtures/fake-k6): probing, bundling,
// the FIFO stream, exit codes, Ctrl-C. A real k6 binary is exercised in k6-real.test.ts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { locateK6, probeK6 } from '../../src/load/k6/binary.js';
import { bundleScenario } from '../../src/load/k6/bundle.js';
import { K6Engine } from '../../src/load/k6/engine.js';
import type { RequestRecord } from '../../src/load/types.js';
import type { Workload } from '../../src/load/workload.js';
import { silentLogger } from '../../src/log.js';
import { packageRoot } from '../../src/util/paths.js';
import { tempDir } from '../helpers/tmp.js';
import { testWorkload } from '../helpers/workload.js';

const FAKE = join(packageRoot(), 'test', 'fixtures', 'fake-k6', 'k6');
const dir = tempDir();
const fixture = (p: string): string => join(packageRoot(), 'test', 'fixtures', p);
// CI exports K6_BIN (the real k6); each test here sets its own, and gets the saved one back.
const saved = { ...process.env };
afterEach(() => {
  for (const k of Object.keys(process.env)) if (k.startsWith('FAKE_K6_') || k === 'K6_BIN') delete process.env[k];
  Object.assign(process.env, { PATH: saved.PATH }, saved.K6_BIN === undefined ? {} : { K6_BIN: saved.K6_BIN });
});

const workload: Workload = testWorkload();

async function runEngine(script: string | null, env: Record<string, string>, signal = new AbortController().signal) {
  Object.assign(process.env, { K6_BIN: FAKE, ...env });
  const engine = await K6Engine.create({ script, arrival: 'poisson', maxInFlight: null, log: silentLogger });
  const records: RequestRecord[] = [];
  const samples: string[] = [];
  let misses = 0;
  let tokens = 0;
  const done = engine.run(workload, signal, {
    record: (r) => records.push(r),
    scheduleMiss: (_n, _a, c) => (misses += c),
    sample: (_n, m) => samples.push(m),
    tokens: (_n, _a, c) => (tokens += c),
  });
  return { engine, done, records, samples, get misses() { return misses; }, get tokens() { return tokens; } };
}

describe('finding and probing k6', () => {
  it('K6_BIN wins; a K6_BIN that is not executable is named', () => {
    expect(locateK6({ K6_BIN: FAKE, PATH: '' })).toBe(FAKE);
    const plain = join(dir, 'not-exec');
    writeFileSync(plain, '');
    expect(() => locateK6({ K6_BIN: plain })).toThrow(`K6_BIN=${plain} is not an executable file`);
    expect(locateK6({ PATH: '/nonexistent' })).toBeNull();
  });

  it('reads the version and finds out whether the SSE extension is there', async () => {
    expect(await probeK6(FAKE)).toEqual({ path: FAKE, version: 'v0.49.0', sse: false });
    process.env.FAKE_K6_SSE = '1';
    expect((await probeK6(FAKE)).sse).toBe(true);
  });

  it('says what it can measure: without SSE, ttft is time to first byte and there are no inter-token gaps', async () => {
    process.env.K6_BIN = FAKE;
    const engine = await K6Engine.create({ script: null, arrival: 'poisson', maxInFlight: 10, log: silentLogger });
    // Gauntlet's scenario times each iteration's start against k6's schedule: queue delay is measured.
    expect(engine.capabilities).toMatchObject({ ttft: 'time_to_first_byte', itl: false, queueDelay: true });
    expect(engine.capabilities.notes.join(' ')).toMatch(/poisson arrivals run as evenly spaced ones on k6.*measures how late it started each one.*max_in_flight maps to k6's maxVUs/s);
    const theirs = await K6Engine.create({ script: 'mine.js', arrival: 'constant', maxInFlight: null, log: silentLogger });
    expect(theirs.capabilities.queueDelay).toBe(false);
  });

  it('no k6 at all is a clear error', async () => {
    delete process.env.K6_BIN;
    process.env.PATH = '/nonexistent';
    await expect(K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger })).rejects.toThrow(/load\.engine is k6 but no k6 binary was found: set K6_BIN or put k6 on PATH/);
  });
});

describe('bundling scenarios for k6', () => {
  it("Gauntlet's scenarios bundle to ES2017: no newer syntax, k6 modules left as imports", async () => {
    for (const name of ['chat.ts', 'chat-sse.ts']) {
      const out = await bundleScenario(join(packageRoot(), 'scenarios', 'load', name), join(dir, `${name}.js`));
      const code = readFileSync(out, 'utf8');
      expect(code).toMatch(/from "k6\/metrics"/);
      expect(code).toMatch(/export \{[^}]*default[^}]*\}|export default/);
      expect(code).toMatch(/options/);
      // ES2018+ syntax k6 v0.49 cannot parse: optional chaining, nullish coalescing, object rest/spread in literals, async iteration
      expect(code).not.toMatch(/\?\.[A-Za-z_(\[]/);
      expect(code).not.toMatch(/\?\?/);
      expect(code).not.toMatch(/\{\s*\.\.\.[A-Za-z_]/);
      expect(code).not.toMatch(/for await/);
    }
  });

  it('a scenario that does not build is named with its line', async () => {
    const bad = join(dir, 'bad.ts');
    writeFileSync(bad, 'export default function () {\n  const x = ;\n}\n');
    await expect(bundleScenario(bad, join(dir, 'bad.js'))).rejects.toThrow(/cannot bundle k6 scenario .*bad\.ts: .*bad\.ts:2: /);
  });
});

describe('running k6 (stand-in binary)', () => {
  it("a user's own scenario: records from k6's http_req samples, streamed while k6 runs; dropped iterations are schedule misses", async () => {
    const r = await runEngine(fixture('real/k6/chat-nonstream.js'), { FAKE_K6_REPLAY: fixture('real/k6/chat-killed.out.jsonl'), FAKE_K6_PACE_MS: '1' });
    await r.done;
    expect(r.records).toHaveLength(25);
    expect(r.records.filter((x) => x.outcome === 'conn_error')).toHaveLength(24);
    expect(r.misses).toBeGreaterThan(0);
    expect(r.engine.progress).toMatchObject({ done: 25, ok: 1, failed: 24 });
  });

  it("Gauntlet's scenario: the outcome its script judged, ttft/itl samples, token counts", async () => {
    const r = await runEngine(null, { FAKE_K6_REPLAY: fixture('k6/gauntlet-scenario.out.jsonl') });
    await r.done;
    expect(r.records.map((x) => x.outcome)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'truncated', 'ok', 'ok']);
    expect(r.samples.filter((s) => s === 'ttft')).toHaveLength(10);
    expect(r.samples.filter((s) => s === 'itl')).toHaveLength(30);
    expect(r.tokens).toBe(9 * 16);
    expect(r.misses).toBe(2);
  });

  it("k6's exit code and its last stderr lines become the error", async () => {
    const r = await runEngine(null, { FAKE_K6_REPLAY: fixture('k6/gauntlet-scenario.out.jsonl'), FAKE_K6_EXIT: '107', FAKE_K6_STDERR: 'ReferenceError: prompt is not defined at default (file:///scenario.js:12:3)' });
    await expect(r.done).rejects.toThrow(/k6 exited with code 107 \(the script threw an exception\); its last output:\nReferenceError: prompt is not defined/);
    expect(r.records).toHaveLength(10); // what arrived before the failure is kept
  });

  it('k6 failing before it opens its output does not hang the reader', async () => {
    const r = await runEngine(null, { FAKE_K6_NO_OUTPUT: '1', FAKE_K6_EXIT: '104', FAKE_K6_STDERR: 'invalid option' });
    await expect(r.done).rejects.toThrow(/exited with code 104 \(invalid configuration\)/);
  });

  it('Ctrl-C: k6 gets SIGINT, stops, and the run ends without error', async () => {
    const ac = new AbortController();
    const r = await runEngine(null, { FAKE_K6_REPLAY: fixture('k6/gauntlet-scenario.out.jsonl'), FAKE_K6_PACE_MS: '100' }, ac.signal);
    for (let i = 0; i < 100 && r.records.length < 1; i++) await new Promise((res) => setTimeout(res, 20));
    ac.abort();
    await r.done;
    expect(r.records.length).toBeGreaterThan(0);
    expect(r.records.length).toBeLessThan(10);
  });
});
