// Is the load generator keeping up? A generator that falls behind sends late (or not at all)
// and reads responses late, and then the latency it reports is its own, not the server's.
// Signals, per load window:
//   - arrivals it could not start (schedule misses: k6's dropped_iterations, builtin's slot misses);
//   - how late it sent against its schedule (queue delay: builtin, and k6 through Gauntlet's
//     scenario, which times each iteration's start against k6's own arrival schedule);
//   - this process's event-loop lag (it runs the builtin engine and reads k6's output), sampled
//     every second as telemetry of the pseudo-node "_gauntlet", with the k6 process's CPU;
//   - k6 using most of the CPU it may use: its VUs then handle SSE events late and back to back,
//     so ttft reads high and ITL collapses before any arrival starts late (bench/RESULTS.md:
//     pinned to one core, k6 at 250/s used 0.81 of it and read ttft 27 % high, at 300/s 0.92
//     and 110 % high, with queue delay p99 still under 100 ms).
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { LatencyWindowRow, LoadWindowRow, TelemetryRow } from '../store/types.js';

/** The pseudo-node Gauntlet's own telemetry is stored under. */
export const GENERATOR_NODE = '_gauntlet';

/** A window is behind when its queue delay p99 is over this (ms)… */
export const QUEUE_DELAY_LIMIT_MS = 100;
/** …or this process's event loop lagged more than this at p99 in it (ms)… */
export const LOOP_LAG_LIMIT_MS = 100;
/** …or k6 used at least this share of the CPU it may use (its affinity), on average in it… */
export const K6_CPU_SHARE_LIMIT = 0.8;
/** …or any arrival in it was not started (a schedule miss). */

/** CPU time of a process (user + system), seconds, from /proc; null where there is no /proc. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
    return Number.isFinite(ticks) ? ticks / 100 : null; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** How many cores a process may run on (its affinity, Cpus_allowed_list); null where there is no /proc. */
export function processAllowedCores(pid: number): number | null {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (!m) return null;
    let n = 0;
    for (const part of (m[1] as string).split(',')) {
      const [a, b] = part.split('-').map(Number);
      n += b === undefined ? 1 : (b as number) - (a as number) + 1;
    }
    return n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** Samples this process's event-loop lag, and a child process's CPU, every interval. */
export class GeneratorMonitor {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private timer: NodeJS.Timeout | null = null;
  private last: { at: number; cpu: number | null; pid: number | null; allowed: number | null } | null = null;

  constructor(
    private readonly emit: (r: Omit<TelemetryRow, 'run_id'>) => void,
    private readonly now: () => number,
    /** The k6 process, while it runs (null: none). */
    private readonly childPid: () => number | null = () => null,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.h.enable();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const at = this.now();
    // The histogram is in ns; monitorEventLoopDelay counts the delay beyond its resolution.
    if (this.h.count > 0) {
      this.emit({ node: GENERATOR_NODE, at, metric: 'loop_lag_p99_ms', value: this.h.percentile(99) / 1e6 });
      this.emit({ node: GENERATOR_NODE, at, metric: 'loop_lag_max_ms', value: this.h.max / 1e6 });
    }
    this.h.reset();
    const pid = this.childPid();
    const cpu = pid !== null ? processCpuSeconds(pid) : null;
    if (cpu !== null && this.last?.cpu != null && this.last.pid === pid && at > this.last.at) {
      const cores = (cpu - this.last.cpu) / ((at - this.last.at) / 1000);
      this.emit({ node: GENERATOR_NODE, at, metric: 'k6_cpu_cores', value: cores });
      const allowed = Math.min(cpus().length, this.last.allowed ?? cpus().length);
      this.emit({ node: GENERATOR_NODE, at, metric: 'k6_cpu_share', value: cores / allowed });
    }
    this.last = { at, cpu, pid, allowed: pid !== null ? (this.last?.pid === pid ? this.last.allowed : processAllowedCores(pid)) : null };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.h.disable();
  }
}

export interface BehindSpan {
  from: number;
  to: number;
  why: string[];
}

export interface GeneratorVerdict {
  /** Load time in windows where the generator was behind, ms. */
  behindMs: number;
  /** behindMs over the load's duration. */
  behindShare: number;
  /** The plan's limit on that share. */
  limitShare: number;
  /** Kept up: behindShare within the limit. */
  keptUp: boolean;
  spans: BehindSpan[];
  /** The cores k6 used, at most (null: not k6, or no /proc). */
  k6CpuMaxCores: number | null;
  cores: number;
}

/**
 * Judges each load window (all nodes together: one generator) from what the store holds:
 * schedule misses and queue delay p99 per node window, and the generator's loop lag.
 */
export function judgeGenerator(input: {
  loadStartedAt: number;
  loadEndedAt: number;
  windowMs: number;
  loadWindows: readonly LoadWindowRow[];
  queueWindows: readonly LatencyWindowRow[];
  telemetry: readonly TelemetryRow[];
  limitShare: number;
}): GeneratorVerdict {
  const why = new Map<number, Set<string>>();
  const mark = (start: number, reason: string): void => {
    let s = why.get(start);
    if (!s) why.set(start, (s = new Set()));
    s.add(reason);
  };
  const startOf = (t: number): number => input.loadStartedAt + Math.floor((t - input.loadStartedAt) / input.windowMs) * input.windowMs;
  for (const w of input.loadWindows) if (w.schedule_misses > 0) mark(w.window_start, `${w.node}: ${w.schedule_misses} arrivals not started`);
  for (const w of input.queueWindows) if (w.p99_ms > QUEUE_DELAY_LIMIT_MS) mark(w.window_start, `${w.node}: sends up to ${w.p99_ms.toFixed(0)} ms late (queue delay p99)`);
  for (const t of input.telemetry) {
    if (t.metric === 'loop_lag_p99_ms' && t.value > LOOP_LAG_LIMIT_MS && t.at >= input.loadStartedAt && t.at <= input.loadEndedAt + 1000) {
      mark(startOf(Math.min(t.at, input.loadEndedAt - 1)), `Gauntlet's event loop lagged ${t.value.toFixed(0)} ms (p99 over a second)`);
    }
  }
  // k6's CPU share, averaged per window.
  const share = new Map<number, { sum: number; n: number }>();
  for (const t of input.telemetry) {
    if (t.metric !== 'k6_cpu_share' || t.at < input.loadStartedAt || t.at > input.loadEndedAt + 1000) continue;
    const start = startOf(Math.min(t.at, input.loadEndedAt - 1));
    const a = share.get(start) ?? { sum: 0, n: 0 };
    a.sum += t.value;
    a.n++;
    share.set(start, a);
  }
  for (const [start, a] of share) {
    const mean = a.sum / a.n;
    if (mean >= K6_CPU_SHARE_LIMIT) mark(start, `k6 used ${(mean * 100).toFixed(0)} % of the CPU it may use: it handles stream events late (ttft reads high)`);
  }
  const duration = Math.max(1, input.loadEndedAt - input.loadStartedAt);
  const spans: BehindSpan[] = [...why.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([start, reasons]) => ({ from: Math.max(start, input.loadStartedAt), to: Math.min(start + input.windowMs, input.loadEndedAt), why: [...reasons].slice(0, 6) }))
    .filter((s) => s.to > s.from);
  const behindMs = spans.reduce((a, s) => a + (s.to - s.from), 0);
  const k6 = input.telemetry.filter((t) => t.metric === 'k6_cpu_cores').map((t) => t.value);
  return {
    behindMs,
    behindShare: behindMs / duration,
    limitShare: input.limitShare,
    keptUp: behindMs / duration <= input.limitShare,
    spans,
    k6CpuMaxCores: k6.length > 0 ? Math.max(...k6) : null,
    cores: cpus().length,
  };
}
