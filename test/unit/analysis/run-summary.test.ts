import { describe, expect, it } from 'vitest';
import { availability, exposure, failureNodeHours, summarizeRun } from '../../../src/analysis/run-summary.js';
import type { LoadWindowRow, EpisodeRow, NodeStateRow, ProbeRow } from '../../../src/store/types.js';
import { record, windowRows } from '../../helpers/records.js';

const H = 3_600_000;
const ep = (over: Partial<EpisodeRow>): EpisodeRow => ({
  id: 'e',
  run_id: 'r',
  node: 'a',
  status: 'recovered',
  cause: 'spontaneous',
  fault_id: null,
  started_at: 0,
  detected_at: 0,
  running_again_at: null,
  ready_at: null,
  serving_again_at: null,
  first_evidence: '',
  evidence: '{}',
  requests_affected: 0,
  ...over,
});
const probe = (node: string, ok: boolean, at = 0): ProbeRow => ({ run_id: 'r', node, kind: 'health', sent_at: at, response_at: ok ? at + 1 : null, latency_ms: 1, ok, status: ok ? 200 : 503, error: null });
const state = (node: string, s: NodeStateRow['state'], at: number): NodeStateRow => ({ run_id: 'r', node, at, detected_at: at, state: s, reason: '' });

describe('summarizeRun', () => {
  it('72 h on one node, no failure: exposure 72 node-hours, MTBF ≥ 44.7 h at 80 %, no point estimate', () => {
    const s = summarizeRun({ loadStartedAt: 0, loadEndedAt: 72 * H, nodes: ['a'], confidence: 0.8, mtbfTargetHours: 1000, episodes: [], outsideInjected: null, probes: [], probeIntervalMs: 10_000, states: [], loadWindows: [], latencyWindows: [] });
    expect(s.exposureNodeHours).toBe(72);
    expect(s.mtbf.point_hours).toBeNull();
    expect(s.mtbf.lower_bound_hours).toBeCloseTo(44.7, 1);
  });

  it('injected episodes are taken out of exposure and out of the MTBF count; spontaneous ones count', () => {
    const s = summarizeRun({
      loadStartedAt: 0,
      loadEndedAt: 10 * H,
      nodes: ['a', 'b'],
      confidence: 0.9,
      mtbfTargetHours: 100,
      episodes: [
        ep({ id: 'i1', node: 'a', cause: 'injected:f1', started_at: 1 * H, detected_at: 1 * H + 5, running_again_at: 1 * H + 400, serving_again_at: 1 * H + 2000 }),
        ep({ id: 's1', node: 'b', cause: 'spontaneous', started_at: 5 * H, detected_at: 5 * H + 10, serving_again_at: 5 * H + 3000 }),
        // injected and never came back before the end: a failed recovery, counted, and its time excluded
        ep({ id: 'i2', node: 'a', cause: 'injected:f2', status: 'recovery_failed', started_at: 9 * H, detected_at: 9 * H + 1 }),
      ],
      outsideInjected: null,
      probes: [],
      probeIntervalMs: 10_000,
      states: [],
      loadWindows: [],
      latencyWindows: [],
    });
    expect(s.perNodeExposureHours.a).toBeCloseTo(10 - 2000 / H - 1, 9);
    expect(s.perNodeExposureHours.b).toBe(10);
    expect(s.failures).toEqual({ spontaneous: 1, injected: 2, orchestrator: 0, recoveryFailed: 1, countedForMtbf: 2 });
    expect(s.mtbf.failures).toBe(2);
    expect(s.recovery.count).toBe(2);
    expect(s.recovery.max).toBe(3000);
    expect(s.episodes.find((e) => e.id === 'i1')).toMatchObject({ detectedMs: 5, restartMs: 400, readyMs: 1600, recoveryMs: 2000 });
    expect(s.episodes.find((e) => e.id === 'i2')?.recoveryMs).toBeNull();
  });

  it('error rate counts attempts, excluding cancelled ones; latency from the windows', () => {
    const records = [
      record({ node: 'a', sentAt: 100 }),
      record({ node: 'a', sentAt: 900, endAt: 1001, outcome: 'truncated' }),
      record({ node: 'a', sentAt: 1500, outcome: 'conn_error' }),
      record({ node: 'a', sentAt: 4000 }),
      record({ node: 'b', sentAt: 1500, outcome: 'http_error', status: 503 }),
      record({ node: 'a', sentAt: 5000, outcome: 'cancelled' }),
    ];
    const input = { loadStartedAt: 0, loadEndedAt: 6000, nodes: ['a', 'b'], confidence: 0.8, mtbfTargetHours: 1000, episodes: [], probes: [probe('a', true, 0), probe('a', false, 1000), probe('b', true, 0), probe('b', true, 1000)], probeIntervalMs: 1000, states: [], ...windowRows(records) };
    const s = summarizeRun({ ...input, outsideInjected: { total: 3, failed: 1 } });
    expect(s.requests).toMatchObject({ total: 5, ok: 2, failed: 3, cancelled: 1, errorRate: 0.6 });
    expect(s.requests.outsideInjected).toEqual({ total: 3, failed: 1, errorRate: 1 / 3 });
    expect(s.availability).toMatchObject({ value: 0.75, probes: 4, ok: 3, busy: 0, perNode: { a: 0.5, b: 1 } });
    expect(s.latency.ttft.p50).toBeCloseTo(50, 1);
    expect(s.latency.ttft_sched.p50).toBeCloseTo(51, 1);
    expect(s.latency.itl).toMatchObject({ count: 10 });
    expect(s.latency.tpot.p50).toBeCloseTo(10, 1); // (100 − 50) / (6 − 1)
    expect(summarizeRun({ ...input, outsideInjected: null }).requests).toMatchObject({ total: 5, errorRate: 0.6, outsideInjected: null });
  });

  describe('availability', () => {
    // A node probed every second for 100 s, frozen from 40 s to 60 s, with the fast pace (100 ms)
    // from 40 s to 62 s: by count the failures weigh 10 times as much; by time they are 20 %.
    const freeze = (): ProbeRow[] => {
      const out: ProbeRow[] = [];
      for (let t = 0; t < 100_000; ) {
        const fast = t >= 40_000 && t < 62_000;
        out.push(probe('a', !(t >= 40_000 && t < 60_000), t));
        t += fast ? 100 : 1000;
      }
      return out;
    };

    it('is weighted by the time each probe stands for, so the fast pace does not overweight a fault', () => {
      const probes = freeze();
      const a = availability(probes, [], ['a'], 1000, 100_000);
      expect(a.value).toBeCloseTo(0.8, 6);
      const byCount = probes.filter((p) => p.ok).length / probes.length;
      expect(byCount).toBeLessThan(0.5);
    });

    it('a probe that failed while the node was busy counts as available; one after the busy span does not', () => {
      const probes = [probe('a', true, 0), probe('a', false, 1000), probe('a', false, 2000), probe('a', false, 3000)];
      const a = availability(probes, [state('a', 'busy', 1000), state('a', 'down', 3000)], ['a'], 1000, 4000);
      expect(a).toMatchObject({ value: 0.75, probes: 4, ok: 1, busy: 2 });
    });

    it('a probe answered 2xx only after the next one was due (a node thawing) does not count its slot', () => {
      const late = { ...probe('a', true, 1000), response_at: 3500 };
      const a = availability([probe('a', true, 0), late, probe('a', true, 2000), probe('a', true, 3000)], [], ['a'], 1000, 4000);
      expect(a).toMatchObject({ value: 0.75, probes: 4, ok: 3 });
    });

    it('a gap with no probes (the orchestrator was stopped) counts at most one interval', () => {
      const a = availability([probe('a', true, 0), probe('a', false, 60_000)], [], ['a'], 1000, 61_000);
      expect(a.value).toBeCloseTo(0.5, 6);
    });
  });

  it('time without a view of the nodes (Docker engine lost) is left out of exposure once, and its episodes are not node failures', () => {
    const s = summarizeRun({
      loadStartedAt: 0,
      loadEndedAt: 10 * H,
      nodes: ['a', 'b'],
      confidence: 0.8,
      mtbfTargetHours: 1000,
      episodes: [
        // a went down with the engine and never came back within the limit
        ep({ id: 'o1', node: 'a', cause: 'orchestrator', status: 'recovery_failed', started_at: 4 * H, detected_at: 4 * H + 10, serving_again_at: 6 * H }),
      ],
      blindSpans: [{ from: 4 * H, to: 5 * H, nodes: ['a', 'b'] }],
      outsideInjected: null,
      probes: [],
      probeIntervalMs: 10_000,
      states: [],
      loadWindows: [],
      latencyWindows: [],
    });
    expect(s.perNodeExposureHours.a).toBeCloseTo(8, 9); // 4 h–6 h out (the blind hour once, not twice)
    expect(s.perNodeExposureHours.b).toBeCloseTo(9, 9);
    expect(s.blindMs).toBe(2 * H);
    expect(s.failures).toEqual({ spontaneous: 0, injected: 0, orchestrator: 1, recoveryFailed: 1, countedForMtbf: 0 });
  });

  it('accounts for every planned arrival: planned = sent + missed + interrupted + cancelled; unknown for older runs', () => {
    const win = (over: Partial<LoadWindowRow>): LoadWindowRow => ({
      run_id: 'r', node: 'a', window_start: 0, part: 0, window_ms: 10_000, attempts: 0, ok: 0, failed: 0, cancelled: 0, retries: 0,
      final_ok: 0, final_failed: 0, outcomes: '{}', output_tokens: 0, tokens_from_usage: 0, tokens_from_chunks: 0, schedule_misses: 0, planned: 0, ...over,
    });
    const base = { loadStartedAt: 0, loadEndedAt: 20_000, nodes: ['a'], confidence: 0.8, mtbfTargetHours: 1000, episodes: [], outsideInjected: null, probes: [], probeIntervalMs: 1000, states: [], latencyWindows: [] };
    const s = summarizeRun({
      ...base,
      loadWindows: [
        win({ planned: 100, attempts: 95, ok: 90, failed: 5, final_ok: 90, final_failed: 3, retries: 2, schedule_misses: 4 }),
        win({ window_start: 10_000, planned: 50, attempts: 40, ok: 40, final_ok: 40, cancelled: 5 }),
      ],
    });
    // 150 planned: 133 sent (final outcomes), 4 missed, 5 cancelled, 8 never reported.
    expect(s.requests.accounting).toEqual({ planned: 150, sent: 133, missed: 4, cancelled: 5, interrupted: 8 });
    expect(summarizeRun({ ...base, loadWindows: [win({ attempts: 3, ok: 3, final_ok: 3 })] }).requests.accounting).toBeNull();
  });
});

describe('exposure so far and the sequential test path', () => {
  const H = 3_600_000;
  it('counts each node from the load start to the given end, less injected episodes and downtime; each failure at the node-hours then', () => {
    const episodes = [
      ep({ id: 'inj', node: 'a', cause: 'injected:f1', started_at: 1 * H, serving_again_at: 1.5 * H }),
      ep({ id: 's1', node: 'b', cause: 'spontaneous', started_at: 2 * H, serving_again_at: 2.1 * H }),
      ep({ id: 'rf', node: 'a', cause: 'injected:f2', status: 'recovery_failed', started_at: 3 * H }),
      ep({ id: 'orc', node: 'b', cause: 'orchestrator', status: 'recovery_failed', started_at: 3.5 * H }),
    ];
    const input = { loadStartedAt: 0, loadEndedAt: 4 * H, nodes: ['a', 'b'], episodes, downSpans: [{ from: 0.5 * H, to: 0.75 * H, nodes: ['a', 'b'] }] };
    // a: 4 − 0.5 (injected) − 1 (never recovered, 3 → 4) − 0.25 (down) = 2.25; b: 4 − 0.5 (orchestrator, 3.5 → 4) − 0.25 = 3.25
    expect(exposure(input).perNode).toEqual({ a: 2.25, b: 3.25 });
    // so far, at 2 h: a 2 − 0.5 − 0.25, b 2 − 0.25
    expect(exposure({ ...input, loadEndedAt: 2 * H }).nodeHours).toBeCloseTo(3, 9);
    // counted: the spontaneous one (at 2 h: 3 node-hours) and the injected fault never recovered from (at 3 h: a 3 − 0.5 − 0.25, b 3 − 0.25); not the orchestrator's
    expect(failureNodeHours(input)).toEqual([3, 5]);
  });
});
