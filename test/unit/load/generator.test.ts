import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { GENERATOR_NODE, judgeGenerator } from '../../../src/analysis/generator.js';
import { processAllowedCores, processCpuSeconds } from '../../../src/load/generator.js';
import type { LatencyWindowRow, LoadWindowRow, TelemetryRow } from '../../../src/store/types.js';

const load = (node: string, start: number, misses = 0): LoadWindowRow => ({
  run_id: 'r', node, window_start: start, part: 0, window_ms: 10_000, attempts: 10, ok: 10, failed: 0, cancelled: 0, retries: 0,
  final_ok: 10, final_failed: 0, outcomes: '{}', output_tokens: 0, tokens_from_usage: 0, tokens_from_chunks: 0, schedule_misses: misses, planned: 10 + misses,
});
const queue = (node: string, start: number, p99: number): LatencyWindowRow => ({
  run_id: 'r', node, window_start: start, part: 0, metric: 'queue_delay', count: 10, min_ms: 0, max_ms: p99, mean_ms: p99 / 2, p50_ms: 1, p90_ms: p99, p99_ms: p99, hist: '',
});
const lag = (at: number, ms: number): TelemetryRow => ({ run_id: 'r', node: GENERATOR_NODE, at, metric: 'loop_lag_p99_ms', value: ms });
const k6Share = (at: number, share: number): TelemetryRow => ({ run_id: 'r', node: GENERATOR_NODE, at, metric: 'k6_cpu_share', value: share });

describe('judging whether the load generator kept up', () => {
  const base = { loadStartedAt: 0, loadEndedAt: 100_000, windowMs: 10_000, limitShare: 0.05 };

  it('kept up: no misses, sends on time, the event loop free', () => {
    const g = judgeGenerator({ ...base, loadWindows: [load('a', 0), load('b', 0)], queueWindows: [queue('a', 0, 3)], telemetry: [lag(5000, 12)] });
    expect(g).toMatchObject({ behindMs: 0, behindShare: 0, keptUp: true, spans: [] });
  });

  it('each signal marks its window once, whatever the node; past the limit the run is saturated', () => {
    const g = judgeGenerator({
      ...base,
      loadWindows: [load('a', 0), load('a', 20_000, 7), load('b', 20_000, 2)],
      queueWindows: [queue('a', 40_000, 180), queue('b', 40_000, 20)],
      telemetry: [lag(61_000, 450), lag(62_000, 30)],
    });
    expect(g.spans.map((s) => [s.from, s.to])).toEqual([[20_000, 30_000], [40_000, 50_000], [60_000, 70_000]]);
    expect(g.spans[0]?.why).toEqual(['a: 7 arrivals not started', 'b: 2 arrivals not started']);
    expect(g.spans[1]?.why).toEqual(['a: sends up to 180 ms late (queue delay p99)']);
    expect(g.spans[2]?.why).toEqual(["Gauntlet's event loop lagged 450 ms (p99 over a second)"]);
    expect(g).toMatchObject({ behindMs: 30_000, behindShare: 0.3, keptUp: false });
  });

  it('k6 using most of the CPU it may use marks its window, on the average of the window (one busy second does not)', () => {
    const busy = [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000].map((t) => k6Share(10_000 + t, 0.9));
    const g = judgeGenerator({ ...base, loadWindows: [], queueWindows: [], telemetry: [...busy, k6Share(31_000, 1), k6Share(32_000, 0.2), k6Share(33_000, 0.2)] });
    expect(g.spans.map((s) => [s.from, s.why])).toEqual([[10_000, ['k6 used 90 % of the CPU it may use: it handles stream events late (ttft reads high)']]]);
  });

  it('a last, partial window counts only its part of the load', () => {
    const g = judgeGenerator({ ...base, loadEndedAt: 95_000, loadWindows: [load('a', 90_000, 1)], queueWindows: [], telemetry: [], limitShare: 0.06 });
    expect(g.behindMs).toBe(5000);
    expect(g.keptUp).toBe(true); // 5.3 % ≤ 6 %
  });

  it("reads a process's CPU time from /proc (this one's is positive and grows)", () => {
    const a = processCpuSeconds(process.pid);
    expect(a).not.toBeNull();
    let x = 0;
    for (let i = 0; i < 3e7; i++) x += i % 7;
    expect(x).toBeGreaterThan(0);
    expect(processCpuSeconds(process.pid) as number).toBeGreaterThan(a as number);
    expect(processCpuSeconds(2 ** 22 + 12345)).toBeNull();
  });

  it("reads how many cores a process may use from its affinity", () => {
    expect(processAllowedCores(process.pid)).toBe(availableParallelism()); // libuv reads the same affinity
    expect(processAllowedCores(2 ** 22 + 12345)).toBeNull();
  });
});
