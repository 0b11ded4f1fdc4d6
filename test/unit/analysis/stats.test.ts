import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { estimateMtbf, mtbfLowerBound } from '../../../src/analysis/mtbf.js';
import { chiSquareCdf, chiSquareQuantile, distribution, normalQuantile, percentileSorted, wilsonInterval } from '../../../src/analysis/stats.js';

describe('chi-square', () => {
  it('matches published quantiles', () => {
    // Values from standard chi-square tables.
    expect(chiSquareQuantile(0.8, 2)).toBeCloseTo(3.2189, 4);
    expect(chiSquareQuantile(0.9, 4)).toBeCloseTo(7.7794, 4);
    expect(chiSquareQuantile(0.95, 1)).toBeCloseTo(3.8415, 4);
    expect(chiSquareQuantile(0.05, 10)).toBeCloseTo(3.9403, 4);
    expect(chiSquareQuantile(0.975, 30)).toBeCloseTo(46.9792, 3);
    expect(chiSquareQuantile(0.99, 200)).toBeCloseTo(249.4455, 2);
  });

  it('quantile inverts the CDF for many dof, including large failure counts (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.001, max: 0.999, noNaN: true }), fc.integer({ min: 1, max: 4000 }), (p, dof) => {
        expect(chiSquareCdf(chiSquareQuantile(p, dof), dof)).toBeCloseTo(p, 6);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses nonsense', () => {
    expect(() => chiSquareQuantile(1, 2)).toThrow(RangeError);
    expect(() => chiSquareQuantile(0.5, 0)).toThrow(RangeError);
  });
});

describe('MTBF bounds (DESIGN.md examples)', () => {
  it('72 node-hours, 0 failures, 80 %: 44.7 h', () => {
    expect(mtbfLowerBound(72, 0, 0.8)).toBeCloseTo(44.7, 1);
    // r = 0 closed form: T / -ln(1 - C)
    expect(mtbfLowerBound(72, 0, 0.8)).toBeCloseTo(72 / -Math.log(0.2), 9);
  });

  it('NIST/SEMATECH e-Handbook 8.4.5.1’s example: 800 hours, 2 failures, 90 % two-sided (127.07 h, 2251.2 h)', () => {
    const nist = JSON.parse(readFileSync(join(__dirname, '..', '..', 'fixtures', 'published', 'nist-apr451-mtbf-interval.json'), 'utf8')) as {
      example: { total_hours: number; failures: number; confidence_two_sided: number; lower_hours: number; upper_hours: number };
    };
    const x = nist.example;
    const e = estimateMtbf(x.total_hours, x.failures, x.confidence_two_sided, 1000);
    expect(e.interval_hours[0]).toBeCloseTo(x.lower_hours, 3);
    expect(e.interval_hours[1] as number).toBeCloseTo(x.upper_hours, 2);
    expect(e.point_hours).toBe(x.total_hours / x.failures);
  });

  it('576 node-hours, 1 failure, 90 %: 148.1 h', () => {
    expect(mtbfLowerBound(576, 1, 0.9)).toBeCloseTo(148.1, 1);
  });

  it('estimate: no point estimate without failures, unbounded upper end, hours needed for the target', () => {
    const e = estimateMtbf(72, 0, 0.8, 1000);
    expect(e.point_hours).toBeNull();
    expect(e.interval_hours[1]).toBeNull();
    expect(e.demonstrated).toBe(false);
    // 1000 h at 80 % with 0 failures needs 1000 × -ln(0.2) = 1609.4 node-hours.
    expect(e.node_hours_needed).toBeCloseTo(1609.44, 1);
    expect(e.more_node_hours_needed).toBeCloseTo(1609.44 - 72, 1);
    const f = estimateMtbf(576, 2, 0.9, 100);
    expect(f.point_hours).toBe(288);
    expect(f.interval_hours[0]).toBeLessThan(f.lower_bound_hours);
    expect(f.interval_hours[1]).toBeGreaterThan(288);
  });

  it('the lower bound grows with hours and shrinks with failures and confidence (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: 1, max: 1e5, noNaN: true }), fc.integer({ min: 0, max: 50 }), fc.double({ min: 0.5, max: 0.99, noNaN: true }), (t, r, c) => {
        const b = mtbfLowerBound(t, r, c);
        expect(b).toBeGreaterThan(0);
        expect(mtbfLowerBound(t * 2, r, c)).toBeGreaterThan(b);
        expect(mtbfLowerBound(t, r + 1, c)).toBeLessThan(b);
        expect(mtbfLowerBound(t, r, Math.min(0.995, c + 0.004))).toBeLessThan(b);
        if (r > 0) expect(b).toBeLessThan(t / r);
      }),
      { numRuns: 200 },
    );
  });
});

describe('percentiles, Wilson, normal', () => {
  it('nearest-rank percentiles are observed values', () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentileSorted(s, 50)).toBe(5);
    expect(percentileSorted(s, 95)).toBe(10);
    expect(percentileSorted(s, 0)).toBe(1);
    expect(percentileSorted([], 50)).toBeNull();
    const d = distribution([3, 1, 2]);
    expect(d).toMatchObject({ count: 3, p50: 2, max: 3, mean: 2 });
  });

  it('normal quantile', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232, 5);
  });

  it('Wilson interval contains the estimate and known values', () => {
    const [lo, hi] = wilsonInterval(0, 1000);
    expect(lo).toBeCloseTo(0, 12);
    expect(hi).toBeCloseTo(0.003826, 5);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, f) => {
        const x = Math.floor(n * f);
        const [a, b] = wilsonInterval(x, n);
        expect(a).toBeLessThanOrEqual(x / n + 1e-12);
        expect(b).toBeGreaterThanOrEqual(x / n - 1e-12);
      }),
    );
  });
});
