// Every planned arrival accounted for, on both engines, with a stop (Ctrl-C) in the middle:
// planned = sent + missed + interrupted + cancelled, where planned is what the engine had due
// (builtin: each arrival it took from the schedule; k6: each iteration it started, plus
// dropped_iterations) and the rest comes from the records. Against a simulator process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuiltinEngine } from '../../src/load/builtin.js';
import { locateK6, probeK6 } from '../../src/load/k6/binary.js';
import { K6Engine } from '../../src/load/k6/engine.js';
import type { LoadEngine, LoadSink } from '../../src/load/types.js';
import { silentLogger } from '../../src/log.js';
import { RealClock } from '../../src/util/clock.js';
import { startSimProcess, type SimProcess } from '../helpers/sim-process.js';
import { testMix, testWorkload } from '../helpers/workload.js';

const k6Path = locateK6();
const realK6 = k6Path !== null && (await probeK6(k6Path)).version.indexOf('fake') === -1 && !k6Path.includes('fake-k6');

interface Tally {
  planned: number;
  plannedBeforeStop: number;
  sent: number;
  cancelled: number;
  missed: number;
}

function tallySink(stopAt: () => number): { sink: LoadSink; t: Tally } {
  const t: Tally = { planned: 0, plannedBeforeStop: 0, sent: 0, cancelled: 0, missed: 0 };
  return {
    t,
    sink: {
      record: (r) => {
        if (r.outcome === 'cancelled') t.cancelled++;
        else if (r.final) t.sent++;
      },
      scheduleMiss: (_n, _a, c) => (t.missed += c),
      planned: (_n, at, c) => {
        t.planned += c;
        if (at <= stopAt()) t.plannedBeforeStop += c;
      },
    },
  };
}

describe('accounting: planned = sent + missed + interrupted + cancelled, with a stop half-way', () => {
  let sim: SimProcess;
  let endpoint: string;
  beforeAll(async () => {
    sim = await startSimProcess(['--gpus', '1', '--load-ms', '0', '--ttft-ms', '60', '--itl-ms', '40', '--jitter', '0']);
    endpoint = sim.endpoint;
  });
  afterAll(() => sim?.kill());

  const engines: [string, () => Promise<LoadEngine>, boolean][] = [
    ['builtin', async () => new BuiltinEngine(new RealClock()), true],
    ['k6', () => K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger }), realK6],
  ];
  for (const [name, make, available] of engines) {
    it.runIf(available)(`${name}: 40/s for 10 s stopped after ~3 s; every arrival due until the stop is accounted for`, async () => {
      const engine = await make();
      const ac = new AbortController();
      let stoppedAt = Number.POSITIVE_INFINITY;
      const { sink, t } = tallySink(() => stoppedAt);
      // Stop 3 s after the first planned arrival (k6 takes a while to start).
      let first = 0;
      const wrapped: LoadSink = {
        ...sink,
        planned: (n, at, c) => {
          if (first === 0) {
            first = at;
            setTimeout(() => {
              stoppedAt = Date.now();
              ac.abort();
            }, 3000);
          }
          sink.planned?.(n, at, c);
        },
      };
      await engine.run(
        testWorkload({
          targets: [{ node: 'n', endpoint }],
          durationMs: 10_000,
          profile: { startRate: 40, stages: [] },
          // 16 tokens at 40 ms: each stream ~0.7 s, so ~28 are in flight at the stop.
          mix: [testMix({ model: 'sim-llama', maxTokens: { fixed: 16 } })],
          defaultModel: 'sim-llama',
        }),
        ac.signal,
        wrapped,
      );
      const interrupted = t.planned - t.sent - t.missed - t.cancelled;
      const line = `${name} accounting: planned ${t.planned} (${t.plannedBeforeStop} due before the stop) = sent ${t.sent} + missed ${t.missed} + interrupted ${interrupted} + cancelled ${t.cancelled}`;
      process.stderr.write(`${line}\n`);
      expect(ac.signal.aborted, line).toBe(true);
      // What the engine had due is what the schedule had due until the stop: 40/s × ~3 s.
      expect(t.planned, line).toBeGreaterThanOrEqual(100);
      expect(t.planned, line).toBeLessThanOrEqual(t.plannedBeforeStop + 2);
      expect(interrupted, line).toBeGreaterThanOrEqual(0);
      if (name === 'builtin') {
        // Builtin records what it stops: the streams in flight are cancelled, nothing is lost.
        expect(interrupted, line).toBe(0);
        expect(t.cancelled, line).toBeGreaterThan(0);
      } else {
        // k6 drops the iterations in flight at a stop without a word: they are the interrupted ones.
        expect(interrupted, line).toBeLessThanOrEqual(60);
        // Live progress counts iterations as they start, and what started but never ended is in flight.
        expect(engine.progress.scheduled, line).toBe(t.planned - t.missed);
        expect(engine.progress.inFlight, line).toBe(interrupted);
      }
    }, 60_000);
  }
});
