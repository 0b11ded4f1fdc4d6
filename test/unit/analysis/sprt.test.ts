// The sequential test against its own exact operating characteristic (seeded Monte Carlo), Wald's
// bounds, and the fixed-duration plans of MIL-HDBK-781A (their published true risks).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixedDurationRisks, MIL_HDBK_781_PRST, shortestFixedDuration, sprtEvaluate, sprtLines, sprtOperating, type SprtPlan } from '../../../src/analysis/sprt.js';
import { exponential, seededRandom } from '../../../src/util/random.js';

const FIXTURES = join(__dirname, '..', '..', 'fixtures', 'published');

/** One seeded history judged sequentially: failures at exponential gaps in pooled node-hours. */
function simulate(plan: SprtPlan, theta: number, seed: number, horizon: number): { decision: string; at: number } {
  const rng = seededRandom(seed);
  const times: number[] = [];
  let t = 0;
  for (;;) {
    t += exponential(rng, theta);
    if (t > horizon) break;
    times.push(t);
  }
  const s = sprtEvaluate(plan, times, horizon);
  return { decision: s.decision, at: s.atNodeHours };
}

/** |observed − exact| within 3.5 binomial standard errors (and a small floor for the integration). */
function agrees(observed: number, exact: number, n: number): boolean {
  return Math.abs(observed - exact) <= 3.5 * Math.sqrt((exact * (1 - exact)) / n) + 2e-3;
}

describe('SPRT for the exponential mean', () => {
  it('draws the lines of Wald’s test: slope (1/θ1 − 1/θ0)/ln d, intercepts ln A/ln d and ln B/ln d', () => {
    const l = sprtLines({ theta0Hours: 2000, theta1Hours: 1000, alpha: 0.1, beta: 0.1 });
    expect(l.lnD).toBeCloseTo(Math.log(2), 12);
    expect(l.slope).toBeCloseTo(0.0005 / Math.log(2), 12);
    expect(l.rejectIntercept).toBeCloseTo(Math.log(9) / Math.log(2), 12);
    expect(l.acceptIntercept).toBeCloseTo(Math.log(1 / 9) / Math.log(2), 12);
    // with no failure it accepts after −ln B/k node-hours: 2·1000·ln 9 = 4394.4
    const s = sprtEvaluate({ theta0Hours: 2000, theta1Hours: 1000, alpha: 0.1, beta: 0.1 }, [], 5000);
    expect(s.decision).toBe('accept');
    expect(s.atNodeHours).toBeCloseTo(2000 * Math.log(9), 6);
    // three failures cannot reject (3·ln 2 < ln 9); the fourth does while 4·ln 2 − k·t ≥ ln 9, t ≤ 1151.3 h
    const sure = { theta0Hours: 2000, theta1Hours: 1000, alpha: 0.1, beta: 0.1 };
    expect(sprtEvaluate(sure, [10, 20, 30], 100).decision).toBe('continue');
    const r = sprtEvaluate(sure, [10, 20, 30, 1150], 1200);
    expect(r.decision).toBe('reject');
    expect(r.atNodeHours).toBe(1150);
    expect(sprtEvaluate(sure, [10, 20, 30, 1152], 1200).decision).toBe('continue');
    // between the lines it continues, and says how far each way is
    const c = sprtEvaluate({ theta0Hours: 2000, theta1Hours: 1000, alpha: 0.1, beta: 0.1 }, [1000], 2000);
    expect(c.decision).toBe('continue');
    expect(c.nodeHoursToAccept).toBeCloseTo(2000 * (Math.log(2) + Math.log(9)) - 2000, 6);
    // four more now: (1 + 4)·ln 2 − 2000·k = 2.47 ≥ ln 9 = 2.20; three: 1.77, not enough
    expect(c.failuresToReject).toBe(4);
  });

  it('refuses nonsense plans and histories', () => {
    expect(() => sprtLines({ theta0Hours: 100, theta1Hours: 100, alpha: 0.1, beta: 0.1 })).toThrow(/above the lower/);
    expect(() => sprtLines({ theta0Hours: 200, theta1Hours: 100, alpha: 0.6, beta: 0.1 })).toThrow(/alpha/);
    expect(() => sprtEvaluate({ theta0Hours: 200, theta1Hours: 100, alpha: 0.1, beta: 0.1 }, [5, 3], 10)).toThrow(/ascending/);
    expect(() => sprtLines({ theta0Hours: 200, theta1Hours: 100, alpha: 0.1, beta: 0.1, truncate: { failures: 0 } })).toThrow(/truncation/);
  });

  it('the open test: seeded histories decide as the exact operating characteristic says, within Wald’s bounds', () => {
    const plan: SprtPlan = { theta0Hours: 2, theta1Hours: 1, alpha: 0.1, beta: 0.1 };
    const at0 = sprtOperating(plan, 2);
    const at1 = sprtOperating(plan, 1);
    expect(at0.pAccept + at0.pReject).toBeGreaterThan(0.9999);
    expect(at1.pAccept + at1.pReject).toBeGreaterThan(0.9999);
    // Wald: α′ ≤ α/(1−β), β′ ≤ β/(1−α)
    expect(at0.pReject).toBeLessThanOrEqual(plan.alpha / (1 - plan.beta));
    expect(at1.pAccept).toBeLessThanOrEqual(plan.beta / (1 - plan.alpha));
    const n = 4000;
    for (const [theta, exact] of [[2, at0], [1, at1]] as const) {
      let rejects = 0;
      let hours = 0;
      for (let i = 0; i < n; i++) {
        const h = simulate(plan, theta, 1000 + i, 400);
        expect(h.decision).not.toBe('continue');
        if (h.decision === 'reject') rejects++;
        hours += h.at;
      }
      const observed = rejects / n;
      process.stderr.write(`sprt open (θ0 2, θ1 1, α = β = 0.1) at θ = ${theta}: rejects ${observed.toFixed(4)} of ${n} histories, exact ${exact.pReject.toFixed(4)}; mean test time ${(hours / n).toFixed(3)} vs exact ${exact.expectedNodeHours.toFixed(3)} (Wald's bounds α′ ≤ ${(plan.alpha / (1 - plan.beta)).toFixed(4)}, β′ ≤ ${(plan.beta / (1 - plan.alpha)).toFixed(4)})\n`);
      expect(agrees(observed, exact.pReject, n), `θ=${theta}: observed reject rate ${observed} vs exact ${exact.pReject.toFixed(4)}`).toBe(true);
      // the expected test time, within 4 % (its spread is about its size: 4000 histories give ~1.6 % standard error)
      expect(Math.abs(hours / n - exact.expectedNodeHours) / exact.expectedNodeHours).toBeLessThan(0.05);
    }
  });

  it('a truncated plan: seeded histories agree with its exact risks, which exceed the nominal ones', () => {
    const p = MIL_HDBK_781_PRST['III-D'] as { alpha: number; beta: number; d: number };
    const fixed = shortestFixedDuration(p.d, 1, p.alpha, p.beta);
    const plan: SprtPlan = { theta0Hours: p.d, theta1Hours: 1, alpha: p.alpha, beta: p.beta, truncate: { failures: fixed.acceptFailures + 1, nodeHours: fixed.nodeHours } };
    const at0 = sprtOperating(plan, p.d);
    const at1 = sprtOperating(plan, 1);
    expect(at0.pAccept + at0.pReject).toBeCloseTo(1, 4);
    expect(Math.max(at0.pReject - p.alpha, at1.pAccept - p.beta)).toBeGreaterThan(0);
    // truncation shortens the test: never past its node-hours
    expect(at0.expectedNodeHours).toBeLessThan(fixed.nodeHours);
    const n = 4000;
    let rejects0 = 0;
    let accepts1 = 0;
    for (let i = 0; i < n; i++) {
      const a = simulate(plan, p.d, 50_000 + i, fixed.nodeHours);
      const b = simulate(plan, 1, 90_000 + i, fixed.nodeHours);
      expect(a.decision).not.toBe('continue');
      expect(a.at).toBeLessThanOrEqual(fixed.nodeHours);
      if (a.decision === 'reject') rejects0++;
      if (b.decision === 'accept') accepts1++;
    }
    process.stderr.write(`sprt III-D truncated at ${fixed.acceptFailures + 1} failures / ${fixed.nodeHours.toFixed(2)} θ1: α′ observed ${(rejects0 / n).toFixed(4)} vs exact ${at0.pReject.toFixed(4)}, β′ observed ${(accepts1 / n).toFixed(4)} vs exact ${at1.pAccept.toFixed(4)} (nominal 0.1 / 0.1)\n`);
    expect(agrees(rejects0 / n, at0.pReject, n), `α′ observed ${rejects0 / n} vs exact ${at0.pReject}`).toBe(true);
    expect(agrees(accepts1 / n, at1.pAccept, n), `β′ observed ${accepts1 / n} vs exact ${at1.pAccept}`).toBe(true);
  });
});

describe('fixed-duration plans', () => {
  it('MIL-HDBK-781A’s fixed-duration plans: the exact Poisson risks are the published true risks', () => {
    const table = JSON.parse(readFileSync(join(FIXTURES, 'mil-hdbk-781a-fixed-duration.json'), 'utf8')) as {
      plans: { plan: string; d: number; duration_theta1: number; reject_at: number; accept_at: number; true_alpha: number; true_beta: number }[];
    };
    expect(table.plans.length).toBeGreaterThanOrEqual(9);
    for (const row of table.plans) {
      expect(row.reject_at).toBe(row.accept_at + 1);
      const risks = fixedDurationRisks({ nodeHours: row.duration_theta1, acceptFailures: row.accept_at }, row.d, 1);
      // the table gives percentages to one decimal
      expect(Math.abs(risks.alpha * 100 - row.true_alpha), `${row.plan} α′ ${(risks.alpha * 100).toFixed(2)} vs ${row.true_alpha}`).toBeLessThanOrEqual(0.06);
      expect(Math.abs(risks.beta * 100 - row.true_beta), `${row.plan} β′ ${(risks.beta * 100).toFixed(2)} vs ${row.true_beta}`).toBeLessThanOrEqual(0.06);
    }
  });

  it('the shortest fixed-duration plan within the risks has both exact risks within them', () => {
    for (const [d, a, b] of [[1.5, 0.1, 0.1], [2, 0.2, 0.2], [3, 0.1, 0.2]] as const) {
      const f = shortestFixedDuration(d, 1, a, b);
      expect(f.alpha).toBeLessThanOrEqual(a);
      expect(f.beta).toBeLessThanOrEqual(b + 1e-9);
      // one hour less would let the consumer's risk past β
      expect(fixedDurationRisks({ nodeHours: f.nodeHours * 0.99, acceptFailures: f.acceptFailures }, d, 1).beta).toBeGreaterThan(b);
    }
  });
});
