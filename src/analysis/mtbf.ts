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
