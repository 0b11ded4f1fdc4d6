// One plan split over several k6 processes with execution segments, on the real k6 binary
// against the simulator: the same arrivals as one k6 (k6 splits every scenario's iterations
// exactly), every record read back from every instance's output into one run, numbered once,
// and the same server latency. Skipped, saying so, without a real k6.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateK6, probeK6 } from '../../src/load/k6/binary.js';
import { K6Engine, segmentSequence } from '../../src/load/k6/engine.js';
import type { RequestRecord } from '../../src/load/types.js';
import { silentLogger } from '../../src/log.js';
import { ttftMergedAndRaw } from '../helpers/records.js';
import { startSimProcess, type SimProcess } from '../helpers/sim-process.js';
import { testMix, testWorkload, twoNodeK6Workload } from '../helpers/workload.js';

const path = locateK6();
const real = path !== null && (await probeK6(path)).version.indexOf('fake') === -1 && !path.includes('fake-k6');
if (!real) process.stderr.write("\n*** SKIPPED k6-segments.test.ts: no real k6 binary (set K6_BIN or put k6 on PATH to run k6's execution segments for real). ***\n\n");

interface Ran {
  recs: RequestRecord[];
  planned: number;
  misses: number;
  processesSeen: number;
}

async function run(engine: K6Engine, w: Parameters<K6Engine['run']>[0]): Promise<Ran> {
  const recs: RequestRecord[] = [];
  let planned = 0;
  let misses = 0;
  let processesSeen = 0;
  await engine.run(w, new AbortController().signal, {
    record: (r) => {
      recs.push(r);
      processesSeen = Math.max(processesSeen, engine.processes().length);
    },
    planned: (_n, _a, c) => (planned += c),
    scheduleMiss: (_n, _a, c) => (misses += c),
  });
  return { recs, planned, misses, processesSeen };
}

describe('k6 execution segments', () => {
  it('splits a plan into equal segments', () => {
    expect(segmentSequence(1)).toEqual(['0', '1']);
    expect(segmentSequence(4)).toEqual(['0', '1/4', '2/4', '3/4', '1']);
  });
});

describe.runIf(real)('k6 execution segments with a real k6 binary', () => {
  let sim: SimProcess;
  let endpoint: string;
  beforeAll(async () => {
    sim = await startSimProcess(['--gpus', '8', '--load-ms', '0', '--ttft-ms', '30', '--itl-ms', '5']);
    endpoint = sim.endpoint;
  });
  afterAll(() => sim?.kill());

  it('as 1 instance and as 4 segments: the same arrivals, every record numbered once, the same latency', async () => {
    const w = twoNodeK6Workload(endpoint, 4000);
    const one = await run(await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger }), w);
    const engine = await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger, instances: 4 });
    expect(engine.generators()).toEqual(['k6-1', 'k6-2', 'k6-3', 'k6-4'].map((name) => ({ name, host: null })));
    const four = await run(engine, w);
    const lines: string[] = [];
    for (const p of [50, 99]) {
      const a = ttftMergedAndRaw(one.recs, p, 29);
      const b = ttftMergedAndRaw(four.recs, p, 29);
      lines.push(`ttft p${p}: 1 instance ${a.merged.toFixed(1)} ms, 4 segments ${b.merged.toFixed(1)} ms`);
      for (const x of [a, b]) expect(Math.abs(x.merged - x.raw)).toBeLessThanOrEqual(x.raw * 1e-3 + 1e-3);
    }
    process.stderr.write(`k6 segments: planned ${one.planned} vs ${four.planned}, records ${one.recs.length} vs ${four.recs.length}, misses ${one.misses} vs ${four.misses}; ${lines.join('; ')}\n`);
    expect(four.processesSeen).toBe(4);
    expect(one.planned).toBe(120);
    expect(four.planned).toBe(one.planned);
    expect(four.misses + four.recs.length).toBe(one.misses + one.recs.length);
    expect(new Set(four.recs.map((r) => r.seq)).size).toBe(four.recs.length);
    expect(new Set(four.recs.map((r) => r.node))).toEqual(new Set(['a', 'b']));
    for (const x of [one, four]) expect(x.recs.filter((r) => r.outcome !== 'ok').map((r) => r.error)).toEqual([]);
    // the same server read by both (k6 times in whole ms)
    const p50 = [ttftMergedAndRaw(one.recs, 50, 29).merged, ttftMergedAndRaw(four.recs, 50, 29).merged];
    for (const v of p50) expect(v).toBeGreaterThanOrEqual(29);
    expect(Math.abs((p50[0] as number) - (p50[1] as number))).toBeLessThanOrEqual(0.25 * Math.min(...p50) + 3);
  });

  it('two runs with one k6 each on this host at once both complete, each with a REST API address of its own', async () => {
    const w = testWorkload({
      targets: [{ node: 'a', endpoint }],
      durationMs: 2000,
      profile: { startRate: 10, stages: [] },
      mix: [testMix({ model: 'sim-llama', maxTokens: { fixed: 4 } })],
      defaultModel: 'sim-llama',
    });
    const make = () => K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger });
    const engines = await Promise.all([make(), make()]);
    // each k6's command line, read while it runs
    const addresses = new Set<string>();
    const runWatching = async (e: K6Engine): Promise<Ran> => {
      const seen = setInterval(() => {
        for (const p of e.processes()) {
          try {
            const argv = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0');
            const at = argv.indexOf('--address');
            if (at >= 0) addresses.add(argv[at + 1] as string);
          } catch {
            // exited between the listing and the read
          }
        }
      }, 100);
      try {
        return await run(e, w);
      } finally {
        clearInterval(seen);
      }
    };
    const both = await Promise.all(engines.map(runWatching));
    expect([...addresses].length, [...addresses].join(', ')).toBe(2);
    for (const a of addresses) expect(a).toMatch(/^127\.0\.0\.1:\d+$/);
    for (const r of both) {
      expect(r.planned).toBe(20);
      expect(r.recs.length + r.misses).toBe(20);
      expect(r.recs.filter((x) => x.outcome !== 'ok').map((x) => x.error)).toEqual([]);
    }
  });
});
