// Trend tests on seeded histories: a constant failure rate is flagged about as often as the test's
// level says, a deteriorating one (power law, β = 1.5) far more often; Crow-AMSAA's β interval
// covers the truth.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { crowAmsaa, laplaceTest, type NodeEvents } from '../../../src/analysis/trend.js';
import { memoryTrend } from '../../../src/analysis/leak.js';
import { bootstrapPercentile, percentileSorted } from '../../../src/analysis/stats.js';
import { exponential, seededRandom, type Random } from '../../../src/util/random.js';

/** A power-law NHPP on (0, span]: expected events (t/η)^β; by time change of a unit-rate process. */
function powerLaw(rng: Random, beta: number, eta: number, span: number): number[] {
  const out: number[] = [];
  for (let s = exponential(rng, 1); ; s += exponential(rng, 1)) {
    const t = eta * s ** (1 / beta);
    if (t > span) return out;
    out.push(t);
  }
}

function fleet(seed: number, beta: number, nodes = 8, span = 72, expected = 4): NodeEvents[] {
  const rng = seededRandom(seed);
  const eta = span / expected ** (1 / beta); // `expected` events per node on average
  return Array.from({ length: nodes }, () => ({ times: powerLaw(rng, beta, eta, span), span }));
}

describe('trend tests', () => {
  it('a published example (test/fixtures/published, with its source): Laplace U = 2.409, worsening; power-law β = 1.588, λ = 3.703e-5', () => {
    const ex = JSON.parse(readFileSync(new URL('../../fixtures/published/rocof-modarres-example-5.11.json', import.meta.url), 'utf8')) as { interarrival_hours: number[]; printed: { laplace_u: number; beta_hat: number; lambda_hat: number } };
    const times: number[] = [];
    for (const x of ex.interarrival_hours) times.push((times.at(-1) ?? 0) + x);
    const T = times.at(-1) as number;
    // failure-truncated: the last failure ends the test (it is T itself, not an event in (0, T))
    const lap = laplaceTest([{ span: T, times: times.slice(0, -1) }]);
    expect(Number((lap.u as number).toFixed(3))).toBe(ex.printed.laplace_u);
    expect(lap.pTwoSided as number).toBeLessThan(0.05);
    const ca = crowAmsaa([{ span: T, times }], 0.9);
    expect(Number((ca.beta as number).toFixed(3))).toBe(ex.printed.beta_hat);
    expect(Number((ca.lambda as number).toPrecision(4))).toBe(ex.printed.lambda_hat);
  });

  it("a published example with the source's own figures (ReliaWiki's Crow-AMSAA example): β = 0.6142, λ = 0.4239, improving", () => {
    const ex = JSON.parse(readFileSync(new URL('../../fixtures/published/reliawiki-crow-amsaa-example.json', import.meta.url), 'utf8')) as { failure_times_hours: number[]; printed: { sum_ln_t: number; beta_hat: number; lambda_hat: number } };
    const times = ex.failure_times_hours;
    expect(Number(times.reduce((a, t) => a + Math.log(t), 0).toFixed(4))).toBe(ex.printed.sum_ln_t);
    // failure-terminated: T is the last failure (ln(T/T) = 0 adds nothing to the sum)
    const ca = crowAmsaa([{ span: times.at(-1) as number, times }], 0.9);
    expect(Number((ca.beta as number).toFixed(4))).toBe(ex.printed.beta_hat);
    expect(Number((ca.lambda as number).toFixed(4))).toBe(ex.printed.lambda_hat);
    // β < 1: failures thin out (reliability growth); its 90 % interval lies below 1, not worsening
    expect((ca.betaInterval as [number, number])[1]).toBeLessThan(1);
    expect(ca.worsening).toBe(false);
  });

  it('Laplace: constant rate flagged at about its 5 % level; β = 1.5 flagged far more often', () => {
    const n = 1000;
    let constFlags = 0;
    let worseFlags = 0;
    for (let i = 0; i < n; i++) {
      if ((laplaceTest(fleet(i, 1)).pWorse ?? 1) < 0.05) constFlags++;
      if ((laplaceTest(fleet(50_000 + i, 1.5)).pWorse ?? 1) < 0.05) worseFlags++;
    }
    process.stderr.write(`trend: Laplace at 5 %: constant rate flagged ${constFlags}/${n}, β = 1.5 flagged ${worseFlags}/${n}\n`);
    expect(constFlags / n).toBeGreaterThan(0.02);
    expect(constFlags / n).toBeLessThan(0.08);
    expect(worseFlags / n).toBeGreaterThan(0.5);
    expect(worseFlags).toBeGreaterThan(8 * constFlags);
  });

  it('Crow-AMSAA: the 90 % interval on β covers the truth in about 90 % of histories; β = 1.5 is called worsening far more than β = 1', () => {
    const n = 1000;
    let covered = 0;
    let worse15 = 0;
    let worse1 = 0;
    for (let i = 0; i < n; i++) {
      const c = crowAmsaa(fleet(90_000 + i, 1.5), 0.9);
      const [lo, hi] = c.betaInterval as [number, number];
      if (lo <= 1.5 && 1.5 <= hi) covered++;
      if (c.worsening) worse15++;
      if (crowAmsaa(fleet(130_000 + i, 1), 0.9).worsening) worse1++;
    }
    process.stderr.write(`trend: Crow-AMSAA β 90 % interval covers 1.5 in ${covered}/${n}; worsening: β = 1.5 ${worse15}/${n}, β = 1 ${worse1}/${n}\n`);
    expect(covered / n).toBeGreaterThan(0.87);
    expect(covered / n).toBeLessThan(0.93);
    expect(worse1 / n).toBeLessThan(0.08);
    expect(worse15).toBeGreaterThan(8 * Math.max(1, worse1));
  });

  it('the statistics by hand for a small history, and no events → no statistic', () => {
    // one node, (0, 10], events at 2, 5, 9: U = (16 − 15)/√(3·100/12) = 0.2
    expect(laplaceTest([{ times: [2, 5, 9], span: 10 }]).u).toBeCloseTo(0.2, 12);
    // β̂ = 3 / (ln 5 + ln 2 + ln(10/9))
    expect(crowAmsaa([{ times: [2, 5, 9], span: 10 }]).beta).toBeCloseTo(3 / (Math.log(5) + Math.log(2) + Math.log(10 / 9)), 12);
    expect(laplaceTest([{ times: [], span: 10 }]).u).toBeNull();
    expect(crowAmsaa([{ times: [4], span: 10 }]).beta).toBeNull();
    expect(() => laplaceTest([{ times: [11], span: 10 }])).toThrow(/outside/);
  });
});

describe('memory growth', () => {
  const hourly = (n: number, f: (h: number, rng: Random) => number, seed = 1) => {
    const rng = seededRandom(seed);
    return Array.from({ length: n }, (_, i) => ({ at: 1_700_000_000_000 + i * 60_000, bytes: f(i / 60, rng) }));
  };
  // a flat series that wanders (AR(1), ρ = 0.9, 8 MB steps) sampled every minute for 24 h
  const wander = (seed: number) => {
    let x = 0;
    return hourly(24 * 60, (_h, rng) => (x = 0.9 * x + (rng.next() - 0.5) * 16e6) + 2e9, seed);
  };

  it('a flat but wandering series is not called a leak (about 5 % of the time at 95 %); 10 MB/h of growth under the same noise is', () => {
    let flagged = 0;
    const n = 200;
    for (let i = 0; i < n; i++) if (memoryTrend(wander(i)).growing) flagged++;
    process.stderr.write(`leak: flat AR(1) series flagged ${flagged}/${n}\n`);
    expect(flagged / n).toBeLessThan(0.12);
    const leak = wander(999).map((s, i) => ({ ...s, bytes: s.bytes + (i / 60) * 10e6 }));
    const r = memoryTrend(leak, { limitBytes: 4e9 });
    expect(r.growing).toBe(true);
    expect(r.slopeBytesPerHour as number).toBeGreaterThan(8e6);
    expect(r.slopeBytesPerHour as number).toBeLessThan(12e6);
    // from ~2.24 GB at the end to 4 GB at 10 MB/h: about 176 h
    expect(r.hoursToLimit as number).toBeGreaterThan(140);
    expect(r.hoursToLimit as number).toBeLessThan(220);
    expect(r.per24hBytes as number).toBeCloseTo((r.slopeBytesPerHour as number) * 24, 6);
  });

  it('too few samples: no slope', () => {
    expect(memoryTrend([{ at: 0, bytes: 1 }, { at: 1, bytes: 2 }]).slopeBytesPerHour).toBeNull();
  });
});

describe('bootstrap', () => {
  it('the 90 % interval of the median holds the sample median and is seeded', () => {
    const rng = seededRandom(3);
    const xs = Array.from({ length: 40 }, () => 1000 + exponential(rng, 2000));
    const ci = bootstrapPercentile(xs, 50, { seed: 5 }) as [number, number];
    const med = percentileSorted([...xs].sort((a, b) => a - b), 50) as number;
    expect(ci[0]).toBeLessThanOrEqual(med);
    expect(ci[1]).toBeGreaterThanOrEqual(med);
    expect(bootstrapPercentile(xs, 50, { seed: 5 })).toEqual(ci);
    expect(bootstrapPercentile([1], 50)).toBeNull();
  });
});
