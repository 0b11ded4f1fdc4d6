// MTBF from a time-terminated test under a constant failure rate (DESIGN.md, Statistics):
// T pooled node-hours, r failures. Point estimate T/r; one-sided lower bound at confidence C
// 2T / χ²(C; 2r+2); two-sided interval from χ²(α/2; 2r) and χ²(1−α/2; 2r+2). Never an
// extrapolation without its confidence: 72 h on one node with no failure shows ≥ 44.7 h at 80 %.
import { chiSquareQuantile } from './stats.js';

export interface MtbfEstimate {
  node_hours: number;
  failures: number;
  confidence: number;
  /** T / r; null when r = 0 (no point estimate exists). */
  point_hours: number | null;
  /** One-sided lower bound at `confidence`. */
  lower_bound_hours: number;
  /** Two-sided interval at `confidence`; the upper end is null (unbounded) when r = 0. */
  interval_hours: [number, number | null];
  target_hours: number;
  /** True when the lower bound reaches the target. */
  demonstrated: boolean;
  /** Total node-hours that, with the same failure count, would demonstrate the target. */
  node_hours_needed: number;
  /** node_hours_needed − node_hours, at least 0. */
  more_node_hours_needed: number;
}

/** One-sided lower confidence bound on MTBF. */
export function mtbfLowerBound(nodeHours: number, failures: number, confidence: number): number {
  return (2 * nodeHours) / chiSquareQuantile(confidence, 2 * failures + 2);
}

export function estimateMtbf(nodeHours: number, failures: number, confidence: number, targetHours: number): MtbfEstimate {
  if (!(nodeHours >= 0)) throw new RangeError(`node-hours must be ≥ 0, got ${nodeHours}`);
  if (!Number.isInteger(failures) || failures < 0) throw new RangeError(`failures must be a non-negative integer, got ${failures}`);
  const alpha = 1 - confidence;
  const lower = mtbfLowerBound(nodeHours, failures, confidence);
  const twoLower = (2 * nodeHours) / chiSquareQuantile(1 - alpha / 2, 2 * failures + 2);
  const twoUpper = failures > 0 ? (2 * nodeHours) / chiSquareQuantile(alpha / 2, 2 * failures) : null;
  const needed = (targetHours * chiSquareQuantile(confidence, 2 * failures + 2)) / 2;
  return {
    node_hours: nodeHours,
    failures,
    confidence,
    point_hours: failures > 0 ? nodeHours / failures : null,
    lower_bound_hours: lower,
    interval_hours: [twoLower, twoUpper],
    target_hours: targetHours,
    demonstrated: lower >= targetHours,
    node_hours_needed: needed,
    more_node_hours_needed: Math.max(0, needed - nodeHours),
  };
}

export interface TestPlanAnswer {
  targetHours: number;
  confidence: number;
  nodes: number;
  /** For 0, 1, 2 … failures allowed: the pooled node-hours, and the wall hours on `nodes` nodes. */
  byFailures: { failures: number; nodeHours: number; wallHours: number }[];
  /** What a run of `runHours` on `nodes` nodes can show: the lower bound with 0, 1, 2 failures. */
  run: { hours: number; nodeHours: number; lowerBounds: { failures: number; hours: number }[] } | null;
}

/**
 * How long a time-terminated certification must run to show MTBF ≥ target at `confidence` on
 * `nodes` nodes (their hours pooled), allowing 0, 1, 2 … failures; and what a run of `runHours`
 * can show.
 */
export function planTest(opts: { targetHours: number; confidence: number; nodes: number; maxFailures?: number; runHours?: number }): TestPlanAnswer {
  const { targetHours, confidence, nodes } = opts;
  if (!(targetHours > 0)) throw new RangeError(`the MTBF target must be > 0 hours, got ${targetHours}`);
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  if (!(Number.isInteger(nodes) && nodes >= 1)) throw new RangeError(`nodes must be an integer ≥ 1, got ${nodes}`);
  const maxF = opts.maxFailures ?? 2;
  const byFailures = [];
  for (let r = 0; r <= maxF; r++) {
    const nodeHours = (targetHours * chiSquareQuantile(confidence, 2 * r + 2)) / 2;
    byFailures.push({ failures: r, nodeHours, wallHours: nodeHours / nodes });
  }
  let run: TestPlanAnswer['run'] = null;
  if (opts.runHours !== undefined) {
    if (!(opts.runHours > 0)) throw new RangeError(`the run's hours must be > 0, got ${opts.runHours}`);
    const nodeHours = opts.runHours * nodes;
    run = { hours: opts.runHours, nodeHours, lowerBounds: Array.from({ length: maxF + 1 }, (_, r) => ({ failures: r, hours: mtbfLowerBound(nodeHours, r, confidence) })) };
  }
  return { targetHours, confidence, nodes, byFailures, run };
}

/**
 * The exact coverage of the two-sided interval of a time-terminated test: the probability, over
 * the Poisson count of failures in `nodeHours` at the true MTBF, that the interval holds the truth.
 */
export function exactCoverage(trueMtbfHours: number, nodeHours: number, confidence: number): number {
  const mu = nodeHours / trueMtbfHours;
  let cover = 0;
  // terms until the Poisson tail is negligible
  const rMax = Math.ceil(mu + 12 * Math.sqrt(mu + 1) + 20);
  let logP = -mu; // log P(N = 0)
  for (let r = 0; r <= rMax; r++) {
    if (r > 0) logP += Math.log(mu / r);
    const e = estimateMtbf(nodeHours, r, confidence, 1);
    const [lo, hi] = e.interval_hours;
    if (lo <= trueMtbfHours && (hi === null || trueMtbfHours <= hi)) cover += Math.exp(logP);
  }
  return cover;
}
