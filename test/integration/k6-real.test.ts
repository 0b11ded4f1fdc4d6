// Gauntlet's k6 scenario on a real k6 binary against the simulator. Runs when K6_BIN or PATH
// has a real k6 (not the test stand-in); otherwise it says plainly that it was skipped.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simBundlePath } from '../../src/docker/sim-image.js';
import { locateK6, probeK6 } from '../../src/load/k6/binary.js';
import { K6Engine } from '../../src/load/k6/engine.js';
import type { RequestRecord } from '../../src/load/types.js';
import { silentLogger } from '../../src/log.js';
import { freePort } from '../../src/util/ports.js';
import { testMix, testWorkload } from '../helpers/workload.js';

const path = locateK6();
const real = path !== null && (await probeK6(path)).version.indexOf('fake') === -1 && !path.includes('fake-k6');
if (!real) process.stderr.write('\n*** SKIPPED k6-real.test.ts: no real k6 binary (set K6_BIN or put k6 on PATH to run Gauntlet\'s k6 scenario for real). ***\n\n');

describe.runIf(real)('k6 engine with a real k6 binary', () => {
  let sim: ChildProcess;
  let endpoint: string;
  beforeAll(async () => {
    const port = await freePort();
    sim = spawn(process.execPath, [simBundlePath(), '--port', String(port), '--gpus', '2', '--load-ms', '0'], { stdio: 'ignore' });
    endpoint = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 200; i++) {
      const ok = await request(`${endpoint}/health`).then((r) => (r.body.dump(), r.statusCode === 200), () => false);
      if (ok) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(() => sim?.kill('SIGKILL'));

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
    // 30 planned. On a busy machine k6 may fall behind and drop arrivals; it reports each one
    // (dropped_iterations), so sent + missed still accounts for the plan.
    expect(records.length + missed).toBeGreaterThanOrEqual(28);
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
});
