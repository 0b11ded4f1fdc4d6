// The generator verdict (see src/load/generator.ts for the signals): pure, rows in, spans out.
// The report reads only the windows that show a signal (schedule misses, a queue delay p99
// over the limit, a lagging loop, k6 busy), so judging a 72 h run does not read every window.
import { cpus } from 'node:os';

/** The pseudo-node Gauntlet's own telemetry is stored under. */
export const GENERATOR_NODE = '_gauntlet';

/**
 * Where a load generator's own telemetry is stored: Gauntlet's process and a single k6 under
 * GENERATOR_NODE, each of several (builtin-2, k6-3) under GENERATOR_NODE:<name>.
 */
export function generatorNode(name: string): string {
  return name === 'k6' || name === 'gauntlet' ? GENERATOR_NODE : `${GENERATOR_NODE}:${name}`;
}

/** The generator a telemetry node belongs to (generatorNode's inverse). */
export function generatorName(node: string): string {
  return node.startsWith(`${GENERATOR_NODE}:`) ? node.slice(GENERATOR_NODE.length + 1) : 'gauntlet';
}

/** A window is behind when its queue delay p99 is over this (ms)… */
export const QUEUE_DELAY_LIMIT_MS = 100;
/** …or this process's event loop lagged more than this at p99 in it (ms)… */
export const LOOP_LAG_LIMIT_MS = 100;
/** …or k6 used at least this share of the CPU it may use (its affinity), on average in it… */
export const K6_CPU_SHARE_LIMIT = 0.8;
/** …or any arrival in it was not started (a schedule miss). */

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
  loadWindows: readonly { node: string; window_start: number; schedule_misses: number }[];
  queueWindows: readonly { node: string; window_start: number; p99_ms: number }[];
  /** Telemetry of every generator (node: generatorNode of its name; absent: GENERATOR_NODE). */
  telemetry: readonly { at: number; metric: string; value: number; node?: string }[];
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
      const who = t.node === undefined || t.node === GENERATOR_NODE ? "Gauntlet's event loop" : `${generatorName(t.node)}'s event loop`;
      mark(startOf(Math.min(t.at, input.loadEndedAt - 1)), `${who} lagged ${t.value.toFixed(0)} ms (p99 over a second)`);
    }
  }
  // Each k6 process's CPU share, averaged per window.
  const share = new Map<string, { start: number; node: string; sum: number; n: number }>();
  for (const t of input.telemetry) {
    if (t.metric !== 'k6_cpu_share' || t.at < input.loadStartedAt || t.at > input.loadEndedAt + 1000) continue;
    const start = startOf(Math.min(t.at, input.loadEndedAt - 1));
    const node = t.node ?? GENERATOR_NODE;
    const key = `${node} ${start}`;
    const a = share.get(key) ?? { start, node, sum: 0, n: 0 };
    a.sum += t.value;
    a.n++;
    share.set(key, a);
  }
  for (const a of share.values()) {
    const mean = a.sum / a.n;
    const who = a.node === GENERATOR_NODE ? 'k6' : generatorName(a.node);
    if (mean >= K6_CPU_SHARE_LIMIT) mark(a.start, `${who} used ${(mean * 100).toFixed(0)} % of the CPU it may use: it handles stream events late (ttft reads high)`);
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
