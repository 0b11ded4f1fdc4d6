// Bounded memory however long the run: each finished request attempt goes into the window
// (10 s by default, by its end time) of its node — HDR histograms per latency metric and
// counters — and each window is handed on (to SQLite) once it is over. Memory holds only the
// windows still open.
import * as hdr from 'hdr-histogram-js';
import { isSuccess, type LatencyWindowRow, type LoadWindowRow } from '../store/types.js';
import type { RequestRecord } from './types.js';

export const LATENCY_METRICS = ['ttft', 'ttft_sched', 'itl', 'tpot', 'e2e', 'e2e_sched', 'queue_delay'] as const;
export type LatencyMetric = (typeof LATENCY_METRICS)[number];

export interface LoadWindow {
  node: string;
  windowStart: number;
  /** 0, or 1, 2 … for samples that arrived after the window had been handed on (merged in reports). */
  part: number;
  windowMs: number;
  attempts: number;
  ok: number;
  failed: number;
  cancelled: number;
  /** Attempts after the first (retries). */
  retries: number;
  /** Client view: requests whose final attempt ended in this window. */
  finalOk: number;
  finalFailed: number;
  outcomes: Record<string, number>;
  outputTokens: number;
  tokensFromUsage: number;
  tokensFromChunks: number;
  scheduleMisses: number;
  /** Arrivals the schedule had due in this window (sent or not): the accounting's total. */
  planned: number;
}

export interface LatencyWindow {
  node: string;
  windowStart: number;
  part: number;
  metric: LatencyMetric;
  count: number;
  minMs: number;
  maxMs: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  /** The histogram (µs), HdrHistogram compressed base64: windows merge exactly. */
  hist: string;
}

const US_MAX = 3_600_000_000; // one hour in µs

export function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: US_MAX, numberOfSignificantValueDigits: 3, bitBucketSize: 32, useWebAssembly: false });
}

export function recordMs(h: hdr.Histogram, ms: number): void {
  h.recordValue(Math.min(US_MAX, Math.max(1, Math.round(ms * 1000))));
}

interface Open {
  load: LoadWindow;
  hists: Map<LatencyMetric, hdr.Histogram>;
}

export class WindowAggregator {
  private readonly open = new Map<string, Open>();
  /** How many parts of each recently closed window were handed on (so a late sample makes the next part). */
  private readonly closedParts = new Map<string, { start: number; parts: number }>();

  constructor(
    readonly windowMs: number,
    private origin: number,
    private readonly emit: (load: LoadWindow, latency: LatencyWindow[]) => void,
    /** False when the engine cannot know scheduled send times (k6): no "from scheduled" views then. */
    private readonly scheduleKnown = true,
  ) {}

  /**
   * Moves the windows' origin to when the load really began (k6 starts a moment after it is
   * launched). Only before anything was recorded: windows already open keep their bounds.
   */
  rebase(origin: number): void {
    if (this.open.size === 0 && this.closedParts.size === 0) this.origin = origin;
  }

  private windowStart(t: number): number {
    return this.origin + Math.floor((t - this.origin) / this.windowMs) * this.windowMs;
  }

  private get(node: string, t: number): Open {
    const start = this.windowStart(t);
    const key = `${node}\u0000${start}`;
    let w = this.open.get(key);
    if (!w) {
      w = {
        load: {
          node,
          windowStart: start,
          part: this.closedParts.get(key)?.parts ?? 0,
          windowMs: this.windowMs,
          attempts: 0,
          ok: 0,
          failed: 0,
          cancelled: 0,
          retries: 0,
          finalOk: 0,
          finalFailed: 0,
          outcomes: {},
          outputTokens: 0,
          tokensFromUsage: 0,
          tokensFromChunks: 0,
          scheduleMisses: 0,
          planned: 0,
        },
        hists: new Map(),
      };
      this.open.set(key, w);
    }
    return w;
  }

  private add(w: Open, metric: LatencyMetric, ms: number | null): void {
    if (ms === null || !Number.isFinite(ms)) return;
    let h = w.hists.get(metric);
    if (!h) w.hists.set(metric, (h = newHistogram()));
    recordMs(h, ms);
  }

  record(r: RequestRecord): void {
    const w = this.get(r.node, r.endAt);
    const l = w.load;
    l.outcomes[r.outcome] = (l.outcomes[r.outcome] ?? 0) + 1;
    if (r.outcome === 'cancelled') {
      l.cancelled++;
      return;
    }
    l.attempts++;
    if (r.attempt > 1) l.retries++;
    if (r.attempt === 1) this.add(w, 'queue_delay', r.queueDelayMs);
    if (isSuccess(r.outcome)) {
      // successes: ok and degraded (outcomes{} tells them apart)
      l.ok++;
      if (r.outputTokens !== null) {
        l.outputTokens += r.outputTokens;
        if (r.tokensSource === 'usage') l.tokensFromUsage++;
        else if (r.tokensSource === 'chunks') l.tokensFromChunks++;
      }
      this.add(w, 'ttft', r.ttftMs);
      this.add(w, 'e2e', r.e2eMs);
      for (const g of r.gaps) this.add(w, 'itl', g);
      if (r.ttftMs !== null && r.outputTokens !== null && r.outputTokens > 1) this.add(w, 'tpot', (r.e2eMs - r.ttftMs) / (r.outputTokens - 1));
    } else l.failed++;
    if (r.final) {
      if (isSuccess(r.outcome)) {
        l.finalOk++;
        // The client's view: from the scheduled send, across queueing and retries.
        if (this.scheduleKnown) {
          if (r.firstTokenAt !== null) this.add(w, 'ttft_sched', r.firstTokenAt - r.scheduledAt);
          this.add(w, 'e2e_sched', r.endAt - r.scheduledAt);
        }
      } else l.finalFailed++;
    }
  }

  scheduleMiss(node: string, at: number, count: number): void {
    this.get(node, at).load.scheduleMisses += count;
  }

  planned(node: string, at: number, count: number): void {
    this.get(node, at).load.planned += count;
  }

  sample(node: string, metric: LatencyMetric, at: number, ms: number): void {
    this.add(this.get(node, at), metric, ms);
  }

  tokens(node: string, at: number, count: number, source: 'usage' | 'chunks'): void {
    const l = this.get(node, at).load;
    l.outputTokens += count;
    if (source === 'usage') l.tokensFromUsage++;
    else l.tokensFromChunks++;
  }

  /** Hands on every window that ended before `now − graceMs`. */
  tick(now: number, graceMs = 1000): void {
    for (const [key, w] of this.open) {
      if (w.load.windowStart + this.windowMs + graceMs <= now) {
        this.open.delete(key);
        this.close(w);
      }
    }
  }

  /** Hands on every open window (at the end of the run). */
  flush(): void {
    const all = [...this.open.values()].sort((a, b) => a.load.windowStart - b.load.windowStart);
    this.open.clear();
    for (const w of all) this.close(w);
  }

  private close(w: Open): void {
    const key = `${w.load.node}\u0000${w.load.windowStart}`;
    this.closedParts.set(key, { start: w.load.windowStart, parts: w.load.part + 1 });
    // Remember closed windows for an hour of run time: later than that nothing arrives.
    for (const [k, v] of this.closedParts) if (v.start < w.load.windowStart - 3_600_000) this.closedParts.delete(k);
    const latency: LatencyWindow[] = [];
    for (const [metric, h] of w.hists) {
      latency.push({
        node: w.load.node,
        windowStart: w.load.windowStart,
        part: w.load.part,
        metric,
        count: h.totalCount,
        minMs: h.minNonZeroValue / 1000,
        maxMs: h.maxValue / 1000,
        meanMs: h.mean / 1000,
        p50Ms: h.getValueAtPercentile(50) / 1000,
        p90Ms: h.getValueAtPercentile(90) / 1000,
        p99Ms: h.getValueAtPercentile(99) / 1000,
        hist: hdr.encodeIntoCompressedBase64(h),
      });
      h.destroy();
    }
    this.emit(w.load, latency);
  }
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

/** A closed window as the store's rows. */
export function windowToRows(runId: string, l: LoadWindow, lat: LatencyWindow[]): { load: LoadWindowRow; latency: LatencyWindowRow[] } {
  return {
    load: {
      run_id: runId,
      node: l.node,
      window_start: l.windowStart,
      part: l.part,
      window_ms: l.windowMs,
      attempts: l.attempts,
      ok: l.ok,
      failed: l.failed,
      cancelled: l.cancelled,
      retries: l.retries,
      final_ok: l.finalOk,
      final_failed: l.finalFailed,
      outcomes: JSON.stringify(l.outcomes),
      output_tokens: l.outputTokens,
      tokens_from_usage: l.tokensFromUsage,
      tokens_from_chunks: l.tokensFromChunks,
      schedule_misses: l.scheduleMisses,
      planned: l.planned,
    },
    latency: lat.map((x) => ({
      run_id: runId,
      node: x.node,
      window_start: x.windowStart,
      part: x.part,
      metric: x.metric,
      count: x.count,
      min_ms: x.minMs,
      max_ms: x.maxMs,
      mean_ms: x.meanMs,
      p50_ms: x.p50Ms,
      p90_ms: x.p90Ms,
      p99_ms: x.p99Ms,
      hist: x.hist,
    })),
  };
}
