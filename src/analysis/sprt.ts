// Sequential certification of MTBF: Wald's sequential probability-ratio test for the mean of an
// exponential time between failures, as in the probability-ratio sequential test (PRST) plans of
// MIL-HDBK-781, and the fixed-duration plans it is the alternative to.
//
// H0: MTBF = θ0 (the upper test MTBF, what a release wants to show); H1: MTBF = θ1 = θ0 / d (the
// lower, unacceptable one). After T pooled node-hours and r failures the log-likelihood ratio of
// H1 to H0 is r·ln d − T·(1/θ1 − 1/θ0). The test rejects (the fleet is not good enough) at the
// failure that takes it to ln A = ln((1−β)/α), accepts when the hours without a failure take it down to
// ln B = ln(β/(1−α)), and runs on between the two lines. α is the producer's risk (a fleet whose MTBF is
// θ0 rejected), β the consumer's (one whose MTBF is θ1 accepted). Wald's bounds on the true
// risks of the open test: α′ ≤ α/(1−β), β′ ≤ β/(1−α). A truncated plan also stops at a number of
// failures (reject) or of hours (accept); its true risks are computed here exactly (they exceed
// the nominal ones) with the expected test time, by integrating the test's path densities.
import { poissonCdf } from './stats.js';

export interface SprtPlan {
  /** Upper test MTBF θ0, hours: a fleet this good is accepted with probability 1 − α. */
  theta0Hours: number;
  /** Lower test MTBF θ1, hours (θ0 / discrimination ratio): a fleet this bad is accepted with probability β. */
  theta1Hours: number;
  /** Producer's risk α: rejecting a fleet whose MTBF is θ0. */
  alpha: number;
  /** Consumer's risk β: accepting a fleet whose MTBF is θ1. */
  beta: number;
  /** Truncation: reject at this many failures, accept at this many node-hours (whichever comes first). */
  truncate?: { failures?: number; nodeHours?: number };
}

export interface SprtLines {
  /** ln d, d = θ0/θ1. */
  lnD: number;
  /** 1/θ1 − 1/θ0, per hour. */
  k: number;
  lnA: number;
  lnB: number;
  /** The lines r = intercept + slope·T (failures against node-hours). */
  slope: number;
  rejectIntercept: number;
  acceptIntercept: number;
}

export function checkSprtPlan(plan: SprtPlan): void {
  const { theta0Hours: t0, theta1Hours: t1, alpha, beta } = plan;
  if (!(t1 > 0 && Number.isFinite(t1))) throw new RangeError(`the lower test MTBF must be > 0 hours, got ${t1}`);
  if (!(t0 > t1 && Number.isFinite(t0))) throw new RangeError(`the upper test MTBF (${t0} h) must be above the lower one (${t1} h)`);
  for (const [name, v] of [['alpha (producer risk)', alpha], ['beta (consumer risk)', beta]] as const)
    if (!(v > 0 && v < 0.5)) throw new RangeError(`${name} must be in (0, 0.5), got ${v}`);
  const tr = plan.truncate;
  if (tr?.failures !== undefined && !(Number.isInteger(tr.failures) && tr.failures >= 1)) throw new RangeError(`truncation failures must be an integer ≥ 1, got ${tr.failures}`);
  if (tr?.nodeHours !== undefined && !(tr.nodeHours > 0)) throw new RangeError(`truncation node-hours must be > 0, got ${tr.nodeHours}`);
}

export function sprtLines(plan: SprtPlan): SprtLines {
  checkSprtPlan(plan);
  const lnD = Math.log(plan.theta0Hours / plan.theta1Hours);
  const k = 1 / plan.theta1Hours - 1 / plan.theta0Hours;
  const lnA = Math.log((1 - plan.beta) / plan.alpha);
  const lnB = Math.log(plan.beta / (1 - plan.alpha));
  return { lnD, k, lnA, lnB, slope: k / lnD, rejectIntercept: lnA / lnD, acceptIntercept: lnB / lnD };
}

/** Node-hours at or before which the r-th failure rejects (−∞ when it cannot: the line is not reached yet). */
function rejectBy(lines: SprtLines, r: number): number {
  return (r * lines.lnD - lines.lnA) / lines.k;
}

/** Node-hours at which r failures so far accept (Wald's line, before truncation). */
function acceptAt(lines: SprtLines, r: number): number {
  return (r * lines.lnD - lines.lnB) / lines.k;
}

export type SprtDecision = 'accept' | 'reject' | 'continue';

export interface SprtState {
  decision: SprtDecision;
  /** Node-hours at which the decision was reached (the current node-hours while it continues). */
  atNodeHours: number;
  failures: number;
  /** The log-likelihood ratio at that point, and the lines it is between. */
  llr: number;
  lnA: number;
  lnB: number;
  /** Why it stopped: Wald's line or the truncation. */
  by: 'line' | 'truncation' | null;
  /** Node-hours still needed with no further failure to accept (0 once decided). */
  nodeHoursToAccept: number;
  /** Further failures that would reject now. */
  failuresToReject: number;
}

/**
 * The test's state after `nodeHours` pooled node-hours with failures at `failureNodeHours`
 * (the pooled node-hours at each failure, ascending). Rejection is judged at each failure (the
 * line rises with time), acceptance at the hours reached without one.
 */
export function sprtEvaluate(plan: SprtPlan, failureNodeHours: readonly number[], nodeHours: number): SprtState {
  const lines = sprtLines(plan);
  const maxR = plan.truncate?.failures ?? Infinity;
  const maxT = plan.truncate?.nodeHours ?? Infinity;
  const llr = (r: number, t: number): number => r * lines.lnD - t * lines.k;
  let r = 0;
  let prev = 0;
  const decided = (decision: 'accept' | 'reject', at: number, rr: number, by: 'line' | 'truncation'): SprtState => ({ decision, atNodeHours: at, failures: rr, llr: llr(rr, at), lnA: lines.lnA, lnB: lines.lnB, by, nodeHoursToAccept: 0, failuresToReject: 0 });
  for (const t of failureNodeHours) {
    if (!(t >= prev)) throw new RangeError(`failure node-hours must be ascending and ≥ 0 (${t} after ${prev})`);
    if (t > nodeHours) break;
    // accepted before this failure?
    const acc = Math.min(acceptAt(lines, r), maxT);
    if (acc <= t) return decided('accept', acc, r, acc === maxT && acc < acceptAt(lines, r) ? 'truncation' : 'line');
    r += 1;
    prev = t;
    if (r >= maxR) return decided('reject', t, r, t <= rejectBy(lines, r) ? 'line' : 'truncation');
    if (t <= rejectBy(lines, r)) return decided('reject', t, r, 'line');
  }
  const acc = Math.min(acceptAt(lines, r), maxT);
  if (acc <= nodeHours) return decided('accept', acc, r, acc === maxT && acc < acceptAt(lines, r) ? 'truncation' : 'line');
  let toReject = 1;
  while (r + toReject < maxR && nodeHours > rejectBy(lines, r + toReject)) toReject++;
  return { decision: 'continue', atNodeHours: nodeHours, failures: r, llr: llr(r, nodeHours), lnA: lines.lnA, lnB: lines.lnB, by: null, nodeHoursToAccept: acc - nodeHours, failuresToReject: toReject };
}

export interface SprtOperating {
  /** The true MTBF these are for. */
  thetaHours: number;
  pAccept: number;
  pReject: number;
  /** Expected pooled node-hours until a decision. */
  expectedNodeHours: number;
  /** Probability left undecided where the integration stopped (an open test: the tail beyond it). */
  undecided: number;
}

/**
 * The exact operating characteristic of the plan at a true MTBF θ: the probabilities of accepting
 * and rejecting and the expected test time. Failures form a Poisson process of rate 1/θ in pooled
 * node-hours; f_r, the density of the r-th failure at s with the test still running, is
 * f_{r+1}(s) = λ∫_{u<s} f_r^alive(u)·e^{−λ(s−u)} du, f_r^alive being f_r where the r-th failure
 * neither rejected nor came after acceptance; each stage is one running integral on a grid of
 * the node-hours (trapezoids; error O(h) at the lines' jumps, about 1e-5 with the default grid).
 */
export function sprtOperating(plan: SprtPlan, thetaHours: number, opts: { steps?: number } = {}): SprtOperating {
  const lines = sprtLines(plan);
  if (!(thetaHours > 0)) throw new RangeError(`the true MTBF must be > 0, got ${thetaHours}`);
  const lambda = 1 / thetaHours;
  const maxR = plan.truncate?.failures ?? Infinity;
  const maxT = plan.truncate?.nodeHours ?? Infinity;
  // where to stop integrating an open test: far enough that the probability still undecided is negligible
  const horizon = Number.isFinite(maxT) ? maxT : 60 * Math.max(acceptAt(lines, 0), thetaHours, 1 / lines.k);
  const steps = opts.steps ?? 200_000;
  const h = horizon / steps;
  const n = steps + 1;
  const A = (r: number): number => Math.min(acceptAt(lines, r), maxT);
  let pAccept = 0;
  let pReject = 0;
  let eT = 0;
  // no failure at all: accepted at A(0)
  const a0 = A(0);
  pAccept += Math.exp(-lambda * a0);
  eT += a0 * Math.exp(-lambda * a0);
  // f_1, the first failure's density, on the grid: λe^{−λs} before A(0)
  let f = new Float64Array(n);
  for (let i = 0; i < n; i++) f[i] = i * h < a0 ? lambda * Math.exp(-lambda * i * h) : 0;
  const decay = Math.exp(-lambda * h);
  let massAlive = 1;
  for (let r = 1; r <= 20_000 && massAlive > 1e-14; r++) {
    // f holds the r-th failure's density: judge it (reject or go on), and from what goes on build the next
    const rej = rejectBy(lines, r);
    const rejectAll = r >= maxR;
    const acc = A(r);
    const next = new Float64Array(n);
    massAlive = 0;
    let running = 0; // ∫_{u<s} alive(u)·e^{−λ(s−u)} du, trapezoids, carried along s
    let prevAlive = 0;
    for (let i = 0; i < n; i++) {
      const s = i * h;
      const v = f[i] as number;
      const w = i === 0 || i === n - 1 ? h / 2 : h;
      const rejected = rejectAll || s <= rej;
      if (rejected) {
        pReject += v * w;
        eT += s * v * w;
      }
      const alive = rejected || s >= acc ? 0 : v;
      if (alive > 0) {
        massAlive += alive * w;
        const none = Math.exp(-lambda * (acc - s)); // no further failure before acc: accepted there
        pAccept += alive * w * none;
        eT += acc * alive * w * none;
      }
      if (i > 0) running = running * decay + (h / 2) * (prevAlive * decay + alive);
      prevAlive = alive;
      next[i] = s < acc ? lambda * running : 0;
    }
    f = next;
  }
  const undecidedMass = massAlive > 1e-14 ? massAlive : 0;
  const undecided = Math.max(0, 1 - pAccept - pReject, undecidedMass);
  return { thetaHours, pAccept, pReject, expectedNodeHours: eT, undecided };
}

export interface FixedDurationPlan {
  /** Pooled node-hours of the test. */
  nodeHours: number;
  /** Accept with at most this many failures; reject with more. */
  acceptFailures: number;
}

/** The exact risks of a fixed-duration plan (Poisson counts): α′ at θ0, β′ at θ1. */
export function fixedDurationRisks(plan: FixedDurationPlan, theta0Hours: number, theta1Hours: number): { alpha: number; beta: number } {
  return {
    alpha: 1 - poissonCdf(plan.acceptFailures, plan.nodeHours / theta0Hours),
    beta: poissonCdf(plan.acceptFailures, plan.nodeHours / theta1Hours),
  };
}

/**
 * The shortest fixed-duration plan whose exact risks are within α and β (the classical
 * construction: for each accept number c the shortest time with β′ ≤ β, the first c for which α′ ≤ α too).
 */
export function shortestFixedDuration(theta0Hours: number, theta1Hours: number, alpha: number, beta: number): FixedDurationPlan & { alpha: number; beta: number } {
  for (let c = 0; c < 10_000; c++) {
    // β′(T) = P(N ≤ c | T/θ1) falls with T: the least T with β′ ≤ β, by bisection
    let lo = 0;
    let hi = theta1Hours * (c + 1);
    while (poissonCdf(c, hi / theta1Hours) > beta) hi *= 2;
    for (let i = 0; i < 200 && hi - lo > 1e-10 * hi; i++) {
      const mid = (lo + hi) / 2;
      if (poissonCdf(c, mid / theta1Hours) > beta) lo = mid;
      else hi = mid;
    }
    const risks = fixedDurationRisks({ nodeHours: hi, acceptFailures: c }, theta0Hours, theta1Hours);
    if (risks.alpha <= alpha) return { nodeHours: hi, acceptFailures: c, ...risks };
  }
  throw new RangeError('no fixed-duration plan within 10 000 failures: the discrimination ratio is too close to 1');
}

/**
 * A standard PRST plan of MIL-HDBK-781A as the handbook draws it, in multiples of θ1: its
 * nominal risks and discrimination ratio; its accept line by where it starts (accept with no
 * failure after this much test time); its reject line by its first cell (that many failures by
 * this time reject; null when the line is not reached before the truncation); and its truncation.
 * The lines have Wald's slope for d; their intercepts are the handbook's, which are not Wald's for
 * the nominal risks (they were chosen so that the truncated test's true risks come near them).
 */
export interface MilPrstPlan {
  alpha: number;
  beta: number;
  d: number;
  acceptWithNoFailure: number;
  firstReject: { failures: number; theta1: number } | null;
  truncation: { failures: number; theta1: number };
}

/**
 * MIL-HDBK-781A's PRST plans I-D to VIII-D (test/fixtures/published/mil-hdbk-781a-prst.json holds
 * their whole accept-reject tables and published true risks, and sprt.test.ts checks these
 * against them).
 */
export const MIL_HDBK_781_PRST: Record<string, MilPrstPlan> = {
  'I-D': { alpha: 0.1, beta: 0.1, d: 1.5, acceptWithNoFailure: 6.95, firstReject: { failures: 6, theta1: 0.34 }, truncation: { failures: 41, theta1: 49.5 } },
  'II-D': { alpha: 0.2, beta: 0.2, d: 1.5, acceptWithNoFailure: 4.19, firstReject: { failures: 3, theta1: 0.24 }, truncation: { failures: 19, theta1: 21.9 } },
  'III-D': { alpha: 0.1, beta: 0.1, d: 2, acceptWithNoFailure: 4.4, firstReject: { failures: 3, theta1: 0.7 }, truncation: { failures: 16, theta1: 20.6 } },
  'IV-D': { alpha: 0.2, beta: 0.2, d: 2, acceptWithNoFailure: 2.8, firstReject: { failures: 2, theta1: 0.7 }, truncation: { failures: 8, theta1: 9.74 } },
  'V-D': { alpha: 0.1, beta: 0.1, d: 3, acceptWithNoFailure: 3.75, firstReject: { failures: 2, theta1: 0.57 }, truncation: { failures: 7, theta1: 10.35 } },
  'VI-D': { alpha: 0.2, beta: 0.2, d: 3, acceptWithNoFailure: 2.67, firstReject: { failures: 2, theta1: 0.36 }, truncation: { failures: 3, theta1: 4.5 } },
  'VII-D': { alpha: 0.3, beta: 0.3, d: 1.5, acceptWithNoFailure: 3.15, firstReject: { failures: 3, theta1: 1.22 }, truncation: { failures: 6, theta1: 6.8 } },
  'VIII-D': { alpha: 0.3, beta: 0.3, d: 2, acceptWithNoFailure: 1.72, firstReject: null, truncation: { failures: 3, theta1: 4.5 } },
};

/** The test a sequential plan asks for: θ0, θ1, nominal risks, and optionally a MIL-HDBK-781 plan by name. */
export interface SequentialSpec {
  name: string | null;
  theta0Hours: number;
  theta1Hours: number;
  alpha: number;
  beta: number;
}

/**
 * The sequential test to run. A named MIL-HDBK-781A plan is the handbook's own: its lines
 * (expressed as the risks α*, β* whose Wald lines they are) and its truncation, scaled by θ1.
 * Otherwise Wald's lines for the risks, truncated at the shortest fixed-duration plan with the
 * same risks (its node-hours: accept; one failure past its accept number: reject).
 */
export function sequentialTestPlan(seq: SequentialSpec): SprtPlan {
  if (seq.name === null) {
    const fixed = shortestFixedDuration(seq.theta0Hours, seq.theta1Hours, seq.alpha, seq.beta);
    return { theta0Hours: seq.theta0Hours, theta1Hours: seq.theta1Hours, alpha: seq.alpha, beta: seq.beta, truncate: { failures: fixed.acceptFailures + 1, nodeHours: fixed.nodeHours } };
  }
  const p = MIL_HDBK_781_PRST[seq.name];
  if (!p) throw new RangeError(`no MIL-HDBK-781 PRST plan ${seq.name} (${Object.keys(MIL_HDBK_781_PRST).join(', ')})`);
  const d = seq.theta0Hours / seq.theta1Hours;
  if (!(Math.abs(d - p.d) < 1e-9 * p.d)) throw new RangeError(`plan ${seq.name} has discrimination ratio ${p.d}, not ${d}`);
  const k = 1 - 1 / d; // 1/θ1 − 1/θ0, per θ1
  const lnD = Math.log(d);
  const lnB = -p.acceptWithNoFailure * k;
  // a reject line never reached before the truncation: one that passes r = failures at 0 (the
  // truncation's failure count rejects, by the truncation, whenever it comes)
  const lnA = p.firstReject ? p.firstReject.failures * lnD - p.firstReject.theta1 * k : p.truncation.failures * lnD;
  const A = Math.exp(lnA);
  const B = Math.exp(lnB);
  return {
    theta0Hours: seq.theta0Hours,
    theta1Hours: seq.theta1Hours,
    alpha: (1 - B) / (A - B),
    beta: (B * (A - 1)) / (A - B),
    truncate: { failures: p.truncation.failures, nodeHours: p.truncation.theta1 * seq.theta1Hours },
  };
}

export interface SequentialAnswer {
  plan: string | null;
  theta0Hours: number;
  theta1Hours: number;
  discrimination: number;
  alpha: number;
  beta: number;
  lines: { slopePerNodeHour: number; rejectIntercept: number; acceptIntercept: number };
  truncation: { failures: number; nodeHours: number };
  fixedDuration: { nodeHours: number; acceptFailures: number; alpha: number; beta: number };
  trueRisks: { alpha: number; beta: number };
  expectedNodeHours: { atTheta0: number; atTheta1: number };
}

/**
 * The sequential test for the target as θ0 (sequentialTestPlan), with the true risks and expected
 * test time of the truncated test, and the fixed-duration test with the same nominal risks it is
 * the alternative to.
 */
export function sequentialAnswer(seq: SequentialSpec): SequentialAnswer {
  const fixed = shortestFixedDuration(seq.theta0Hours, seq.theta1Hours, seq.alpha, seq.beta);
  const plan = sequentialTestPlan(seq);
  const l = sprtLines(plan);
  const at0 = sprtOperating(plan, seq.theta0Hours);
  const at1 = sprtOperating(plan, seq.theta1Hours);
  return {
    plan: seq.name,
    theta0Hours: seq.theta0Hours,
    theta1Hours: seq.theta1Hours,
    discrimination: seq.theta0Hours / seq.theta1Hours,
    alpha: seq.alpha,
    beta: seq.beta,
    lines: { slopePerNodeHour: l.slope, rejectIntercept: l.rejectIntercept, acceptIntercept: l.acceptIntercept },
    truncation: { failures: plan.truncate?.failures as number, nodeHours: plan.truncate?.nodeHours as number },
    fixedDuration: fixed,
    trueRisks: { alpha: at0.pReject, beta: at1.pAccept },
    expectedNodeHours: { atTheta0: at0.expectedNodeHours, atTheta1: at1.expectedNodeHours },
  };
}

/**
 * The sequential test a plan's `sequential:` asks for (sequentialTestPlan) — what the report shows
 * the run against and what `stop_early` stops it on. Cheap: the true risks and expected times
 * (sequentialAnswer, about half a second) are not computed.
 */
export function planSequentialTest(seq: { mil_plan?: string | undefined; discrimination: number; alpha: number; beta: number }, targetHours: number): SprtPlan {
  return sequentialTestPlan({ name: seq.mil_plan ?? null, theta0Hours: targetHours, theta1Hours: targetHours / seq.discrimination, alpha: seq.alpha, beta: seq.beta });
}
