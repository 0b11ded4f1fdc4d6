// Bounded memory however long the run: each finished request attempt goes into the window
// (10 s by default, by its end time) of its node — HDR histograms per latency metric and
// counters — and each window is handed on (to SQLite) once it is over. Memory holds only the
// windows still open, and each node's rollup: the windows of the current hour (of plan time)
// merged, handed on with the first window of the next hour, so a report reads one row per
// node and hour instead of every window.
import { type Histogram, type LatencyMetric, returnHistogram, summarizeHistogram, takeHistogram, toUs } from '../analysis/histogram.js';
import { isSuccess } from './outcome.js';
import type { RequestRecord } from './types.js';

export { LATENCY_METRICS, type LatencyMetric } from '../analysis/histogram.js';

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

/** Merged windows of one node over one rollup span (an hour of plan time). */
export interface Rollup {
  /** windowStart: the span's start; windowMs: its length; part > 0: windows that came after it was handed on. */
  load: LoadWindow;
  latency: LatencyWindow[];
  /** Window parts merged into it. */
  windows: number;
  /** The start of the latest window merged. */
  lastWindow: number;
}

/** What the aggregator hands on: a closed window, the rollups finished with it, or both. */
export interface Closed {
  window: { load: LoadWindow; latency: LatencyWindow[] } | null;
  rollups: Rollup[];
}

interface Open {
  load: LoadWindow;
  hists: Map<LatencyMetric, Histogram>;
  /** Sum of each metric's samples (ms): the mean, without walking the histogram (slow in hdr-histogram-js). */
  sums: Map<LatencyMetric, number>;
  /**
   * Each metric's recorded values (µs) while there are few (null past RAW_MAX): percentiles and
   * the rollup's merge from them cost O(samples) instead of a walk over every bucket.
   */
  raw: Map<LatencyMetric, number[] | null>;
}

/** The rollup span for a window length: `spanMs` (an hour) rounded to a whole number of windows. */
export function rollupSpanMs(windowMs: number, spanMs = 3_600_000): number {
  return Math.max(1, Math.round(spanMs / windowMs)) * windowMs;
}

/** Recorded values kept per metric and window, at most. */
const RAW_MAX = 4096;

interface OpenRollup extends Open {
  windows: number;
  lastWindow: number;
}

function emptyLoad(node: string, windowStart: number, part: number, windowMs: number): LoadWindow {
  return { node, windowStart, part, windowMs, attempts: 0, ok: 0, failed: 0, cancelled: 0, retries: 0, finalOk: 0, finalFailed: 0, outcomes: {}, outputTokens: 0, tokensFromUsage: 0, tokensFromChunks: 0, scheduleMisses: 0, planned: 0 };
}

const COUNTERS = ['attempts', 'ok', 'failed', 'cancelled', 'retries', 'finalOk', 'finalFailed', 'outputTokens', 'tokensFromUsage', 'tokensFromChunks', 'scheduleMisses', 'planned'] as const;

function latencyOf(o: Open): LatencyWindow[] {
  return [...o.hists].map(([metric, h]) => ({ node: o.load.node, windowStart: o.load.windowStart, part: o.load.part, metric, ...summarizeHistogram(h, o.sums.get(metric) ?? 0, o.raw.get(metric) ?? null) }));
}

export class WindowAggregator {
  private readonly open = new Map<string, Open>();
  /** How many parts of each recently closed window were handed on (so a late sample makes the next part). */
  private readonly closedParts = new Map<string, { start: number; parts: number }>();
  /** Each node's rollup of the current span. */
  private readonly rollups = new Map<string, OpenRollup>();
  /** How many parts of each recent rollup span were handed on. */
  private readonly rolledParts = new Map<string, { start: number; parts: number }>();
  readonly rollupMs: number;

  constructor(
    readonly windowMs: number,
    private origin: number,
    private readonly emit: (closed: Closed) => void,
    /** False when the engine cannot know scheduled send times (k6): no "from scheduled" views then. */
    private readonly scheduleKnown = true,
    /** The rollup span: an hour of plan time by default; a whole number of windows. */
    rollupMs = 3_600_000,
    /**
     * A run taken up after a crash: its parts are numbered from partBase (the killed process
     * wrote parts from 0), and spans that began before rollupFrom are not rolled up (the killed
     * process wrote their first windows, never their rollup: a report reads those windows).
     */
    private readonly resumed: { partBase: number; rollupFrom: number } | null = null,
  ) {
    this.rollupMs = rollupSpanMs(windowMs, rollupMs);
  }

  /**
   * Moves the windows' origin to when the load really began (k6 starts a moment after it is
   * launched). Only before anything was recorded: windows already open keep their bounds.
   */
  rebase(origin: number): void {
    if (this.open.size === 0 && this.closedParts.size === 0 && this.rollups.size === 0) this.origin = origin;
  }

  private windowStart(t: number): number {
    return this.origin + Math.floor((t - this.origin) / this.windowMs) * this.windowMs;
  }

  private get(node: string, t: number): Open {
    const start = this.windowStart(t);
    const key = `${node}\u0000${start}`;
    let w = this.open.get(key);
    if (!w) {
      w = { load: emptyLoad(node, start, this.closedParts.get(key)?.parts ?? this.resumed?.partBase ?? 0, this.windowMs), hists: new Map(), sums: new Map(), raw: new Map() };
      this.open.set(key, w);
    }
    return w;
  }

  private add(w: Open, metric: LatencyMetric, ms: number | null): void {
    if (ms === null || !Number.isFinite(ms)) return;
    let h = w.hists.get(metric);
    if (!h) w.hists.set(metric, (h = takeHistogram()));
    const us = toUs(ms);
    // the value as recorded (clamped to 1 µs … 1 h): the mean agrees with min and max
    w.sums.set(metric, (w.sums.get(metric) ?? 0) + us / 1000);
    const raw = w.raw.get(metric);
    if (raw === undefined) w.raw.set(metric, [us]);
    else if (raw !== null) {
      if (raw.length < RAW_MAX) raw.push(us);
      else w.raw.set(metric, null);
    }
    h.recordValue(us);
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

  /** Hands on every open window and every rollup (at the end of the run). */
  flush(): void {
    const all = [...this.open.values()].sort((a, b) => a.load.windowStart - b.load.windowStart);
    this.open.clear();
    for (const w of all) this.close(w);
    const rest = [...this.rollups.values()].map((r) => this.finish(r));
    this.rollups.clear();
    if (rest.length > 0) this.emit({ window: null, rollups: rest });
  }

  private close(w: Open): void {
    const key = `${w.load.node}\u0000${w.load.windowStart}`;
    this.closedParts.set(key, { start: w.load.windowStart, parts: w.load.part + 1 });
    // Remember closed windows for an hour of run time: later than that nothing arrives.
    for (const [k, v] of this.closedParts) if (v.start < w.load.windowStart - 3_600_000) this.closedParts.delete(k);
    const latency = latencyOf(w);
    const rollups = this.rollUp(w);
    for (const h of w.hists.values()) returnHistogram(h);
    this.emit({ window: { load: w.load, latency }, rollups });
  }

  private spanStart(t: number): number {
    return this.origin + Math.floor((t - this.origin) / this.rollupMs) * this.rollupMs;
  }

  /**
   * Merges a closed window into its node's rollup; returns the rollups it finished. A late part
   * of a span already handed on becomes a rollup part of its own, handed on with it.
   */
  private rollUp(w: Open): Rollup[] {
    const node = w.load.node;
    const span = this.spanStart(w.load.windowStart);
    if (this.resumed && span < this.resumed.rollupFrom) return [];
    let r = this.rollups.get(node);
    if (r?.load.windowStart === span) {
      this.merge(r, w);
      return [];
    }
    const late = (r !== undefined && span < r.load.windowStart) || this.rolledParts.has(`${node}\u0000${span}`);
    if (late) {
      const part = this.newRollup(node, span);
      this.merge(part, w);
      return [this.finish(part)];
    }
    const out = r ? [this.finish(r)] : [];
    r = this.newRollup(node, span);
    this.rollups.set(node, r);
    this.merge(r, w);
    return out;
  }

  private newRollup(node: string, span: number): OpenRollup {
    return { load: emptyLoad(node, span, this.rolledParts.get(`${node}\u0000${span}`)?.parts ?? this.resumed?.partBase ?? 0, this.rollupMs), hists: new Map(), sums: new Map(), raw: new Map(), windows: 0, lastWindow: span };
  }

  private merge(r: OpenRollup, w: Open): void {
    for (const c of COUNTERS) r.load[c] += w.load[c];
    for (const [k, v] of Object.entries(w.load.outcomes)) r.load.outcomes[k] = (r.load.outcomes[k] ?? 0) + v;
    for (const [metric, h] of w.hists) {
      let t = r.hists.get(metric);
      if (!t) r.hists.set(metric, (t = takeHistogram()));
      const raw = w.raw.get(metric);
      if (raw) for (const v of raw) t.recordValue(v);
      else t.add(h);
      r.sums.set(metric, (r.sums.get(metric) ?? 0) + (w.sums.get(metric) ?? 0));
    }
    r.windows++;
    r.lastWindow = Math.max(r.lastWindow, w.load.windowStart);
  }

  private finish(r: OpenRollup): Rollup {
    this.rolledParts.set(`${r.load.node}\u0000${r.load.windowStart}`, { start: r.load.windowStart, parts: r.load.part + 1 });
    for (const [k, v] of this.rolledParts) if (v.start < r.load.windowStart - Math.max(2 * this.rollupMs, 3_600_000)) this.rolledParts.delete(k);
    const latency = latencyOf(r);
    for (const h of r.hists.values()) returnHistogram(h);
    return { load: r.load, latency, windows: r.windows, lastWindow: r.lastWindow };
  }
}
