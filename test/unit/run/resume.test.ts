// A run taken up after a crash: the load still to come (the ramp where it was), windows whose
// parts and rollups do not collide with the killed process's, and exposure without the gap.
import { describe, expect, it } from 'vitest';
import { summarizeRun } from '../../../src/analysis/run-summary.js';
import { WindowAggregator, type Closed } from '../../../src/load/windows.js';
import type { Workload } from '../../../src/load/workload.js';
import { remainingWorkload } from '../../../src/run/runner.js';
import type { EpisodeRow } from '../../../src/store/types.js';
import { record } from '../../helpers/records.js';

const H = 3_600_000;

describe('remainingWorkload', () => {
  const w = { durationMs: 100_000, seed: 7, profile: { startRate: 0, stages: [{ duration: 40_000, target: 20 }, { duration: 20_000, target: 20 }, { duration: 40_000, target: 0 }] } } as unknown as Workload;

  it('goes on from the plan offset: a ramp under way from where it was, later stages whole', () => {
    const r = remainingWorkload(w, 30_000, 70_000, 1) as Workload;
    expect(r.durationMs).toBe(70_000);
    expect(r.profile.startRate).toBeCloseTo(15, 9);
    expect(r.profile.stages).toEqual([{ duration: 10_000, target: 20 }, { duration: 20_000, target: 20 }, { duration: 40_000, target: 0 }]);
    expect(r.seed).not.toBe(w.seed);
    expect(remainingWorkload(w, 30_000, 70_000, 2)?.seed).not.toBe(r.seed);
  });

  it('nothing left past the planned end', () => {
    expect(remainingWorkload(w, 100_000, 0, 1)).toBeNull();
    expect(remainingWorkload(w, 120_000, -5, 1)).toBeNull();
  });
});

describe('a resumed window aggregator', () => {
  it('numbers its parts from the base and leaves the span under way at the resume unrolled', () => {
    const out: Closed[] = [];
    // the run's grid began at 0; taken up at 1.5 h; rollups of an hour
    const agg = new WindowAggregator(10_000, 0, (c) => out.push(c), true, H, { partBase: 1000, rollupFrom: 1.5 * H });
    for (const t of [1.5 * H + 5_000, 1.9 * H, 2 * H + 5_000, 2.2 * H]) agg.record(record({ node: 'a', sentAt: t - 100, endAt: t, scheduledAt: t - 100 }));
    agg.flush();
    const windows = out.flatMap((c) => (c.window ? [c.window.load] : []));
    expect(windows.length).toBe(4);
    expect(windows.every((l) => l.part === 1000)).toBe(true);
    expect(windows.every((l) => (l.windowStart - 0) % 10_000 === 0)).toBe(true);
    const rollups = out.flatMap((c) => c.rollups.map((r) => r.load));
    // the span [1 h, 2 h) began before the resume: its first windows are the killed process's, no rollup
    expect(rollups.map((r) => r.windowStart)).toEqual([2 * H]);
    expect(rollups[0]?.part).toBe(1000);
    expect(rollups[0]?.attempts).toBe(2);
  });
});

describe('exposure of a resumed run', () => {
  it('leaves the downtime out on every node, and an episode cut off at the kill ends where the record stops', () => {
    const ep: EpisodeRow = { id: 'e1', run_id: 'r', node: 'a', status: 'open', cause: 'orchestrator', fault_id: null, started_at: 1 * H, detected_at: 1 * H, running_again_at: null, ready_at: null, serving_again_at: null, first_evidence: '', evidence: '{}', requests_affected: 0 };
    const base = { loadStartedAt: 0, loadEndedAt: 10 * H, nodes: ['a', 'b'], confidence: 0.8, mtbfTargetHours: 1000, outsideInjected: null, probes: [], probeIntervalMs: 10_000, states: [], loadWindows: [], latencyWindows: [] };
    const s = summarizeRun({ ...base, episodes: [ep], downSpans: [{ from: 2 * H, to: 3 * H, nodes: ['a', 'b'] }], cutOff: new Map([['e1', 2 * H]]) });
    expect(s.downMs).toBe(2 * H);
    // a: 10 − 1 (episode 1 h → 2 h) − 1 (down) = 8; b: 10 − 1 = 9
    expect(s.perNodeExposureHours).toEqual({ a: 8, b: 9 });
    expect(s.failures.countedForMtbf).toBe(0);
    // without the cut-off point the open episode would take the rest of the run
    expect(summarizeRun({ ...base, episodes: [ep], downSpans: [{ from: 2 * H, to: 3 * H, nodes: ['a', 'b'] }] }).perNodeExposureHours.a).toBe(1);
  });
});
