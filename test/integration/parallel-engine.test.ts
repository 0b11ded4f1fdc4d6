// The builtin engine on worker threads against the simulator: the same plan as one engine and
// as four threads sends the same arrivals (numbers, nodes, schedule offsets, requests), loses
// none of their records, and reads the same server's latency. The percentiles are read from
// histograms built from every thread's samples (the windows' merge), and checked against the
// raw samples of the same run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuiltinEngine } from '../../src/load/builtin.js';
import { ParallelBuiltinEngine } from '../../src/load/parallel.js';
import { RequestFactory } from '../../src/load/prompts.js';
import type { LoadEngine, RequestRecord } from '../../src/load/types.js';
import type { Workload } from '../../src/load/workload.js';
import { RealClock, VirtualClock } from '../../src/util/clock.js';
import { ttftMergedAndRaw } from '../helpers/records.js';
import { startSimProcess, type SimProcess } from '../helpers/sim-process.js';
import { testMix, testWorkload } from '../helpers/workload.js';

const clock = new RealClock();

interface Ran {
  start: number;
  recs: RequestRecord[];
  planned: number;
  lagSamples: string[];
}

async function run(engine: LoadEngine, w: Workload): Promise<Ran> {
  const recs: RequestRecord[] = [];
  let planned = 0;
  let start = Number.NaN;
  const lagSamples: string[] = [];
  await engine.run(w, new AbortController().signal, {
    started: (at) => (start = at),
    record: (r) => recs.push(r),
    planned: (_n, _a, c) => (planned += c),
    generator: (name) => lagSamples.push(name),
  });
  return { start, recs, planned, lagSamples };
}

describe('RequestFactory.skip', () => {
  it('makes the same draws as next(): the requests after a skip are the ones next() gives', () => {
    const w = { mix: [testMix({ name: 'a', promptTokens: { uniform: [8, 4000] }, maxTokens: { lognormal: { median: 64, sigma: 1 } } }), testMix({ name: 'b', weight: 2, api: 'completions', stream: false, prompts: [{ prompt: 'x' }, { prompt: 'yy', maxTokens: 7 }] })], defaultModel: 'm' };
    const all = new RequestFactory(w, 9, 'n');
    const some = new RequestFactory(w, 9, 'n');
    for (let i = 0; i < 300; i++) {
      const want = all.next();
      if (i % 3 === 1) expect(some.next()).toEqual(want);
      else some.skip();
    }
  });
});

describe('builtin engine on worker threads', () => {
  let sim: SimProcess;
  let endpoint: string;

  beforeAll(async () => {
    sim = await startSimProcess(['--gpus', '8', '--load-ms', '0', '--ttft-ms', '30', '--itl-ms', '5']);
    endpoint = sim.endpoint;
  });
  afterAll(() => sim?.kill());

  it('as 1 engine and as 4 threads: the same arrivals and requests, every record, the same latency', async () => {
    const w = testWorkload({
      targets: [
        { node: 'a', endpoint },
        { node: 'b', endpoint },
      ],
      durationMs: 3000,
      seed: 11,
      arrival: 'poisson',
      profile: { startRate: 60, stages: [] },
      mix: [testMix({ model: 'sim-llama', promptTokens: { uniform: [4, 64] }, maxTokens: { uniform: [4, 12] } })],
      defaultModel: 'sim-llama',
    });
    const one = await run(new BuiltinEngine(clock), w);
    const four = await run(new ParallelBuiltinEngine(clock, 4), w);
    const key = (x: Ran) =>
      x.recs
        .map((r) => `${r.seq} ${r.node} ${(r.scheduledAt - x.start).toFixed(3)} ${r.mix} ${r.promptTokens} ${r.maxTokens}`)
        .sort()
        .join('\n');
    expect(one.recs.length).toBeGreaterThan(100);
    expect(four.planned).toBe(one.planned);
    expect(four.recs.length).toBe(one.recs.length);
    expect(new Set(four.recs.map((r) => r.seq)).size).toBe(four.recs.length);
    expect(key(four)).toBe(key(one));
    for (const x of [one, four]) expect(x.recs.filter((r) => r.outcome !== 'ok').map((r) => r.error)).toEqual([]);
    // every thread reports its own loop lag
    expect(new Set(four.lagSamples)).toEqual(new Set(['builtin-1', 'builtin-2', 'builtin-3', 'builtin-4']));
    // the same output per request (the simulator streams max_tokens tokens)
    expect(four.recs.every((r) => r.outputTokens === r.maxTokens && r.gaps.length === (r.maxTokens as number) - 1)).toBe(true);
    const lines: string[] = [];
    for (const p of [50, 99]) {
      const a = ttftMergedAndRaw(one.recs, p, 37);
      const b = ttftMergedAndRaw(four.recs, p, 37);
      lines.push(`ttft p${p}: 1 engine ${a.merged.toFixed(2)} ms (raw ${a.raw.toFixed(2)}), 4 threads ${b.merged.toFixed(2)} ms (raw ${b.raw.toFixed(2)})`);
      // merged histograms give the raw samples' percentile to their precision (3 digits)
      for (const x of [a, b]) expect(Math.abs(x.merged - x.raw)).toBeLessThanOrEqual(x.raw * 1e-3 + 1e-3);
    }
    process.stderr.write(`parallel builtin: ${one.recs.length} requests each; ${lines.join('; ')}\n`);
    // the same server read by both: the simulator's 30 ms ttft, give or take a busy machine
    const p50 = [ttftMergedAndRaw(one.recs, 50, 37).merged, ttftMergedAndRaw(four.recs, 50, 37).merged];
    for (const v of p50) expect(v).toBeGreaterThanOrEqual(30);
    expect(Math.abs((p50[0] as number) - (p50[1] as number))).toBeLessThanOrEqual(0.25 * Math.min(...p50) + 3);
  });

  it('stops on abort, and refuses what it cannot do', async () => {
    const w = testWorkload({ targets: [{ node: 'a', endpoint }], durationMs: 60_000, profile: { startRate: 20, stages: [] }, mix: [testMix({ model: 'sim-llama' })], defaultModel: 'sim-llama' });
    const ac = new AbortController();
    const engine = new ParallelBuiltinEngine(clock, 2);
    let records = 0;
    const t0 = Date.now();
    const running = engine.run(w, ac.signal, {
      record: () => {
        if (++records === 10) ac.abort();
      },
    });
    await running;
    expect(records).toBeGreaterThanOrEqual(10);
    expect(Date.now() - t0).toBeLessThan(30_000);
    await expect(new ParallelBuiltinEngine(new VirtualClock(0), 2).run(w, new AbortController().signal, { record: () => undefined })).rejects.toThrow(/real time/);
    expect(() => new ParallelBuiltinEngine(clock, 0)).toThrow(/whole number/);
    // max_in_flight is the plan's over all threads: 3 cannot be shared by 2 threads over 2 targets
    const capped = { ...w, targets: [w.targets[0] as (typeof w.targets)[number], { node: 'b', endpoint }], maxInFlight: 3 };
    await expect(new ParallelBuiltinEngine(clock, 2).run(capped, new AbortController().signal, { record: () => undefined })).rejects.toThrow(/max_in_flight 3 cannot be shared by 2 threads over 2 targets/);
  });
});
