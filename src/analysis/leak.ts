// Memory growth: "over 24 h, memory must not grow". The least-squares slope of a node's memory
// against time with its confidence interval, and when it would reach its limit at that pace.
// Memory samples a few seconds apart are not independent (a sample is much like the one before):
// the interval uses an effective sample count n·(1−ρ)/(1+ρ), ρ the lag-1 autocorrelation of the
// residuals, so that a wandering but flat series is not called a leak.
import { studentTQuantile } from './stats.js';

export interface LeakSample {
  /** Epoch ms. */
  at: number;
  bytes: number;
}

export interface LeakResult {
  samples: number;
  /** Time covered, hours. */
  spanHours: number;
  /** Slope, bytes per hour (null with fewer than 3 samples or no time between them). */
  slopeBytesPerHour: number | null;
  /** Two-sided interval on the slope at `confidence`. */
  interval: [number, number] | null;
  confidence: number;
  /** Lag-1 autocorrelation of the residuals, and the effective sample count it leaves. */
  rho: number | null;
  effectiveSamples: number | null;
  /** The interval lies wholly above 0: memory grows. */
  growing: boolean;
  /** Growth over 24 h at the slope, bytes. */
  per24hBytes: number | null;
  /** The fitted value at the last sample, bytes. */
  fittedEndBytes: number | null;
  /** Hours from the last sample until the fit reaches `limitBytes` (null: no limit, not growing, or already there). */
  hoursToLimit: number | null;
  limitBytes: number | null;
}

export function memoryTrend(samples: readonly LeakSample[], opts: { confidence?: number; limitBytes?: number | null } = {}): LeakResult {
  const confidence = opts.confidence ?? 0.95;
  const limitBytes = opts.limitBytes ?? null;
  const pts = samples.filter((s) => Number.isFinite(s.at) && Number.isFinite(s.bytes)).sort((a, b) => a.at - b.at);
  const n = pts.length;
  const spanHours = n ? ((pts[n - 1] as LeakSample).at - (pts[0] as LeakSample).at) / 3_600_000 : 0;
  const empty: LeakResult = { samples: n, spanHours, slopeBytesPerHour: null, interval: null, confidence, rho: null, effectiveSamples: null, growing: false, per24hBytes: null, fittedEndBytes: null, hoursToLimit: null, limitBytes };
  if (n < 3 || !(spanHours > 0)) return empty;
  const t0 = (pts[0] as LeakSample).at;
  const xs = pts.map((p) => (p.at - t0) / 3_600_000);
  const ys = pts.map((p) => p.bytes);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += ((xs[i] as number) - mx) ** 2;
    sxy += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
  }
  if (!(sxx > 0)) return empty;
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const res = ys.map((y, i) => y - (intercept + slope * (xs[i] as number)));
  const sse = res.reduce((a, r) => a + r * r, 0);
  let num = 0;
  for (let i = 1; i < n; i++) num += (res[i] as number) * (res[i - 1] as number);
  const rho = sse > 0 ? Math.max(0, Math.min(0.99, num / sse)) : 0;
  const nEff = Math.max(3, (n * (1 - rho)) / (1 + rho));
  // the residual variance from all points, the slope's variance scaled by n / n_eff
  const s2 = sse / (n - 2);
  const se = Math.sqrt((s2 / sxx) * (n / nEff));
  const tq = studentTQuantile(1 - (1 - confidence) / 2, nEff - 2 > 0 ? nEff - 2 : 1);
  const interval: [number, number] = [slope - tq * se, slope + tq * se];
  const fittedEnd = intercept + slope * (xs[n - 1] as number);
  const growing = interval[0] > 0;
  const hoursToLimit = limitBytes !== null && growing && fittedEnd < limitBytes ? (limitBytes - fittedEnd) / slope : null;
  return { samples: n, spanHours, slopeBytesPerHour: slope, interval, confidence, rho, effectiveSamples: nEff, growing, per24hBytes: slope * 24, fittedEndBytes: fittedEnd, hoursToLimit, limitBytes };
}
