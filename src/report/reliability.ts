// The release decision's numbers beyond the point figures: MTBF bounds at each confidence with
// what it would take to show the target, where the run stands in the sequential test
// (MIL-HDBK-781 PRST), trend tests on failures and on softer events (is the fleet getting worse
// as it runs?), recovery per fault kind and per node with bootstrap intervals, throughput.
// Reads the store, never writes it; the statistics are the pure functions of src/analysis.
import { estimateMtbf } from '../analysis/mtbf.js';
import { countsForMtbf, failureNodeHours as failureNodeHoursOf, type EpisodeNumbers, type ExposureInput } from '../analysis/run-summary.js';
import { planSequentialTest, sequentialAnswer, sprtEvaluate } from '../analysis/sprt.js';
import { bootstrapPercentile, percentileSorted } from '../analysis/stats.js';
import { crowAmsaa, laplaceTest, type NodeEvents } from '../analysis/trend.js';
import type { Plan, PlanSequential } from '../plan/schema.js';
import type { Store } from '../store/store.js';

const HOUR = 3_600_000;
const r1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);
const r4 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10_000) / 10_000);
const rs = (x: number | null): number | null => (x === null ? null : Number(x.toPrecision(6)));

export const DEFAULT_SEQUENTIAL: PlanSequential = { discrimination: 2, alpha: 0.1, beta: 0.1, stop_early: false };
/** The confidences every report states the MTBF bound at, with the plan's own. */
export const REPORT_CONFIDENCES = [0.8, 0.9] as const;

export interface TrendJson {
  /** What the events are. */
  what: string;
  events: number;
  /** Laplace's U (N(0,1) with no trend) and its one-sided p-value against "getting worse". */
  laplace_u: number | null;
  laplace_p_worse: number | null;
  /** Crow-AMSAA (power-law) shape β with its 90 % interval: > 1 events come faster as the run goes. */
  crow_amsaa_beta: number | null;
  crow_amsaa_beta_interval: [number, number] | null;
  /** β's interval wholly above 1, or Laplace's p under 0.05: the events accelerate. */
  worsening: boolean;
  /** Each event: node and hours from the load's start. */
  times: { node: string; hours: number }[];
}

export interface ReliabilityJson {
  mtbf_bounds: { confidence: number; lower_bound_hours: number; interval_hours: [number, number | null]; demonstrated: boolean; more_node_hours_needed: number; more_node_hours_needed_with_failures: { failures: number; node_hours: number }[] }[];
  sequential: {
    plan: string | null;
    theta0_hours: number;
    theta1_hours: number;
    discrimination: number;
    alpha: number;
    beta: number;
    stop_early: boolean;
    /** failures = reject_intercept + slope × node-hours (reject line), accept_intercept + slope × node-hours (accept line). */
    lines: { slope_per_node_hour: number; reject_intercept: number; accept_intercept: number };
    truncation: { failures: number; node_hours: number };
    /** The true risks of the truncated test (they exceed the nominal ones). */
    true_risks: { alpha: number; beta: number };
    expected_node_hours: { at_theta0: number; at_theta1: number };
    decision: 'accept' | 'reject' | 'continue';
    decided_at_node_hours: number | null;
    by: 'line' | 'truncation' | null;
    node_hours: number;
    failures: number;
    node_hours_to_accept: number;
    failures_to_reject: number;
    /** The run's path: pooled node-hours (exposure so far) at each failure counted for MTBF. */
    failure_node_hours: number[];
  };
  trend: { failures: TrendJson; soft_events: TrendJson };
  /** Recovery of recovered episodes grouped by fault kind (spontaneous for the rest) and by node; percentiles nearest-rank with 90 % bootstrap intervals. */
  recovery_by: { group: 'kind' | 'node'; key: string; count: number; p50_ms: number | null; p95_ms: number | null; p99_ms: number | null; max_ms: number | null; p50_interval_ms: [number, number] | null; p95_interval_ms: [number, number] | null }[];
  throughput: { load_seconds: number; requests_per_s: number | null; ok_per_s: number | null; output_tokens_per_s: number | null };
}

export interface ReliabilityInput {
  plan: Plan;
  exposure: ExposureInput;
  exposureNodeHours: number;
  failuresCounted: number;
  episodes: EpisodeNumbers[];
  requests: { total: number; ok: number; outputTokens: number };
}

function trendOf(what: string, events: { node: string; at: number }[], nodes: string[], loadStart: number, loadEnd: number): TrendJson {
  const spanH = (loadEnd - loadStart) / HOUR;
  const inRun = events.filter((e) => e.at > loadStart && e.at <= loadEnd).sort((a, b) => a.at - b.at);
  const times = inRun.map((e) => ({ node: e.node, hours: (e.at - loadStart) / HOUR }));
  if (!(spanH > 0)) return { what, events: times.length, laplace_u: null, laplace_p_worse: null, crow_amsaa_beta: null, crow_amsaa_beta_interval: null, worsening: false, times: [] };
  // every node under load for the whole span (a node's own exposure would need its gaps: the
  // tests pool nodes observed over the same interval)
  const perNode: NodeEvents[] = nodes.map((n) => ({ span: spanH, times: times.filter((t) => t.node === n).map((t) => t.hours) }));
  const lap = laplaceTest(perNode);
  const ca = crowAmsaa(perNode, 0.9);
  return {
    what,
    events: times.length,
    laplace_u: rs(lap.u),
    laplace_p_worse: rs(lap.pWorse),
    crow_amsaa_beta: rs(ca.beta),
    crow_amsaa_beta_interval: ca.betaInterval ? [rs(ca.betaInterval[0]) as number, rs(ca.betaInterval[1]) as number] : null,
    worsening: ca.worsening || (lap.pWorse !== null && lap.pWorse < 0.05 && times.length >= 3),
    times: times.map((t) => ({ node: t.node, hours: r4(t.hours) as number })),
  };
}

/** Nearest-rank percentiles with seeded bootstrap intervals. */
function distributionWithIntervals(values: number[]): Omit<ReliabilityJson['recovery_by'][number], 'group' | 'key'> {
  const sorted = [...values].sort((a, b) => a - b);
  const iv = (p: number): [number, number] | null => {
    const x = bootstrapPercentile(sorted, p, { confidence: 0.9, resamples: 1000, seed: 7 });
    return x ? [r1(x[0]) as number, r1(x[1]) as number] : null;
  };
  return {
    count: sorted.length,
    p50_ms: r1(percentileSorted(sorted, 50)),
    p95_ms: r1(percentileSorted(sorted, 95)),
    p99_ms: r1(percentileSorted(sorted, 99)),
    max_ms: r1(sorted.at(-1) ?? null),
    p50_interval_ms: iv(50),
    p95_interval_ms: iv(95),
  };
}

export function reliability(store: Store, runId: string, x: ReliabilityInput): ReliabilityJson {
  const { plan } = x;
  const { loadStartedAt: loadStart, loadEndedAt: loadEnd, nodes } = x.exposure;
  const target = plan.mtbf_target / HOUR;
  const T = x.exposureNodeHours;
  const r = x.failuresCounted;

  const confidences = [...new Set([...REPORT_CONFIDENCES, plan.confidence])].sort((a, b) => a - b);
  const mtbf_bounds = confidences.map((c) => {
    const e = estimateMtbf(T, r, c, target);
    return {
      confidence: c,
      lower_bound_hours: rs(e.lower_bound_hours) as number,
      interval_hours: [rs(e.interval_hours[0]) as number, rs(e.interval_hours[1])] as [number, number | null],
      demonstrated: e.demonstrated,
      more_node_hours_needed: rs(e.more_node_hours_needed) as number,
      more_node_hours_needed_with_failures: [1, 2].map((k) => ({ failures: r + k, node_hours: rs(Math.max(0, estimateMtbf(T, r + k, c, target).node_hours_needed - T)) as number })),
    };
  });

  // Failures counted for MTBF, at their start, and the pooled node-hours (exposure) by then
  const counted = x.episodes.filter(countsForMtbf).sort((a, b) => a.startedAt - b.startedAt);
  const span = loadEnd - loadStart;
  const failureNodeHours = failureNodeHoursOf(x.exposure);
  const seq = plan.sequential ?? DEFAULT_SEQUENTIAL;
  const answer = sequentialAnswer({ name: seq.mil_plan ?? null, theta0Hours: target, theta1Hours: target / seq.discrimination, alpha: seq.alpha, beta: seq.beta });
  const state = sprtEvaluate(planSequentialTest(seq, target), failureNodeHours, T);
  const sequential: ReliabilityJson['sequential'] = {
    plan: answer.plan,
    theta0_hours: answer.theta0Hours,
    theta1_hours: rs(answer.theta1Hours) as number,
    discrimination: answer.discrimination,
    alpha: seq.alpha,
    beta: seq.beta,
    stop_early: seq.stop_early,
    lines: { slope_per_node_hour: rs(answer.lines.slopePerNodeHour) as number, reject_intercept: rs(answer.lines.rejectIntercept) as number, accept_intercept: rs(answer.lines.acceptIntercept) as number },
    truncation: { failures: answer.truncation.failures, node_hours: rs(answer.truncation.nodeHours) as number },
    true_risks: { alpha: rs(answer.trueRisks.alpha) as number, beta: rs(answer.trueRisks.beta) as number },
    expected_node_hours: { at_theta0: rs(answer.expectedNodeHours.atTheta0) as number, at_theta1: rs(answer.expectedNodeHours.atTheta1) as number },
    decision: state.decision,
    decided_at_node_hours: state.decision === 'continue' ? null : rs(state.atNodeHours),
    by: state.by,
    node_hours: rs(T) as number,
    failures: failureNodeHours.length,
    node_hours_to_accept: rs(state.nodeHoursToAccept) as number,
    failures_to_reject: state.failuresToReject,
    failure_node_hours: failureNodeHours.map((h) => rs(h) as number),
  };

  // Softer events: every episode that was not a fault's (nor Gauntlet's own blindness) doing,
  // and every spell of `degraded` (serving slower than twice
  // the baseline or with errors below the episode threshold) outside a fault's window.
  const faults = store.faults(runId);
  const faultSpans = faults.flatMap((f) => (f.injected_at === null ? [] : [{ node: f.node, from: f.injected_at, to: (f.reverted_at ?? loadEnd) + plan.detection.fault_grace }]));
  const inFault = (node: string, at: number): boolean => faultSpans.some((s) => s.node === node && at >= s.from && at <= s.to);
  const degradedStarts: { node: string; at: number }[] = [];
  const prev = new Map<string, string>();
  for (const st of store.nodeStates(runId)) {
    if (st.state === 'degraded' && prev.get(st.node) !== 'degraded' && !inFault(st.node, st.at)) degradedStarts.push({ node: st.node, at: st.at });
    prev.set(st.node, st.state);
  }
  const soft = [...x.episodes.filter((e) => !e.cause.startsWith('injected') && e.cause !== 'orchestrator').map((e) => ({ node: e.node, at: e.startedAt })), ...degradedStarts];
  const trend = {
    failures: trendOf('failures counted for MTBF (spontaneous and failed recoveries), at their start', counted.map((e) => ({ node: e.node, at: e.startedAt })), nodes, loadStart, loadEnd),
    soft_events: trendOf('softer events: episodes not caused by a fault, and each start of a degraded spell (slow or erring below the episode threshold) outside fault windows', soft, nodes, loadStart, loadEnd),
  };

  const kindOf = new Map(faults.map((f) => [f.id, f.kind]));
  const recovered = x.episodes.filter((e) => e.recoveryMs !== null && e.cause !== 'orchestrator');
  const groups = new Map<string, number[]>();
  const add = (k: string, v: number): void => void (groups.get(k) ?? groups.set(k, []).get(k))?.push(v);
  for (const e of recovered) {
    add(`kind\u0000${e.faultId ? (kindOf.get(e.faultId) ?? 'injected') : e.cause}`, e.recoveryMs as number);
    add(`node\u0000${e.node}`, e.recoveryMs as number);
  }
  const recovery_by = [...groups.entries()]
    .map(([k, v]) => {
      const [group, key] = k.split('\u0000') as ['kind' | 'node', string];
      return { group, key, ...distributionWithIntervals(v) };
    })
    .sort((a, b) => a.group.localeCompare(b.group) || a.key.localeCompare(b.key));

  const seconds = span / 1000;
  const per = (n: number): number | null => (seconds > 0 ? rs(n / seconds) : null);
  return {
    mtbf_bounds,
    sequential,
    trend,
    recovery_by,
    throughput: { load_seconds: rs(seconds) as number, requests_per_s: per(x.requests.total), ok_per_s: per(x.requests.ok), output_tokens_per_s: per(x.requests.outputTokens) },
  };
}
