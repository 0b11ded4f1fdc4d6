// Is the fleet getting worse as it runs? Two trend tests on event times (failures, or softer
// events: SLO-breach windows, error bursts), several nodes pooled, each observed on (0, T_j]
// (time-terminated: T_j is the node's time under load).
//
// Laplace: U = (Σ t_ij − Σ n_j·T_j/2) / √(Σ n_j·T_j²/12), about N(0, 1) for a homogeneous Poisson
// process; U > 0 means events come later in the span than a constant rate would put them (more
// and more often). Crow-AMSAA (power-law NHPP, intensity λβt^{β−1}): β̂ = N / Σ ln(T_j/t_ij), and
// 2Nβ/β̂ is χ² with 2N degrees of freedom, which gives β's interval; β > 1: failures accelerate
// (a leak, a wearing part), β < 1: they thin out (infant mortality, burn-in).
import { chiSquareQuantile, normalCdf } from './stats.js';

export interface NodeEvents {
  /** Event times from the node's start under load (any unit, the same as `span`), each in (0, span]. */
  times: readonly number[];
  /** The node's observed span (time under load). */
  span: number;
}

export interface LaplaceResult {
  events: number;
  /** The statistic (N(0,1) under no trend). */
  u: number | null;
  /** One-sided p-value against "getting worse" (events coming more often): P(Z ≥ u). */
  pWorse: number | null;
  /** Two-sided p-value (any trend). */
  pTwoSided: number | null;
}

function checkNodes(nodes: readonly NodeEvents[]): void {
  for (const [i, n] of nodes.entries()) {
    if (!(n.span > 0)) throw new RangeError(`node ${i}: its span must be > 0, got ${n.span}`);
    for (const t of n.times) if (!(t > 0 && t <= n.span)) throw new RangeError(`node ${i}: event time ${t} outside (0, ${n.span}]`);
  }
}

export function laplaceTest(nodes: readonly NodeEvents[]): LaplaceResult {
  checkNodes(nodes);
  let sum = 0;
  let centre = 0;
  let variance = 0;
  let events = 0;
  for (const n of nodes) {
    for (const t of n.times) sum += t;
    events += n.times.length;
    centre += (n.times.length * n.span) / 2;
    variance += (n.times.length * n.span * n.span) / 12;
  }
  if (events === 0) return { events, u: null, pWorse: null, pTwoSided: null };
  const u = (sum - centre) / Math.sqrt(variance);
  return { events, u, pWorse: 1 - normalCdf(u), pTwoSided: 2 * (1 - normalCdf(Math.abs(u))) };
}

export interface CrowAmsaaResult {
  events: number;
  /** MLE of the shape β; null with fewer than 2 events. */
  beta: number | null;
  /** Two-sided interval on β at `confidence`. */
  betaInterval: [number, number] | null;
  /** The scale λ (events per unit^β), MLE. */
  lambda: number | null;
  /** The instantaneous MTBF at the end of the observed span, 1/(λβT^{β−1}) for one node of the longest span. */
  instantaneousMtbf: number | null;
  confidence: number;
  /** β's interval lies wholly above 1: failures accelerate. */
  worsening: boolean;
}

export function crowAmsaa(nodes: readonly NodeEvents[], confidence = 0.9): CrowAmsaaResult {
  checkNodes(nodes);
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  let n = 0;
  let logs = 0;
  for (const node of nodes) {
    n += node.times.length;
    for (const t of node.times) logs += Math.log(node.span / t);
  }
  const none = { events: n, beta: null, betaInterval: null, lambda: null, instantaneousMtbf: null, confidence, worsening: false };
  if (n < 2 || !(logs > 0)) return none;
  const beta = n / logs;
  const a = 1 - confidence;
  const betaInterval: [number, number] = [(beta * chiSquareQuantile(a / 2, 2 * n)) / (2 * n), (beta * chiSquareQuantile(1 - a / 2, 2 * n)) / (2 * n)];
  const lambda = n / nodes.reduce((s, node) => s + node.span ** beta, 0);
  const longest = Math.max(...nodes.map((x) => x.span));
  return { events: n, beta, betaInterval, lambda, instantaneousMtbf: 1 / (lambda * beta * longest ** (beta - 1)), confidence, worsening: betaInterval[0] > 1 };
}
