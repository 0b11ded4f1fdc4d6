// Building request records and window rows for analysis tests.
import { encodeHistogram, mergeHistograms, newHistogram, recordMs } from '../../src/analysis/histogram.js';
import type { RequestRecord } from '../../src/load/types.js';
import { WindowAggregator } from '../../src/load/windows.js';
import { latencyRow, loadRow } from '../../src/store/store.js';
import type { LatencyWindowRow, LoadWindowRow } from '../../src/store/types.js';

export function record(over: Partial<RequestRecord> & Pick<RequestRecord, 'node' | 'sentAt'>): RequestRecord {
  const ok = (over.outcome ?? 'ok') === 'ok';
  const sentAt = over.sentAt;
  const base: RequestRecord = {
    node: over.node,
    seq: 1,
    attempt: 1,
    final: true,
    mix: 'default',
    scheduledAt: sentAt - 1,
    sentAt,
    respondedAt: ok ? sentAt + 1 : null,
    firstTokenAt: ok ? sentAt + 50 : null,
    endAt: sentAt + 100,
    ttftMs: ok ? 50 : null,
    e2eMs: 100,
    queueDelayMs: 1,
    outcome: 'ok',
    status: 200,
    outputTokens: ok ? 6 : null,
    tokensSource: ok ? 'usage' : null,
    chunks: ok ? 6 : 0,
    itlMaxMs: ok ? 10 : null,
    error: null,
    promptTokens: 10,
    maxTokens: 6,
    gaps: ok ? [10, 10, 10, 10, 10] : [],
  };
  return { ...base, ...over };
}

/** Runs records through the real aggregator and returns the rows it would store (windows, and hourly rollups). */
export function windowRows(
  records: RequestRecord[],
  windowMs = 10_000,
  origin = 0,
  rollupMs = 3_600_000,
): { loadWindows: LoadWindowRow[]; latencyWindows: LatencyWindowRow[]; loadRollups: (LoadWindowRow & { windows: number; last_window: number })[]; latencyRollups: LatencyWindowRow[] } {
  const loadWindows: LoadWindowRow[] = [];
  const latencyWindows: LatencyWindowRow[] = [];
  const loadRollups: (LoadWindowRow & { windows: number; last_window: number })[] = [];
  const latencyRollups: LatencyWindowRow[] = [];
  const agg = new WindowAggregator(
    windowMs,
    origin,
    (c) => {
      if (c.window) {
        loadWindows.push(loadRow('r', c.window.load));
        latencyWindows.push(...c.window.latency.map((l) => latencyRow('r', l)));
      }
      for (const r of c.rollups) {
        loadRollups.push({ ...loadRow('r', r.load), windows: r.windows, last_window: r.lastWindow });
        latencyRollups.push(...r.latency.map((l) => latencyRow('r', l)));
      }
    },
    true,
    rollupMs,
  );
  for (const r of records) agg.record(r);
  agg.flush();
  return { loadWindows, latencyWindows, loadRollups, latencyRollups };
}

/**
 * A ttft percentile of records two ways: from histograms of slices of `slice` samples, merged (as
 * windows and generators merge), and from the samples themselves (ground truth).
 */
export function ttftMergedAndRaw(recs: readonly RequestRecord[], p: number, slice: number): { merged: number; raw: number } {
  const values = recs.filter((r) => r.ttftMs !== null).map((r) => r.ttftMs as number);
  const slices: string[] = [];
  for (let i = 0; i < values.length; i += slice) {
    const h = newHistogram();
    for (const v of values.slice(i, i + slice)) recordMs(h, v);
    slices.push(encodeHistogram(h));
  }
  const sorted = [...values].sort((a, b) => a - b);
  return { merged: mergeHistograms(slices).percentile(p) as number, raw: sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1] as number };
}
