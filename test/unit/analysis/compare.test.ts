// Run-against-run tests against values worked by hand (and agreeing with scipy's
// binomtest, mannwhitneyu(method='asymptotic') and a two-proportion z-test), and the latency
// quantile intervals' behaviour on seeded samples: the same distribution overlaps, a shift does not.
import { describe, expect, it } from 'vitest';
import { binomialCdf, compareFailureRates, compareQuantiles, mannWhitney, poissonRatesTest, quantileRankInterval, twoProportionTest } from '../../../src/analysis/compare.js';
import { encodeHistogram, mergeHistograms, newHistogram, recordMs } from '../../../src/analysis/histogram.js';
import { seededRandom } from '../../../src/util/random.js';

describe('run against run', () => {
  it('binomial CDF and the two-rate test: 10 vs 2 failures in equal node-hours is p = 2·79/4096', () => {
    expect(binomialCdf(2, 12, 0.5)).toBeCloseTo(79 / 4096, 12);
    expect(poissonRatesTest(10, 100, 2, 100)).toBeCloseTo((2 * 79) / 4096, 10);
    expect(poissonRatesTest(3, 100, 3, 100)).toBe(1);
    expect(poissonRatesTest(0, 100, 0, 50)).toBeNull();
    const c = compareFailureRates(2, 100, 10, 100);
    expect(c).toMatchObject({ significant: true, direction: 'worse' });
    expect(compareFailureRates(1, 100, 2, 100)).toMatchObject({ significant: false, direction: 'same' });
  });

  it('two proportions: 10/1000 vs 20/1000 is not significant at 5 % (p ≈ 0.066), 10/1000 vs 40/1000 is', () => {
    expect(twoProportionTest(10, 1000, 20, 1000)).toBeCloseTo(0.0658, 3);
    expect(twoProportionTest(10, 1000, 40, 1000) as number).toBeLessThan(1e-4);
    expect(twoProportionTest(0, 10, 0, 10)).toBe(1);
  });

  it("Mann-Whitney: two separated samples of five give U = 0, p ≈ 0.0122; too few values are not tested", () => {
    const r = mannWhitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]);
    expect(r?.u).toBe(0);
    expect(r?.p).toBeCloseTo(0.01219, 4);
    expect(mannWhitney([1, 2, 3], [1, 2, 3])?.p).toBe(1);
    expect(mannWhitney([1, 2], [3, 4, 5])).toBeNull();
  });

  it('latency quantiles: the same distribution rarely reads as changed, a 10 % shift always does (seeded, 200 pairs)', () => {
    const rng = seededRandom(42);
    const hist = (n: number, scale: number) => {
      const h = newHistogram();
      for (let i = 0; i < n; i++) recordMs(h, scale * (50 - 20 * Math.log(1 - rng.next())));
      const e = encodeHistogram(h);
      h.destroy();
      return mergeHistograms([e]);
    };
    let falseAlarms = 0;
    let found = 0;
    for (let i = 0; i < 100; i++) {
      if (compareQuantiles('ttft p50', 50, hist(2000, 1), hist(2000, 1)).significant) falseAlarms++;
      if (compareQuantiles('ttft p50', 50, hist(2000, 1), hist(2000, 1.1)).direction === 'worse') found++;
    }
    // two 95 % intervals that must not overlap: a false alarm is far rarer than 5 %
    expect(falseAlarms).toBeLessThanOrEqual(3);
    expect(found).toBeGreaterThanOrEqual(95);
    expect(quantileRankInterval(50, 9)).toBeNull();
    expect(quantileRankInterval(99, 499)).toBeNull();
    // a sure but tiny change (0.3 → 0.8 ms) is not called
    const tiny = (v: number) => ({ count: 10_000, percentile: () => v });
    expect(compareQuantiles('tpot p99', 99, tiny(0.3), tiny(0.8))).toMatchObject({ significant: false, direction: 'same' });
    expect(quantileRankInterval(99, 10_000)?.map((x) => Math.round(x * 100) / 100)).toEqual([98.8, 99.2]);
  });
});
