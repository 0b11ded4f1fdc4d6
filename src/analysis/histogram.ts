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

export function recordMs(h: hdr.Histogram, ms: number): void {
  h.recordValue(Math.min(US_MAX, Math.max(1, Math.round(ms * 1000))));
}

export function encodeHistogram(h: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/** A histogram's summary (ms) and its encoding, as windows and rollups store it; the mean from the samples' sum. */
export function summarizeHistogram(h: hdr.Histogram, sumMs: number): { count: number; minMs: number; maxMs: number; meanMs: number; p50Ms: number; p90Ms: number; p99Ms: number; hist: string } {
  return {
    count: h.totalCount,
    minMs: h.minNonZeroValue / 1000,
    maxMs: h.maxValue / 1000,
    meanMs: h.totalCount > 0 ? sumMs / h.totalCount : 0,
    p50Ms: h.getValueAtPercentile(50) / 1000,
    p90Ms: h.getValueAtPercentile(90) / 1000,
    p99Ms: h.getValueAtPercentile(99) / 1000,
    hist: hdr.encodeIntoCompressedBase64(h),
  };
}

/** Merges encoded histograms and reads percentiles (ms). */
export function mergeHistograms(encoded: readonly string[]): { count: number; percentile(p: number): number | null; max: number | null; mean: number | null } {
  const total = newHistogram();
  for (const e of encoded) {
    const h = hdr.decodeFromCompressedBase64(e, 32, false);
    total.add(h);
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
