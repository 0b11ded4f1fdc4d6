// The sequential test against its own exact operating characteristic (seeded Monte Carlo), Wald's
// bounds, and the fixed-duration plans of MIL-HDBK-781A (their published true risks).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixedDurationRisks, MIL_HDBK_781_PRST, type MilPrstPlan, sequentialTestPlan, shortestFixedDuration, sprtEvaluate, sprtLines, sprtOperating, type SprtPlan } from '../../../src/analysis/sprt.js';
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

  it('a truncated plan (Wald’s lines for III-D’s risks, truncated at the shortest fixed-duration plan): seeded histories agree with its exact risks, which exceed the nominal ones', () => {
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
    process.stderr.write(`sprt (Wald lines for III-D’s risks) truncated at ${fixed.acceptFailures + 1} failures / ${fixed.nodeHours.toFixed(2)} θ1: α′ observed ${(rejects0 / n).toFixed(4)} vs exact ${at0.pReject.toFixed(4)}, β′ observed ${(accepts1 / n).toFixed(4)} vs exact ${at1.pAccept.toFixed(4)} (nominal 0.1 / 0.1)\n`);
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

interface PublishedPrst {
  plan: string;
  alpha: number;
  beta: number;
  d: number;
  true_alpha: number;
  true_beta: number;
  truncation: { reject_at_failures: number; accept_at_theta1: number };
  doubted: { r: number; column: 'reject' | 'accept'; published: number; neighbours_give: number }[];
  doubted_risk?: { field: 'true_alpha' | 'true_beta'; published: number };
  table: [number, number | null, number | null][];
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
};

/** Theil–Sen line through (r, time) cells: the median pairwise slope, the median intercept. */
function theilSen(cells: readonly [number, number][]): { slope: number; intercept: number } {
  const slopes: number[] = [];
  for (let i = 0; i < cells.length; i++)
    for (let j = i + 1; j < cells.length; j++) slopes.push(((cells[j] as [number, number])[1] - (cells[i] as [number, number])[1]) / ((cells[j] as [number, number])[0] - (cells[i] as [number, number])[0]));
  const slope = median(slopes);
  return { slope, intercept: median(cells.map(([x, y]) => y - slope * x)) };
}

/** A plan's cells on its accept and reject lines (the ones its truncation does not set). */
function lineCells(p: PublishedPrst): { accept: [number, number][]; reject: [number, number][] } {
  return {
    accept: p.table.filter(([, , a]) => a !== null && a < p.truncation.accept_at_theta1).map(([r, , a]) => [r, a as number]),
    reject: p.table.filter(([r, x]) => x !== null && r < p.truncation.reject_at_failures).map(([r, x]) => [r, x as number]),
  };
}

/** A published plan as Gauntlet runs it when a plan names it (θ1 = 1 hour, θ0 = d). */
function publishedPlan(p: PublishedPrst): SprtPlan {
  return sequentialTestPlan({ name: p.plan, theta0Hours: p.d, theta1Hours: 1, alpha: p.alpha / 100, beta: p.beta / 100 });
}

describe('MIL-HDBK-781A’s sequential (PRST) plans I-D to VIII-D', () => {
  const published = JSON.parse(readFileSync(join(FIXTURES, 'mil-hdbk-781a-prst.json'), 'utf8')) as { plans: PublishedPrst[] };

  it('their accept and reject lines are Wald’s lines for their discrimination ratio, and sprtEvaluate decides as the tables do', () => {
    expect(published.plans.map((p) => p.plan)).toEqual(Object.keys(MIL_HDBK_781_PRST));
    for (const p of published.plans) {
      // the plan Gauntlet runs by this name is the table's: its first cells and its truncation
      const ours = MIL_HDBK_781_PRST[p.plan] as MilPrstPlan;
      const firstReject = p.table.find(([r, x]) => x !== null && r < p.truncation.reject_at_failures);
      expect(ours).toEqual({
        alpha: p.alpha / 100,
        beta: p.beta / 100,
        d: p.d,
        acceptWithNoFailure: (p.table[0] as [number, null, number])[2],
        firstReject: firstReject ? { failures: firstReject[0], theta1: firstReject[1] } : null,
        truncation: { failures: p.truncation.reject_at_failures, theta1: p.truncation.accept_at_theta1 },
      });
      const plan = publishedPlan(p);
      const wald = 1 / sprtLines(plan).slope; // node-hours (θ1) per failure
      expect(wald).toBeCloseTo(Math.log(p.d) / (1 - 1 / p.d), 12);
      const off: string[] = [];
      const cells = lineCells(p);
      for (const column of ['accept', 'reject'] as const) {
        const c = cells[column];
        if (c.length < 2) continue;
        const fit = theilSen(c);
        // the table's line and Wald's part by no more than two rounding steps over the table
        const span = (c[c.length - 1] as [number, number])[0] - (c[0] as [number, number])[0];
        expect(Math.abs(fit.slope - wald) * span, `${p.plan} ${column}: slope ${fit.slope} vs Wald's ${wald}`).toBeLessThanOrEqual(0.02);
        for (const [r, t] of c) if (Math.abs(t - (fit.intercept + r * fit.slope)) > 0.011) off.push(`${r}:${column}`);
        for (const x of p.doubted.filter((d) => d.column === column)) expect(Math.abs(x.neighbours_give - (fit.intercept + x.r * fit.slope))).toBeLessThanOrEqual(0.011);
      }
      const order = (s: string): number => Number(s.split(':')[0]) * 2 + (s.endsWith('reject') ? 1 : 0);
      expect(off.sort((a, b) => order(a) - order(b)), `${p.plan}: cells off the line`).toEqual(p.doubted.map((x) => `${x.r}:${x.column}`));
      // the truncation: at its failures a reject whenever they come, with no accept time
      expect(p.table[p.table.length - 1]).toEqual([p.truncation.reject_at_failures, p.truncation.accept_at_theta1, null]);
      // every cell, replayed through sprtEvaluate (±0.02 θ1 for the table's rounding). Earlier
      // failures come where they decide nothing: just after their own reject time when the r-th is
      // to reject, halfway between their reject time and the accept time of one fewer otherwise.
      const cell = (r: number, column: 'reject' | 'accept'): number | null => {
        const d = p.doubted.find((x) => x.r === r && x.column === column);
        if (d) return d.neighbours_give;
        const row = p.table[r] as [number, number | null, number | null];
        return column === 'reject' ? row[1] : row[2];
      };
      const justAfter = (r: number): number[] => Array.from({ length: r }, (_, i) => (cell(i + 1, 'reject') ?? 0) + 0.05 + i * 1e-3);
      const halfway = (r: number): number[] => Array.from({ length: r }, (_, i) => ((cell(i + 1, 'reject') ?? 0) + (cell(i, 'accept') as number)) / 2);
      for (const [r, rej, acc] of p.table) {
        if (acc !== null && !p.doubted.some((x) => x.r === r && x.column === 'accept')) {
          expect(sprtEvaluate(plan, halfway(r), acc + 0.02).decision, `${p.plan}: ${r} failures, ${acc + 0.02} θ1`).toBe('accept');
          expect(sprtEvaluate(plan, halfway(r), acc - 0.02).decision, `${p.plan}: ${r} failures, ${acc - 0.02} θ1`).toBe('continue');
        }
        if (rej !== null && r > 0 && !p.doubted.some((x) => x.r === r && x.column === 'reject')) {
          expect(sprtEvaluate(plan, [...justAfter(r - 1), rej - 0.02], rej).decision, `${p.plan}: failure ${r} at ${rej - 0.02} θ1`).toBe('reject');
          if (r < p.truncation.reject_at_failures)
            expect(sprtEvaluate(plan, [...justAfter(r - 1), rej + 0.02], rej + 0.03).decision, `${p.plan}: failure ${r} at ${rej + 0.02} θ1`).toBe('continue');
        }
      }
    }
  });

  it('the exact operating characteristic of each published plan gives its published true risks', () => {
    const lines: string[] = [];
    for (const p of published.plans) {
      const plan = publishedPlan(p);
      const got = { true_alpha: sprtOperating(plan, p.d).pReject * 100, true_beta: sprtOperating(plan, 1).pAccept * 100 };
      lines.push(`${p.plan}: α′ ${got.true_alpha.toFixed(2)} % vs published ${p.true_alpha}, β′ ${got.true_beta.toFixed(2)} % vs ${p.true_beta}`);
      for (const field of ['true_alpha', 'true_beta'] as const) {
        const diff = Math.abs(got[field] - p[field]);
        // published to 0.1 %, from lines through cells rounded to 0.01 θ1 (VIII-D's two cells move its risks by ~0.1)
        if (p.doubted_risk?.field === field) expect(diff, `${p.plan} ${field}: the doubted ${p[field]}`).toBeGreaterThan(5);
        else expect(diff, `${p.plan} ${field}: ${got[field].toFixed(2)} vs ${p[field]}`).toBeLessThanOrEqual(0.11);
      }
      // and the truncated plans' true risks are not the nominal ones
      expect(Math.max(Math.abs(got.true_alpha - p.alpha), Math.abs(got.true_beta - p.beta))).toBeGreaterThan(0.5);
    }
    process.stderr.write(`MIL-HDBK-781A PRST true risks (exact OC of the published lines and truncation):\n  ${lines.join('\n  ')}\n`);
  });
});
