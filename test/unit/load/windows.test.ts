import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WindowAggregator, mergeHistograms, type LoadWindow } from '../../../src/load/windows.js';
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
    const agg = new WindowAggregator(10_000, 0, (l) => closed.push(l));
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
    const agg = new WindowAggregator(10_000, 0, (l) => closed.push(l));
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
