import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mergeHistograms } from '../../../src/analysis/histogram.js';
import { WindowAggregator, type LoadWindow } from '../../../src/load/windows.js';
import { percentileSorted } from '../../../src/analysis/stats.js';
import { seededRandom } from '../../../src/util/random.js';
import { record, windowRows } from '../../helpers/records.js';

describe('WindowAggregator', () => {
  it('percentiles from merged window histograms agree with exact ones to HDR precision (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 50, max: 2000 }), (seed, n) => {
        const rng = seededRandom(seed);
        const ttfts = Array.from({ length: n }, () => 5 + rng.next() * rng.next() * 3000);
        const records = ttfts.map((t, i) => record({ node: i % 2 ? 'a' : 'b', sentAt: i * 37, ttftMs: t, firstTokenAt: i * 37 + t, endAt: i * 37 + t + 10 }));
        const { latencyWindows } = windowRows(records, 5000);
        const m = mergeHistograms(latencyWindows.filter((w) => w.metric === 'ttft').map((w) => w.hist));
        const sorted = [...ttfts].sort((a, b) => a - b);
        expect(m.count).toBe(n);
        for (const p of [50, 90, 99]) {
          const exact = percentileSorted(sorted, p) as number;
          expect(Math.abs((m.percentile(p) as number) - exact) / exact).toBeLessThan(0.002);
        }
      }),
      { numRuns: 30 },
    );
  });

  it('closes a window once it is over, and only then: memory holds only open windows', () => {
    const closed: LoadWindow[] = [];
    const agg = new WindowAggregator(10_000, 0, (c) => c.window && closed.push(c.window.load));
    for (let t = 0; t < 35_000; t += 100) {
      agg.record(record({ node: 'a', sentAt: t - 100, endAt: t }));
      agg.tick(t);
    }
    expect(closed.map((w) => w.windowStart)).toEqual([0, 10_000, 20_000]); // each closes 1 s after its end
    expect(closed[0]?.ok).toBe(100);
    agg.flush();
    expect(closed.map((w) => w.windowStart)).toEqual([0, 10_000, 20_000, 30_000]);
  });

  it('a sample that arrives after its window was handed on makes a further part, never a duplicate', () => {
    const closed: LoadWindow[] = [];
    const agg = new WindowAggregator(10_000, 0, (c) => c.window && closed.push(c.window.load));
    agg.record(record({ node: 'a', sentAt: 9000, endAt: 9500 }));
    agg.tick(11_100);
    agg.record(record({ node: 'a', sentAt: 9100, endAt: 9900 })); // late: its window is gone
    agg.flush();
    expect(closed.map((w) => [w.windowStart, w.part, w.ok])).toEqual([
      [0, 0, 1],
      [0, 1, 1],
    ]);
  });

  it('counts attempts, retries and the client view separately; latency only from successes', () => {
    const { loadWindows, latencyWindows } = windowRows([
      record({ node: 'a', seq: 1, attempt: 1, final: false, sentAt: 0, outcome: 'conn_error' }),
      record({ node: 'a', seq: 1, attempt: 2, final: true, sentAt: 500, scheduledAt: 0, firstTokenAt: 550, endAt: 600, queueDelayMs: null }),
      record({ node: 'a', seq: 2, attempt: 1, final: true, sentAt: 700, outcome: 'http_error', status: 400 }),
    ]);
    expect(loadWindows[0]).toMatchObject({ attempts: 3, ok: 1, failed: 2, retries: 1, final_ok: 1, final_failed: 1 });
    const sched = latencyWindows.find((w) => w.metric === 'ttft_sched');
    expect(sched?.count).toBe(1);
    expect(sched?.p50_ms).toBeCloseTo(550, 0); // the client waited through the retry
    expect(latencyWindows.find((w) => w.metric === 'queue_delay')?.count).toBe(2); // first attempts only
  });
});

describe('hourly rollups', () => {
  it('each rollup holds exactly its windows merged: counters and histograms (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 20, max: 400 }), (seed, n) => {
        const rng = seededRandom(seed);
        // spread over ~3.5 rollup spans of 60 s (6 windows of 10 s each), two nodes
        const records = Array.from({ length: n }, (_, i) => {
          const sentAt = Math.floor((i / n) * 210_000);
          const ttft = 5 + rng.next() * 900;
          return record({ node: rng.next() < 0.5 ? 'a' : 'b', seq: i, sentAt, ttftMs: ttft, firstTokenAt: sentAt + ttft, endAt: sentAt + ttft + 10, outcome: rng.next() < 0.1 ? 'timeout' : 'ok' });
        });
        const { loadWindows, latencyWindows, loadRollups, latencyRollups } = windowRows(records, 10_000, 0, 60_000);
        for (const node of ['a', 'b']) {
          const spans = [...new Set(loadRollups.filter((r) => r.node === node).map((r) => r.window_start))];
          for (const span of spans) {
            const inSpan = (w: { node: string; window_start: number }): boolean => w.node === node && w.window_start >= span && w.window_start < span + 60_000;
            const rolled = loadRollups.filter((r) => r.node === node && r.window_start === span);
            for (const k of ['attempts', 'ok', 'failed', 'final_ok', 'planned'] as const) {
              expect(rolled.reduce((a, r) => a + r[k], 0)).toBe(loadWindows.filter(inSpan).reduce((a, w) => a + w[k], 0));
            }
            expect(rolled.reduce((a, r) => a + r.windows, 0)).toBe(loadWindows.filter(inSpan).length);
            const fromRollup = mergeHistograms(latencyRollups.filter((l) => l.node === node && l.window_start === span && l.metric === 'ttft').map((l) => l.hist));
            const fromWindows = mergeHistograms(latencyWindows.filter((l) => inSpan(l) && l.metric === 'ttft').map((l) => l.hist));
            expect(fromRollup.count).toBe(fromWindows.count);
            for (const p of [50, 99]) expect(fromRollup.percentile(p)).toBe(fromWindows.percentile(p));
          }
          // every window is in some rollup
          expect(loadRollups.filter((r) => r.node === node).reduce((a, r) => a + r.windows, 0)).toBe(loadWindows.filter((w) => w.node === node).length);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('hands a rollup on with the first window of the next span, and the last ones at flush', () => {
    const seen: string[] = [];
    const agg = new WindowAggregator(10_000, 0, (c) => seen.push(`${c.window ? `w${c.window.load.windowStart / 1000}` : '-'}${c.rollups.map((r) => ` r${r.load.windowStart / 1000}.${r.load.part}x${r.windows}`).join('')}`), true, 30_000);
    for (let t = 500; t < 65_000; t += 1000) {
      agg.record(record({ node: 'a', sentAt: t - 100, endAt: t }));
      agg.tick(t);
    }
    agg.flush();
    expect(seen).toEqual(['w0', 'w10', 'w20', 'w30 r0.0x3', 'w40', 'w50', 'w60 r30.0x3', '- r60.0x1']);
  });

  it('a window part that comes after its span was handed on becomes a rollup part of its own', () => {
    const rolls: [number, number, number][] = [];
    const agg = new WindowAggregator(10_000, 0, (c) => rolls.push(...c.rollups.map((r) => [r.load.windowStart, r.load.part, r.load.ok] as [number, number, number])), true, 20_000);
    agg.record(record({ node: 'a', sentAt: 18_000, endAt: 19_000 }));
    agg.record(record({ node: 'a', sentAt: 20_500, endAt: 21_000 }));
    agg.tick(32_000); // windows 10 s and 20 s closed: span 0 handed on with the window at 20 s
    agg.record(record({ node: 'a', sentAt: 18_500, endAt: 19_500 })); // late, for the window at 10 s
    agg.flush();
    expect(rolls).toEqual([
      [0, 0, 1],
      [0, 1, 1],
      [20_000, 0, 1],
    ]);
  });
});
