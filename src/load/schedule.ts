// Open-loop send times. A rate profile r(t) — constant, or k6-style stages that ramp linearly
// (a 0 s stage is a step) — is turned into arrival times by time-rescaling: a unit-rate process
// u₁ < u₂ < … (evenly spaced, Poisson, or gamma with a burstiness factor) is mapped through
// the inverse of the cumulative rate Λ(t) = ∫₀ᵗ r. The send times depend on the profile and
// the seed alone; a slow server never moves them. Pure.
import { deriveSeed, exponential, seededRandom } from '../util/random.js';
import { gamma } from './distributions.js';

export interface Stage {
  /** ms */
  duration: number;
  /** requests/s reached at the end of the stage */
  target: number;
}

export interface RateProfile {
  /** requests/s at t = 0 */
  startRate: number;
  /** after the last stage the rate holds at its target */
  stages: Stage[];
}

export type Arrival = 'constant' | 'poisson' | 'gamma';

interface Segment {
  t0: number;
  t1: number;
  r0: number;
  r1: number;
  /** Λ at t0 (requests) */
  l0: number;
}

export class RateCurve {
  private readonly segments: Segment[] = [];
  private readonly tailRate: number;
  private readonly tailStart: number;
  private readonly tailL: number;

  constructor(profile: RateProfile) {
    let t = 0;
    let r = profile.startRate;
    let l = 0;
    for (const s of profile.stages) {
      if (s.duration > 0) {
        this.segments.push({ t0: t, t1: t + s.duration, r0: r, r1: s.target, l0: l });
        l += ((r + s.target) / 2) * (s.duration / 1000);
        t += s.duration;
      }
      r = s.target;
    }
    this.tailStart = t;
    this.tailRate = r;
    this.tailL = l;
  }

  /** Requests per second at time t (ms). */
  rate(t: number): number {
    for (const s of this.segments) if (t < s.t1) return s.r0 + ((s.r1 - s.r0) * (t - s.t0)) / (s.t1 - s.t0);
    return this.tailRate;
  }

  /** Expected requests in [0, t] (ms). */
  cumulative(t: number): number {
    for (const s of this.segments) {
      if (t < s.t1) {
        const tau = (t - s.t0) / 1000;
        const slope = (s.r1 - s.r0) / ((s.t1 - s.t0) / 1000);
        return s.l0 + s.r0 * tau + (slope * tau * tau) / 2;
      }
    }
    return this.tailL + (this.tailRate * (t - this.tailStart)) / 1000;
  }

  /** The time (ms) at which `cumulative` reaches u, or Infinity if it never does. */
  inverse(u: number): number {
    for (const s of this.segments) {
      const l1 = s.l0 + ((s.r0 + s.r1) / 2) * ((s.t1 - s.t0) / 1000);
      if (u <= l1) {
        const need = u - s.l0;
        const d = (s.t1 - s.t0) / 1000;
        const slope = (s.r1 - s.r0) / d;
        let tau: number;
        if (Math.abs(slope) < 1e-12) tau = s.r0 > 0 ? need / s.r0 : 0;
        else {
          // r0·τ + slope·τ²/2 = need  →  τ = (−r0 + √(r0² + 2·slope·need)) / slope
          const disc = Math.max(0, s.r0 * s.r0 + 2 * slope * need);
          tau = (-s.r0 + Math.sqrt(disc)) / slope;
        }
        return s.t0 + Math.min(d, Math.max(0, tau)) * 1000;
      }
    }
    if (this.tailRate <= 0) return Number.POSITIVE_INFINITY;
    return this.tailStart + ((u - this.tailL) / this.tailRate) * 1000;
  }
}

export interface StreamSpec {
  arrival: Arrival;
  /** gamma shape (vLLM's convention): 1 = Poisson, < 1 burstier, > 1 more regular */
  burstiness: number;
  curve: RateCurve;
  /** This stream's share of the total rate (1 / number of targets). */
  share: number;
  seed: number;
  label: string;
}

/** Offsets (ms from the start) of successive arrivals of one stream; ends when the rate stays 0. */
export function* arrivalTimes(spec: StreamSpec): Generator<number, void> {
  const rng = seededRandom(deriveSeed(spec.seed, spec.label));
  // In "operational time" the stream has unit rate: u advances by 1 per expected request.
  let u = spec.arrival === 'constant' ? rng.next() : 0;
  for (;;) {
    if (spec.arrival === 'poisson') u += exponential(rng, 1);
    else if (spec.arrival === 'gamma') u += gamma(rng, spec.burstiness, 1 / spec.burstiness);
    const t = spec.curve.inverse(u / spec.share);
    if (!Number.isFinite(t)) return;
    yield t;
    if (spec.arrival === 'constant') u += 1;
  }
}
