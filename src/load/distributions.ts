// Random variates for workload shaping, from an injected seeded source. Pure.
import type { Random } from '../util/random.js';

/** Standard normal (Box–Muller; one of the pair is discarded for simplicity). */
export function normal(rng: Random): number {
  let u = 0;
  while (u === 0) u = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** Gamma(shape k, scale θ) by Marsaglia–Tsang; shape < 1 via the boost Gamma(k+1)·U^(1/k). */
export function gamma(rng: Random, shape: number, scale: number): number {
  if (shape < 1) {
    let u = 0;
    while (u === 0) u = rng.next();
    return gamma(rng, shape + 1, scale) * u ** (1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v * scale;
  }
}

/** A length distribution as a plan writes it. */
export type LengthDist =
  | { fixed: number }
  | { uniform: [number, number] }
  | { normal: { mean: number; stddev: number } }
  | { lognormal: { median: number; sigma: number } };

/** An integer length ≥ 1 drawn from the distribution (normal/lognormal are clamped to [1, max]). */
export function sampleLength(rng: Random, d: LengthDist, max: number): number {
  let x: number;
  if ('fixed' in d) x = d.fixed;
  else if ('uniform' in d) x = d.uniform[0] + rng.next() * (d.uniform[1] - d.uniform[0] + 1);
  else if ('normal' in d) x = d.normal.mean + d.normal.stddev * normal(rng);
  else x = d.lognormal.median * Math.exp(d.lognormal.sigma * normal(rng));
  return Math.min(max, Math.max(1, Math.floor(x)));
}

/** The mean of a length distribution (before clamping), for sizing and reports. */
export function meanLength(d: LengthDist): number {
  if ('fixed' in d) return d.fixed;
  if ('uniform' in d) return (d.uniform[0] + d.uniform[1]) / 2;
  if ('normal' in d) return d.normal.mean;
  return d.lognormal.median * Math.exp((d.lognormal.sigma * d.lognormal.sigma) / 2);
}
