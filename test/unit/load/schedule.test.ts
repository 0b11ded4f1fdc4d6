import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gamma, sampleLength } from '../../../src/load/distributions.js';
import { RateCurve, arrivalTimes, type Arrival } from '../../../src/load/schedule.js';
import { seededRandom } from '../../../src/util/random.js';

function take(arrival: Arrival, curve: RateCurve, untilMs: number, opts: { burstiness?: number; share?: number; seed?: number } = {}): number[] {
  const out: number[] = [];
  for (const t of arrivalTimes({ arrival, burstiness: opts.burstiness ?? 1, curve, share: opts.share ?? 1, seed: opts.seed ?? 1, label: 'x' })) {
    if (t >= untilMs) break;
    out.push(t);
  }
  return out;
}

const cv = (gaps: number[]): number => {
  const m = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  const v = gaps.reduce((a, b) => a + (b - m) ** 2, 0) / gaps.length;
  return Math.sqrt(v) / m;
};
const gapsOf = (ts: number[]): number[] => ts.slice(1).map((t, i) => t - (ts[i] as number));

describe('RateCurve', () => {
  const curve = new RateCurve({ startRate: 0, stages: [{ duration: 10_000, target: 10 }, { duration: 20_000, target: 10 }, { duration: 0, target: 40 }, { duration: 5000, target: 40 }] });

  it('ramps linearly, holds, steps', () => {
    expect(curve.rate(0)).toBe(0);
    expect(curve.rate(5000)).toBe(5);
    expect(curve.rate(20_000)).toBe(10);
    expect(curve.rate(31_000)).toBe(40);
    expect(curve.rate(99_000)).toBe(40); // holds after the last stage
    expect(curve.cumulative(10_000)).toBeCloseTo(50, 9); // ramp 0→10 over 10 s
    expect(curve.cumulative(30_000)).toBeCloseTo(250, 9);
    expect(curve.cumulative(35_000)).toBeCloseTo(450, 9);
  });

  it('inverse undoes cumulative (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 60_000, noNaN: true }), (t) => {
        expect(curve.inverse(curve.cumulative(t))).toBeCloseTo(t <= 0 ? 0 : t, 3);
      }),
    );
  });
});

describe('arrivals', () => {
  const flat = new RateCurve({ startRate: 100, stages: [] });

  it('the same seed gives the same schedule; another seed another', () => {
    expect(take('poisson', flat, 2000)).toEqual(take('poisson', flat, 2000));
    expect(take('poisson', flat, 2000, { seed: 2 })).not.toEqual(take('poisson', flat, 2000));
  });

  it('constant: evenly spaced at the rate', () => {
    const ts = take('constant', flat, 10_000);
    expect(ts.length).toBeGreaterThanOrEqual(999);
    expect(ts.length).toBeLessThanOrEqual(1000);
    for (const g of gapsOf(ts)) expect(g).toBeCloseTo(10, 6);
  });

  it('poisson: the rate on average, exponential gaps (CV ≈ 1)', () => {
    const ts = take('poisson', flat, 200_000);
    expect(ts.length / 200).toBeGreaterThan(97);
    expect(ts.length / 200).toBeLessThan(103);
    expect(cv(gapsOf(ts))).toBeGreaterThan(0.95);
    expect(cv(gapsOf(ts))).toBeLessThan(1.05);
  });

  it('gamma: same mean rate; burstiness 0.25 gives CV ≈ 2, burstiness 4 gives CV ≈ 0.5', () => {
    for (const [b, want] of [
      [0.25, 2],
      [4, 0.5],
    ] as const) {
      const ts = take('gamma', flat, 200_000, { burstiness: b });
      expect(ts.length / 200).toBeGreaterThan(94);
      expect(ts.length / 200).toBeLessThan(106);
      expect(cv(gapsOf(ts))).toBeGreaterThan(want * 0.9);
      expect(cv(gapsOf(ts))).toBeLessThan(want * 1.1);
    }
  });

  it('follows stages: counts per phase match the integral of the rate', () => {
    const curve = new RateCurve({ startRate: 0, stages: [{ duration: 60_000, target: 50 }, { duration: 60_000, target: 50 }, { duration: 0, target: 200 }, { duration: 30_000, target: 200 }] });
    const ts = take('poisson', curve, 150_000, { seed: 9 });
    const inRange = (a: number, b: number): number => ts.filter((t) => t >= a && t < b).length;
    expect(inRange(0, 60_000)).toBeGreaterThan(1500 * 0.93); // ramp: 1500 expected
    expect(inRange(0, 60_000)).toBeLessThan(1500 * 1.07);
    expect(inRange(0, 30_000)).toBeLessThan(inRange(30_000, 60_000) / 2); // quadratic growth: 375 vs 1125
    expect(inRange(60_000, 120_000)).toBeGreaterThan(3000 * 0.95);
    expect(inRange(60_000, 120_000)).toBeLessThan(3000 * 1.05);
    expect(inRange(120_000, 150_000)).toBeGreaterThan(6000 * 0.95);
  });

  it('splits over targets: each stream carries its share', () => {
    const ts = take('poisson', flat, 100_000, { share: 0.25 });
    expect(ts.length / 100).toBeGreaterThan(23);
    expect(ts.length / 100).toBeLessThan(27);
  });

  it('a profile that ends at rate 0 ends the stream', () => {
    const down = new RateCurve({ startRate: 10, stages: [{ duration: 1000, target: 0 }] });
    expect(take('constant', down, 1e9).length).toBe(5);
  });
});

describe('distributions', () => {
  it('gamma has mean kθ and variance kθ² (property over shapes)', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.2, max: 8, noNaN: true }), fc.integer({ min: 1, max: 1000 }), (k, seed) => {
        const rng = seededRandom(seed);
        const xs = Array.from({ length: 4000 }, () => gamma(rng, k, 2));
        const m = xs.reduce((a, b) => a + b, 0) / xs.length;
        expect(m / (2 * k)).toBeGreaterThan(0.88);
        expect(m / (2 * k)).toBeLessThan(1.12);
      }),
      { numRuns: 20 },
    );
  });

  it('lengths are integers in [1, max]', () => {
    const rng = seededRandom(3);
    for (const d of [{ fixed: 5 }, { uniform: [10, 20] as [number, number] }, { normal: { mean: 100, stddev: 80 } }, { lognormal: { median: 200, sigma: 1.5 } }]) {
      for (let i = 0; i < 2000; i++) {
        const x = sampleLength(rng, d, 1000);
        expect(Number.isInteger(x)).toBe(true);
        expect(x).toBeGreaterThanOrEqual(1);
        expect(x).toBeLessThanOrEqual(1000);
      }
    }
    const u = Array.from({ length: 5000 }, () => sampleLength(rng, { uniform: [10, 20] }, 1000));
    expect(Math.min(...u)).toBe(10);
    expect(Math.max(...u)).toBe(20);
  });
});
