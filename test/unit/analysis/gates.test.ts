// Release gates: each gate's pass / conditional / fail edges as DESIGN.md's table draws them,
// thresholds from the plan, unmeasured gates left out of the verdict, and the overall verdict.
import { describe, expect, it } from 'vitest';
import { evaluateGates, overallVerdict, type GateInput, type GateResult } from '../../../src/analysis/gates.js';
import { memoryTrend } from '../../../src/analysis/leak.js';
import { DEFAULT_GATES, PlanSchema } from '../../../src/plan/schema.js';

const H = 3_600_000;

/** A run that passes every default gate: 72 h on 8 nodes, no failure, fast and clean. */
function good(over: Partial<GateInput> = {}): GateInput {
  return {
    hours: 72,
    failuresForMtbf: 0,
    mtbfLowerBoundHours: 1200,
    confidence: 0.8,
    availability: 0.9995,
    errorRate: 0.0002,
    errorRateInterval: [0.0001, 0.0004],
    errorRateScope: 'outside injected episodes',
    requests: 100_000,
    failoverMaxOutageMs: 800,
    hasService: true,
    failoverUnmeasured: null,
    failoverUnended: 0,
    recovery: { episodes: 3, recovered: 3, failed: 0, maxMs: 9000, limitMs: 60_000 },
    ttftP50Ms: 60,
    ttftP99Ms: 120,
    tpotP50Ms: 20,
    tpotP99Ms: 40,
    latencyScope: 'outside fault windows',
    memory: [{ node: 'node-a', kind: 'container', trend: memoryTrend(Array.from({ length: 50 }, (_, i) => ({ at: i * 60_000, bytes: 500e6 + ((i * 7919) % 13) * 1e5 }))) }],
    ...over,
  };
}

const byId = (gates: GateResult[], id: string): GateResult => {
  const g = gates.find((x) => x.id === id);
  if (!g) throw new Error(`no gate ${id}`);
  return g;
};
const verdictOf = (id: string, over: Partial<GateInput>, gates = DEFAULT_GATES): string => byId(evaluateGates(gates, good(over), 1000), id).verdict;

describe('release gates', () => {
  it('a clean 72 h run passes every default gate', () => {
    const gates = evaluateGates(DEFAULT_GATES, good(), 1000);
    expect(gates.map((g) => g.id)).toEqual(['spontaneous_failures', 'mtbf_lower_bound', 'availability', 'error_rate', 'failover_outage', 'recovery', 'ttft_p50', 'ttft_p99', 'tpot_p50', 'tpot_p99', 'memory_growth']);
    expect(gates.filter((g) => g.verdict !== 'pass').map((g) => `${g.id}: ${g.reason}`)).toEqual([]);
    expect(overallVerdict(gates)).toBe('pass');
  });

  it('spontaneous failures: 0–1 pass, 2–3 conditional, 4 or more fail', () => {
    expect([0, 1, 2, 3, 4, 9].map((n) => verdictOf('spontaneous_failures', { failuresForMtbf: n }))).toEqual(['pass', 'pass', 'conditional', 'conditional', 'fail', 'fail']);
  });

  it('MTBF lower bound: ≥ the target passes, under the fail line fails, between is conditional', () => {
    expect([1000, 999, 500, 100, 99.9, 0.5].map((v) => verdictOf('mtbf_lower_bound', { mtbfLowerBoundHours: v }))).toEqual(['pass', 'conditional', 'conditional', 'conditional', 'fail', 'fail']);
    // the pass line follows the plan's mtbf_target unless the gate sets its own
    expect(byId(evaluateGates(DEFAULT_GATES, good({ mtbfLowerBoundHours: 300 }), 200), 'mtbf_lower_bound').verdict).toBe('pass');
    const own = { ...DEFAULT_GATES, mtbf_lower_bound: { pass: 250 * H, conditional: 100 * H, fail: 10 * H } };
    expect(byId(evaluateGates(own, good({ mtbfLowerBoundHours: 300 }), 1000), 'mtbf_lower_bound').verdict).toBe('pass');
    expect(byId(evaluateGates(own, good({ mtbfLowerBoundHours: 5 }), 1000), 'mtbf_lower_bound').reason).toMatch(/under the fail line 10\.0 h/);
  });

  it('availability: ≥ 99.9 % pass, ≥ 99.5 % conditional, below fails; no probes is not measured', () => {
    expect([0.999, 0.9989, 0.995, 0.9949].map((v) => verdictOf('availability', { availability: v }))).toEqual(['pass', 'conditional', 'conditional', 'fail']);
    expect(verdictOf('availability', { availability: null })).toBe('not_measured');
  });

  it('error rate: < 0.1 % pass, < 0.5 % conditional, ≥ 0.5 % fails (the demo\'s 4.69 % fails)', () => {
    expect([0, 0.00099, 0.001, 0.00499, 0.005, 0.0469].map((v) => verdictOf('error_rate', { errorRate: v }))).toEqual(['pass', 'pass', 'conditional', 'conditional', 'fail', 'fail']);
    const g = byId(evaluateGates(DEFAULT_GATES, good({ errorRate: 0.0469, errorRateInterval: [0.04, 0.055], requests: 1200 }), 1000), 'error_rate');
    expect(g.reason).toBe('4.690 % (95 % interval 4.000 %–5.500 %) of 1200 requests, outside injected episodes (errors and timeouts); pass < 0.1 %, conditional < 0.5 %');
  });

  it('failover: under 2 s passes; a plan without a service endpoint cannot measure it', () => {
    expect(verdictOf('failover_outage', { failoverMaxOutageMs: 1999 })).toBe('pass');
    expect(verdictOf('failover_outage', { failoverMaxOutageMs: 2000 })).toBe('fail');
    expect(verdictOf('failover_outage', { failoverMaxOutageMs: null })).toBe('pass');
    expect(verdictOf('failover_outage', { hasService: false, failoverMaxOutageMs: null })).toBe('not_measured');
    // an outage that never ended is the worst case, not a pass; no per-request rows or no fault: not measured
    expect(verdictOf('failover_outage', { failoverMaxOutageMs: null, failoverUnended: 1 })).toBe('fail');
    expect(verdictOf('failover_outage', { failoverMaxOutageMs: null, failoverUnmeasured: 'no fault was injected' })).toBe('not_measured');
  });

  it('recovery: every failed node serving again within the limit; one past it fails', () => {
    expect(verdictOf('recovery', { recovery: { episodes: 2, recovered: 2, failed: 0, maxMs: 59_000, limitMs: 60_000 } })).toBe('pass');
    expect(verdictOf('recovery', { recovery: { episodes: 2, recovered: 1, failed: 1, maxMs: 5000, limitMs: 60_000 } })).toBe('fail');
    expect(verdictOf('recovery', { recovery: { episodes: 0, recovered: 0, failed: 0, maxMs: null, limitMs: 60_000 } })).toBe('not_measured');
  });

  it('latency: ttft p50 < 100 / p99 < 150 ms, tpot p50 < 30 / p99 < 50 ms; unmeasured when nothing streamed', () => {
    expect(verdictOf('ttft_p50', { ttftP50Ms: 99.9 })).toBe('pass');
    expect(verdictOf('ttft_p50', { ttftP50Ms: 100 })).toBe('fail');
    expect(verdictOf('ttft_p99', { ttftP99Ms: 151 })).toBe('fail');
    expect(verdictOf('tpot_p50', { tpotP50Ms: 31 })).toBe('fail');
    expect(verdictOf('tpot_p99', { tpotP99Ms: null })).toBe('not_measured');
  });

  it('memory: a slope whose interval lies above 0 fails; flat memory passes; no telemetry is not measured', () => {
    const leak = memoryTrend(Array.from({ length: 60 }, (_, i) => ({ at: i * 60_000, bytes: 500e6 + i * 2e6 })), { limitBytes: 2e9 });
    const g = byId(evaluateGates(DEFAULT_GATES, good({ memory: [{ node: 'node-b', kind: 'container', trend: leak }], hours: 1 }), 1000), 'memory_growth');
    expect(g.verdict).toBe('fail');
    expect(g.reason).toMatch(/^grows \(95 % interval of the slope above 0\): node-b container 114\.4 MiB\/h, 2746\.6 MiB per 24 h, at its limit in /);
    expect(verdictOf('memory_growth', { memory: [] })).toBe('not_measured');
  });

  it('the overall verdict: any fail fails, else any conditional is conditional; not measured counts for nothing', () => {
    const g = (v: GateResult['verdict']): GateResult => ({ id: 'x', title: 'x', verdict: v, value: null, unit: '', thresholds: { pass: 0 }, reason: '' });
    expect(overallVerdict([g('pass'), g('not_measured')])).toBe('pass');
    expect(overallVerdict([g('pass'), g('conditional'), g('not_measured')])).toBe('conditional');
    expect(overallVerdict([g('conditional'), g('fail')])).toBe('fail');
    expect(overallVerdict([])).toBe('pass');
  });

  it('every threshold is a plan setting: gates read from a plan, false turns one off', () => {
    const base = { name: 'p', duration: '1h', targets: [{ name: 'a', endpoint: 'http://127.0.0.1:1' }], load: { rate: 1 } };
    const plan = PlanSchema.parse({ ...base, gates: { availability: { conditional: 0.98 }, ttft: { p50: '250ms', p99: '1s' }, mtbf_lower_bound: false, conditional_fails: true } });
    expect(plan.gates.availability).toEqual({ pass: 0.999, conditional: 0.98 });
    expect(plan.gates.ttft).toEqual({ p50: 250, p99: 1000 });
    expect(plan.gates.error_rate).toEqual({ pass: 0.001, conditional: 0.005 });
    const gates = evaluateGates(plan.gates, good({ availability: 0.991, ttftP50Ms: 200 }), 1000);
    expect(byId(gates, 'availability').verdict).toBe('conditional');
    expect(gates.some((x) => x.id === 'mtbf_lower_bound')).toBe(false);
    expect(byId(gates, 'ttft_p50').verdict).toBe('pass');
    expect(PlanSchema.parse(base).gates).toEqual(DEFAULT_GATES);
    expect(() => PlanSchema.parse({ ...base, gates: { availability: { pass: 99.9 } } })).toThrow(/share between 0 and 1/);
    expect(() => PlanSchema.parse({ ...base, gates: { ttft_p50: 100 } })).toThrow();
    // thresholds that leave a verdict no band are refused
    expect(() => PlanSchema.parse({ ...base, gates: { mtbf_lower_bound: { pass: '50h' } } })).toThrow(/expected conditional ≤ pass, got 500h > 50h \(a threshold left out takes its default: set both\)/);
    expect(() => PlanSchema.parse({ ...base, gates: { error_rate: { pass: 0.01, conditional: 0.005 } } })).toThrow(/expected pass ≤ conditional/);
    expect(() => PlanSchema.parse({ ...base, sequential: { discrimination: 1.05 } })).toThrow(/from 1\.25 to 10/);
    expect(PlanSchema.parse({ ...base, sequential: { mil_plan: 'I-D' } }).sequential).toMatchObject({ discrimination: 1.5, alpha: 0.1, beta: 0.1 });
  });
});
