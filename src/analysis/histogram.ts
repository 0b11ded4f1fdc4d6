// Latency histograms shared by the engines (recording), the store's rollups and the analysis
// (merging): HDR histograms in microseconds up to an hour, 3 significant digits, encoded as
// HdrHistogram's compressed base64 so windows and hours merge exactly — percentiles are read
// from merged counts, never averaged.
import * as hdr from 'hdr-histogram-js';

export const LATENCY_METRICS = ['ttft', 'ttft_sched', 'itl', 'tpot', 'e2e', 'e2e_sched', 'queue_delay'] as const;
export type LatencyMetric = (typeof LATENCY_METRICS)[number];

export type Histogram = hdr.Histogram;

const US_MAX = 3_600_000_000; // one hour in µs

export function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: US_MAX, numberOfSignificantValueDigits: 3, bitBucketSize: 32, useWebAssembly: false });
}

/**
 * Histograms are large (a 32-bit count per bucket, ~190 KB each) and a run closes seven per node
 * every window: they are reset and reused instead of allocated each time (a 72 h run would
 * otherwise allocate tens of gigabytes for the collector to reclaim).
 */
const pool: hdr.Histogram[] = [];
const POOL_MAX = 256;

export function takeHistogram(): hdr.Histogram {
  return pool.pop() ?? newHistogram();
}

export function returnHistogram(h: hdr.Histogram): void {
  if (pool.length >= POOL_MAX) return void h.destroy();
  h.reset();
  pool.push(h);
}

/** A latency as the histograms record it: whole µs, 1 µs to an hour. */
export function toUs(ms: number): number {
  return Math.min(US_MAX, Math.max(1, Math.round(ms * 1000)));
}

export function recordMs(h: hdr.Histogram, ms: number): void {
  h.recordValue(toUs(ms));
}

/**
 * The value hdr-histogram-js's getValueAtPercentile gives, from the recorded values themselves
 * (sorted, µs): the same rank rule (rounded up, at least the first) and the same bucket edge.
 * Walking the histogram's counts costs ~0.1 ms per percentile; a small window's samples sort faster.
 */
function percentileOfSorted(h: hdr.Histogram, sorted: Float64Array, p: number): number {
  const fp = (Math.min(p, 100) / 100) * sorted.length;
  const rank = Math.max(fp > 0 ? Math.ceil(fp - 2 ** (Math.floor(Math.log2(fp)) - 52)) : 0, 1);
  return (h as unknown as { highestEquivalentValue(v: number): number }).highestEquivalentValue(sorted[Math.min(rank, sorted.length) - 1] as number);
}

export function encodeHistogram(h: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/**
 * A histogram's summary (ms) and its encoding, as windows and rollups store it; the mean from the
 * samples' sum, the percentiles from the recorded values when they were kept (`us`, every one).
 */
export function summarizeHistogram(h: hdr.Histogram, sumMs: number, us: readonly number[] | null = null): { count: number; minMs: number; maxMs: number; meanMs: number; p50Ms: number; p90Ms: number; p99Ms: number; hist: string } {
  const sorted = us !== null && us.length === h.totalCount && us.length > 0 ? Float64Array.from(us).sort() : null;
  const at = (p: number): number => (sorted ? percentileOfSorted(h, sorted, p) : h.getValueAtPercentile(p)) / 1000;
  return {
    count: h.totalCount,
    minMs: h.minNonZeroValue / 1000,
    maxMs: h.maxValue / 1000,
    meanMs: h.totalCount > 0 ? sumMs / h.totalCount : 0,
    p50Ms: at(50),
    p90Ms: at(90),
    p99Ms: at(99),
    hist: hdr.encodeIntoCompressedBase64(h),
  };
}

/**
 * Merges encoded histograms and reads percentiles (ms). `minus`: histograms already in
 * `encoded` to take out again (the windows a fault touched, out of rollups that hold them) —
 * exact, counts are subtracted bucket by bucket.
 */
export function mergeHistograms(encoded: readonly string[], minus: readonly string[] = []): { count: number; percentile(p: number): number | null; max: number | null; mean: number | null } {
  const total = newHistogram();
  for (const e of encoded) {
    const h = hdr.decodeFromCompressedBase64(e, 32, false);
    total.add(h);
    h.destroy();
  }
  for (const e of minus) {
    const h = hdr.decodeFromCompressedBase64(e, 32, false);
    total.subtract(h);
    h.destroy();
  }
  const count = total.totalCount;
  const result = {
    count,
    percentile: (p: number) => (count === 0 ? null : total.getValueAtPercentile(p) / 1000),
    max: count === 0 ? null : total.maxValue / 1000,
    mean: count === 0 ? null : total.mean / 1000,
  };
  return result;
}
