// Run against run (nightly history): did the fleet get better or worse, and is the difference
// more than chance? Pure: numbers in, tests out. Each comparison says which test it used:
// - failure rates (MTBF): the conditional binomial test of two Poisson rates (given r1 + r2
//   failures, r1 ~ Binomial(r1 + r2, T1 / (T1 + T2)) when the rates are equal);
// - error rates: the two-proportion z-test (pooled), exact enough at the request counts runs have;
// - recovery times: Mann-Whitney's U (normal approximation with ties), distribution-free;
// - latency percentiles: distribution-free intervals for each run's quantile (order statistics:
//   the ranks np ± z·√(np(1−p)) read from its merged histogram); different when they do not
//   overlap and the change is at least 1 ms and 5 % (smaller ones matter to nobody).
import { betaI, normalCdf, normalQuantile } from './stats.js';

export type Direction = 'better' | 'worse' | 'same';

export interface Comparison {
  measure: string;
  a: number | null;
  b: number | null;
  unit: string;
  /** (b − a) / a, null when a is 0 or either is missing. */
  relative_change: number | null;
  /** Two-sided p-value where the test gives one. */
  p_value: number | null;
  /** The difference is beyond chance at the stated level. */
  significant: boolean;
  /** better / worse when significant (by the measure's sense), else same. */
  direction: Direction;
  /** The test, and its result, in words. */
  test: string;
}

/** P(X ≤ k) for X ~ Binomial(n, p). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  return betaI(1 - p, n - k, k + 1);
}

/** Two-sided p-value that two Poisson rates (failures r over exposure t) are equal. */
export function poissonRatesTest(r1: number, t1: number, r2: number, t2: number): number | null {
  const n = r1 + r2;
  if (n === 0 || !(t1 > 0 && t2 > 0)) return null;
  const p0 = t1 / (t1 + t2);
  const lower = binomialCdf(r1, n, p0);
  const upper = 1 - binomialCdf(r1 - 1, n, p0);
  return Math.min(1, 2 * Math.min(lower, upper));
}

/** Two-sided p-value of the two-proportion z-test (pooled variance). */
export function twoProportionTest(x1: number, n1: number, x2: number, n2: number): number | null {
  if (n1 === 0 || n2 === 0) return null;
  const p = (x1 + x2) / (n1 + n2);
  if (p === 0 || p === 1) return 1;
  const z = (x1 / n1 - x2 / n2) / Math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2));
  return 2 * (1 - normalCdf(Math.abs(z)));
}

/** Two-sided p-value of Mann-Whitney's U (normal approximation, tie-corrected); null below 3 values a side. */
export function mannWhitney(a: readonly number[], b: readonly number[]): { u: number; p: number } | null {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 < 3 || n2 < 3) return null;
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort((x, y) => x.v - y.v);
  const ranks = new Array<number>(all.length);
  let tie = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && (all[j + 1] as { v: number }).v === (all[i] as { v: number }).v) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[k] = r;
    const t = j - i + 1;
    tie += t * t * t - t;
    i = j + 1;
  }
  let r1 = 0;
  all.forEach((x, i) => {
    if (x.g === 0) r1 += ranks[i] as number;
  });
  const u = r1 - (n1 * (n1 + 1)) / 2;
  const n = n1 + n2;
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tie / (n * (n - 1))));
  if (sigma === 0) return { u, p: 1 };
  const z = (Math.abs(u - (n1 * n2) / 2) - 0.5) / sigma;
  return { u, p: Math.min(1, 2 * (1 - normalCdf(Math.max(0, z)))) };
}

/**
 * The ranks (as percentiles) bounding a distribution-free interval for the p-th percentile of
 * n samples at `confidence`: read both from the histogram to get the interval.
 */
export function quantileRankInterval(p: number, n: number, confidence = 0.95): [number, number] | null {
  const q = p / 100;
  // the normal approximation of the binomial rank needs n·min(q, 1−q) ≥ 5 (p99: 500 responses)
  if (n * Math.min(q, 1 - q) < 5) return null;
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const half = z * Math.sqrt((q * (1 - q)) / n);
  return [Math.max(0, q - half) * 100, Math.min(1, q + half) * 100];
}

const rel = (a: number | null, b: number | null): number | null => (a === null || b === null || a === 0 ? null : (b - a) / a);
const dir = (significant: boolean, a: number | null, b: number | null, lowerIsBetter: boolean): Direction => (!significant || a === null || b === null || a === b ? 'same' : (b < a) === lowerIsBetter ? 'better' : 'worse');

export const SIGNIFICANCE = 0.05;
/** Latency changes smaller than both of these are not called better or worse. */
export const MATERIAL_MS = 1;
export const MATERIAL_SHARE = 0.05;

export function compareFailureRates(r1: number, t1: number, r2: number, t2: number): Comparison {
  const a = r1 > 0 ? t1 / r1 : null;
  const b = r2 > 0 ? t2 / r2 : null;
  const p = poissonRatesTest(r1, t1, r2, t2);
  const significant = p !== null && p < SIGNIFICANCE;
  // a higher failure rate is worse (whatever the MTBF point estimates say when one is missing)
  const rateA = t1 > 0 ? r1 / t1 : 0;
  const rateB = t2 > 0 ? r2 / t2 : 0;
  return {
    measure: 'failures per node-hour (MTBF counts)',
    a: rateA,
    b: rateB,
    unit: '/node-hour',
    relative_change: rel(rateA, rateB),
    p_value: p,
    significant,
    direction: dir(significant, rateA, rateB, true),
    test: p === null ? `no failure in either run (${t1.toFixed(1)} and ${t2.toFixed(1)} node-hours): nothing to compare` : `conditional binomial test of two Poisson rates: ${r1} in ${t1.toFixed(1)} vs ${r2} in ${t2.toFixed(1)} node-hours, p = ${p.toPrecision(2)}${a !== null || b !== null ? ` (MTBF point ${a === null ? '—' : `${a.toFixed(1)} h`} → ${b === null ? '—' : `${b.toFixed(1)} h`})` : ''}`,
  };
}

export function compareErrorRates(x1: number, n1: number, x2: number, n2: number): Comparison {
  const a = n1 > 0 ? x1 / n1 : null;
  const b = n2 > 0 ? x2 / n2 : null;
  const p = twoProportionTest(x1, n1, x2, n2);
  const significant = p !== null && p < SIGNIFICANCE;
  return { measure: 'error rate', a, b, unit: 'share', relative_change: rel(a, b), p_value: p, significant, direction: dir(significant, a, b, true), test: p === null ? 'no requests in one run' : `two-proportion z-test: ${x1}/${n1} vs ${x2}/${n2}, p = ${p.toPrecision(2)}` };
}

export function compareSamples(measure: string, a: readonly number[], b: readonly number[], unit: string, summary: (v: readonly number[]) => number | null): Comparison {
  const mw = mannWhitney(a, b);
  const sa = summary(a);
  const sb = summary(b);
  const significant = mw !== null && mw.p < SIGNIFICANCE;
  return { measure, a: sa, b: sb, unit, relative_change: rel(sa, sb), p_value: mw?.p ?? null, significant, direction: dir(significant, sa, sb, true), test: mw === null ? `too few to test (${a.length} and ${b.length}; Mann-Whitney needs 3 a side)` : `Mann-Whitney U = ${mw.u}, n = ${a.length} and ${b.length}, p = ${mw.p.toPrecision(2)}` };
}

/** A latency percentile from each run's histogram, with its distribution-free interval. */
export function compareQuantiles(measure: string, p: number, a: { count: number; percentile(q: number): number | null }, b: { count: number; percentile(q: number): number | null }): Comparison {
  const va = a.percentile(p);
  const vb = b.percentile(p);
  const ia = quantileRankInterval(p, a.count);
  const ib = quantileRankInterval(p, b.count);
  const span = (h: typeof a, i: [number, number] | null): [number, number] | null => {
    const lo = i ? h.percentile(i[0]) : null;
    const hi = i ? h.percentile(i[1]) : null;
    return lo === null || hi === null ? null : [lo, hi];
  };
  const ra = span(a, ia);
  const rb = span(b, ib);
  // and large enough to matter: a change under 1 ms or 5 % is not called, however sure
  const material = va !== null && vb !== null && Math.abs(vb - va) >= Math.max(MATERIAL_MS, MATERIAL_SHARE * Math.min(va, vb));
  const apart = ra !== null && rb !== null && (rb[0] > ra[1] || ra[0] > rb[1]) && material;
  const fmt = (r: [number, number]): string => `${r[0].toFixed(1)}–${r[1].toFixed(1)} ms`;
  return {
    measure,
    a: va,
    b: vb,
    unit: 'ms',
    relative_change: rel(va, vb),
    p_value: null,
    significant: apart,
    direction: dir(apart, va, vb, true),
    test: ra && rb ? `95 % distribution-free intervals ${fmt(ra)} vs ${fmt(rb)}: ${rb[0] > ra[1] || ra[0] > rb[1] ? (material ? 'apart' : `apart, but under ${MATERIAL_MS} ms or ${MATERIAL_SHARE * 100} %`) : 'overlap'} (n = ${a.count} and ${b.count})` : `too few responses for p${p} (${a.count} and ${b.count}; ${Math.ceil(5 / Math.min(p / 100, 1 - p / 100))} a side needed)`,
  };
}
