// The numbers of one run, from its rows. Pure: rows in, numbers out (DESIGN.md, Definitions
// and Statistics). Exposure = Σ node time under load − injected failure episodes; MTBF counts
// spontaneous failures and failed recoveries only; injected faults measure recovery.
// Request counts and latency come from the per-window counters and histograms (always kept);
// per-request rows, when the run kept them, add the error rate outside injected episodes.
import { LATENCY_METRICS, mergeHistograms, type LatencyMetric } from './histogram.js';
import type { EpisodeRow, LatencyWindowRow, LoadWindowRow, NodeStateRow, ProbeRow } from '../store/types.js';
import { estimateMtbf, type MtbfEstimate } from './mtbf.js';
import { distribution, wilsonInterval, type Distribution } from './stats.js';

export interface RunInput {
  loadStartedAt: number;
  loadEndedAt: number;
  nodes: string[];
  confidence: number;
  mtbfTargetHours: number;
  episodes: EpisodeRow[];
  /** Health probes as rows, or already reduced (store.probeSlots: a long run's report). */
  probes: ProbeRow[] | { slots: ProbeSlots[] };
  /** The plan's normal health-probe period: the most time one probe stands for. */
  probeIntervalMs: number;
  /** Node state changes (busy spans count as available). */
  states: NodeStateRow[];
  loadWindows: LoadWindowRow[];
  latencyWindows: LatencyWindowRow[];
  /** Spans when Gauntlet had lost its view of these nodes (the Docker engine lost): out of exposure. */
  blindSpans?: { from: number; to: number; nodes: string[] }[];
  /** Spans when Gauntlet itself was down (killed, then its run taken up by a restarted daemon): out of exposure. */
  downSpans?: { from: number; to: number; nodes: string[] }[];
  /** Episodes left open by a killed Gauntlet, and where its record of them stops (their end was never seen). */
  cutOff?: Map<string, number>;
  /** Attempts that did not overlap an injected episode, and their failures (store.countOutsideInjected); null without per-request rows. */
  outsideInjected: { total: number; failed: number } | null;
}

export interface LatencySummary {
  count: number;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

export interface EpisodeNumbers {
  id: string;
  node: string;
  cause: string;
  faultId: string | null;
  status: string;
  startedAt: number;
  detectedMs: number;
  /** Failure start → container running again (null when it never stopped or never came back). */
  restartMs: number | null;
  /** Container running again (or start) → serving again. */
  readyMs: number | null;
  /** Failure start → serving again (null while not recovered). */
  recoveryMs: number | null;
  requestsAffected: number;
}

export interface RunSummary {
  exposureNodeHours: number;
  perNodeExposureHours: Record<string, number>;
  /** orchestrator: episodes while Gauntlet had lost the Docker engine (neither the node's fault nor a fault's). */
  failures: { spontaneous: number; injected: number; orchestrator: number; recoveryFailed: number; countedForMtbf: number };
  /** Time Gauntlet could not see the nodes, summed over nodes (ms). */
  blindMs: number;
  /** Time Gauntlet was down (killed until a daemon took the run up), summed over nodes (ms). */
  downMs: number;
  mtbf: MtbfEstimate;
  recovery: Distribution & { detect: Distribution; restart: Distribution; ready: Distribution };
  /**
   * Time-weighted: each health probe stands for the time until the next one (at most one normal
   * interval), so the fast pace during a fault does not weigh its failures more. It counts as
   * available when answered 2xx within that slot, or when it failed while the node was busy
   * (serving, health endpoint overwhelmed). `ok` counts the probes answered in time.
   */
  availability: { value: number | null; probes: number; ok: number; busy: number; perNode: Record<string, number | null> };
  requests: {
    /** Attempts: what the servers saw (retries included). */
    total: number;
    ok: number;
    failed: number;
    cancelled: number;
    errorRate: number | null;
    errorRateInterval: [number, number] | null;
    /** Null when per-request rows were not kept. */
    outsideInjected: { total: number; failed: number; errorRate: number | null } | null;
    outcomes: Record<string, number>;
    tokensFromUsage: number;
    tokensFromChunks: number;
    outputTokens: number;
    /** The client's view with its retry policy: the final attempt of each request. */
    client: { total: number; failed: number; errorRate: number | null; retries: number };
    scheduleMisses: number;
    /**
     * Every planned arrival accounted for: planned = sent + missed + interrupted + cancelled.
     * sent: requests whose final outcome was recorded; missed: never sent (schedule misses);
     * cancelled: sent, then abandoned (Ctrl-C); interrupted: the rest — started but never
     * reported (k6 iterations cut at the end; builtin retries waiting at Ctrl-C). Null for runs
     * recorded before the schedule's count was kept.
     */
    accounting: { planned: number; sent: number; missed: number; cancelled: number; interrupted: number } | null;
  };
  /** ttft, itl, tpot, e2e from actual sends; ttft_sched, e2e_sched from scheduled sends; queue_delay. */
  latency: Record<LatencyMetric, LatencySummary>;
  episodes: EpisodeNumbers[];
}

const HOUR = 3_600_000;

/** Length of the union of intervals, clipped to [t0, t1]: overlapping exclusions count once. */
function unionLength(spans: { from: number; to: number }[], t0: number, t1: number): number {
  const clipped = spans.map((w) => [Math.max(t0, w.from), Math.min(t1, w.to)] as const).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let end = Number.NEGATIVE_INFINITY;
  for (const [a, b] of clipped) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

export type ExposureInput = Pick<RunInput, 'loadStartedAt' | 'loadEndedAt' | 'nodes' | 'episodes' | 'blindSpans' | 'downSpans' | 'cutOff'>;

/**
 * Exposure (DESIGN.md): per node, time under load from loadStartedAt to loadEndedAt less every
 * episode not spontaneous (injected, orchestrator), Gauntlet's blindness and its downtime, each
 * stretch counted once. With loadEndedAt earlier than the load's end it is the exposure so far:
 * what the sequential test reads at each failure and while the run goes on.
 */
export function exposure(input: ExposureInput): { perNode: Record<string, number>; nodeHours: number; blindMs: number; downMs: number } {
  const { loadStartedAt: t0, loadEndedAt: t1 } = input;
  const window = Math.max(0, t1 - t0);
  const injectedWindows = input.episodes.filter((e) => e.cause !== 'spontaneous').map((e) => ({ node: e.node, from: e.started_at, to: e.serving_again_at ?? input.cutOff?.get(e.id) ?? t1 }));
  const perNode: Record<string, number> = {};
  let blindMs = 0;
  let downMs = 0;
  for (const node of input.nodes) {
    const blindSpans = (input.blindSpans ?? []).filter((b) => b.nodes.includes(node));
    const downSpans = (input.downSpans ?? []).filter((b) => b.nodes.includes(node));
    blindMs += unionLength(blindSpans, t0, t1);
    downMs += unionLength(downSpans, t0, t1);
    const lost = unionLength([...injectedWindows.filter((w) => w.node === node), ...blindSpans, ...downSpans], t0, t1);
    perNode[node] = Math.max(0, window - lost) / HOUR;
  }
  return { perNode, nodeHours: Object.values(perNode).reduce((a, b) => a + b, 0), blindMs, downMs };
}

/** What MTBF counts: spontaneous failures, and injected faults a node never recovered from (not those begun while Gauntlet could not see). */
export function countsForMtbf(e: { cause: string; status: string }): boolean {
  return e.cause === 'spontaneous' || (e.status === 'recovery_failed' && e.cause.startsWith('injected:'));
}

/** The pooled node-hours at each failure MTBF counts, in order: the sequential test's path. */
export function failureNodeHours(input: ExposureInput): number[] {
  return input.episodes
    .filter(countsForMtbf)
    .map((e) => e.started_at)
    .filter((at) => at >= input.loadStartedAt && at <= input.loadEndedAt)
    .sort((a, b) => a - b)
    .map((at) => exposure({ ...input, loadEndedAt: at }).nodeHours);
}

export function summarizeRun(input: RunInput): RunSummary {
  const { loadEndedAt: t1 } = input;
  const { perNode, nodeHours: exposureTotal, blindMs, downMs } = exposure(input);

  const spontaneous = input.episodes.filter((e) => e.cause === 'spontaneous').length;
  const orchestrator = input.episodes.filter((e) => e.cause === 'orchestrator').length;
  const injected = input.episodes.length - spontaneous - orchestrator;
  const recoveryFailed = input.episodes.filter((e) => e.status === 'recovery_failed').length;
  // An injected fault the node never recovered from is a failure of the node; one that began
  // while Gauntlet could not see is not.
  const counted = input.episodes.filter(countsForMtbf).length;

  const episodes: EpisodeNumbers[] = input.episodes.map((e) => ({
    id: e.id,
    node: e.node,
    cause: e.cause,
    faultId: e.fault_id,
    status: e.status,
    startedAt: e.started_at,
    detectedMs: e.detected_at - e.started_at,
    restartMs: e.running_again_at !== null ? e.running_again_at - e.started_at : null,
    readyMs: e.serving_again_at !== null ? e.serving_again_at - (e.running_again_at ?? e.started_at) : null,
    recoveryMs: e.serving_again_at !== null ? e.serving_again_at - e.started_at : null,
    requestsAffected: e.requests_affected,
  }));
  const recovered = episodes.filter((e) => e.recoveryMs !== null);

  const slots = 'slots' in input.probes ? input.probes.slots : probeSlots(input.probes, input.nodes, input.probeIntervalMs, t1);
  const avail = availabilityFromSlots(slots, input.states);

  const w = input.loadWindows;
  const sum = (f: (x: LoadWindowRow) => number): number => w.reduce((a, x) => a + f(x), 0);
  const outcomes: Record<string, number> = {};
  for (const x of w) for (const [k, v] of Object.entries(JSON.parse(x.outcomes) as Record<string, number>)) outcomes[k] = (outcomes[k] ?? 0) + v;
  const attempts = sum((x) => x.attempts);
  const failed = sum((x) => x.failed);
  const clientTotal = sum((x) => x.final_ok + x.final_failed);
  const clientFailed = sum((x) => x.final_failed);

  const o = input.outsideInjected;
  const outsideInjected: RunSummary['requests']['outsideInjected'] = o ? { ...o, errorRate: o.total ? o.failed / o.total : null } : null;

  const latency = {} as Record<LatencyMetric, LatencySummary>;
  for (const metric of LATENCY_METRICS) {
    const m = mergeHistograms(input.latencyWindows.filter((x) => x.metric === metric).map((x) => x.hist));
    latency[metric] = { count: m.count, p50: m.percentile(50), p90: m.percentile(90), p95: m.percentile(95), p99: m.percentile(99), max: m.max, mean: m.mean };
  }

  return {
    exposureNodeHours: exposureTotal,
    perNodeExposureHours: perNode,
    failures: { spontaneous, injected, orchestrator, recoveryFailed, countedForMtbf: counted },
    blindMs,
    downMs,
    mtbf: estimateMtbf(exposureTotal, counted, input.confidence, input.mtbfTargetHours),
    recovery: {
      ...distribution(recovered.map((e) => e.recoveryMs as number)),
      detect: distribution(episodes.map((e) => e.detectedMs)),
      restart: distribution(recovered.filter((e) => e.restartMs !== null).map((e) => e.restartMs as number)),
      ready: distribution(recovered.map((e) => e.readyMs as number)),
    },
    availability: avail,
    requests: {
      total: attempts,
      ok: sum((x) => x.ok),
      failed,
      cancelled: sum((x) => x.cancelled),
      errorRate: attempts ? failed / attempts : null,
      errorRateInterval: attempts ? wilsonInterval(failed, attempts, 0.95) : null,
      outsideInjected,
      outcomes,
      tokensFromUsage: sum((x) => x.tokens_from_usage),
      tokensFromChunks: sum((x) => x.tokens_from_chunks),
      outputTokens: sum((x) => x.output_tokens),
      client: { total: clientTotal, failed: clientFailed, errorRate: clientTotal ? clientFailed / clientTotal : null, retries: sum((x) => x.retries) },
      scheduleMisses: sum((x) => x.schedule_misses),
      accounting: (() => {
        const planned = sum((x) => x.planned);
        if (planned === 0) return null;
        const missed = sum((x) => x.schedule_misses);
        const cancelled = sum((x) => x.cancelled);
        // Can be negative when an engine sends more than it planned: shown, never clamped.
        return { planned, sent: clientTotal, missed, cancelled, interrupted: planned - clientTotal - missed - cancelled };
      })(),
    },
    latency,
    episodes,
  };
}

/**
 * Health probes of one node reduced to what availability needs: the time they stand for (each
 * probe until the next, at most one interval), the part answered in time, and the probes that
 * were not (with their weight), which count as available only inside a busy span. The store
 * computes the same in SQL (store.probeSlots) so a long run's report does not load every probe.
 */
export interface ProbeSlots {
  node: string;
  allMs: number;
  inTimeMs: number;
  count: number;
  inTime: number;
  late: { sent_at: number; weight: number }[];
}

/** ProbeSlots from probe rows (in time order per node: sent_at, then as recorded). */
export function probeSlots(probes: ProbeRow[], nodes: string[], intervalMs: number, endAt: number): ProbeSlots[] {
  return nodes.map((node) => {
    const mine = probes.filter((p) => p.node === node && p.kind === 'health').sort((a, b) => a.sent_at - b.sent_at);
    const out: ProbeSlots = { node, allMs: 0, inTimeMs: 0, count: 0, inTime: 0, late: [] };
    for (const [i, p] of mine.entries()) {
      const next = mine[i + 1]?.sent_at ?? endAt;
      const weight = Math.max(0, Math.min(next - p.sent_at, intervalMs));
      // Answered within its own slot (before the next probe was due): the node answered then.
      // A frozen node answers a probe it had queued the moment it thaws, late: that slot was down.
      const inTime = p.ok && p.response_at !== null && p.response_at - p.sent_at <= Math.max(weight, 1);
      out.allMs += weight;
      out.count++;
      if (inTime) {
        out.inTimeMs += weight;
        out.inTime++;
      } else out.late.push({ sent_at: p.sent_at, weight });
    }
    return out;
  });
}

/** Availability from health probes, time-weighted, busy counted as available (see RunSummary). */
export function availability(probes: ProbeRow[], states: NodeStateRow[], nodes: string[], intervalMs: number, endAt: number): RunSummary['availability'] {
  return availabilityFromSlots(probeSlots(probes, nodes, intervalMs, endAt), states);
}

export function availabilityFromSlots(slots: ProbeSlots[], states: NodeStateRow[]): RunSummary['availability'] {
  let upTime = 0;
  let allTime = 0;
  let count = 0;
  let ok = 0;
  let busy = 0;
  const perNode: Record<string, number | null> = {};
  for (const slot of slots) {
    const spans = busySpans(states.filter((s) => s.node === slot.node));
    let nodeUp = slot.inTimeMs;
    for (const p of slot.late) {
      if (spans.some(([from, to]) => p.sent_at >= from && p.sent_at < to)) {
        nodeUp += p.weight;
        busy++;
      }
    }
    perNode[slot.node] = slot.allMs > 0 ? nodeUp / slot.allMs : null;
    upTime += nodeUp;
    allTime += slot.allMs;
    count += slot.count;
    ok += slot.inTime;
  }
  return { value: allTime > 0 ? upTime / allTime : null, probes: count, ok, busy, perNode };
}

function busySpans(states: NodeStateRow[]): [number, number][] {
  const sorted = [...states].sort((a, b) => a.at - b.at);
  const out: [number, number][] = [];
  for (const [i, s] of sorted.entries()) if (s.state === 'busy') out.push([s.at, sorted[i + 1]?.at ?? Number.POSITIVE_INFINITY]);
  return out;
}
