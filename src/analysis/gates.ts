// Release gates: the run's numbers against the plan's thresholds (DESIGN.md, Certification
// gates), each pass / conditional / fail with the reason in words, and the overall verdict.
// Pure: numbers in, verdicts out. A gate whose number the run could not measure (no service
// endpoint, no streamed tokens, no telemetry) says so and does not count towards the verdict.
import type { PlanGates } from '../plan/schema.js';
import type { LeakResult } from './leak.js';

export type GateVerdict = 'pass' | 'conditional' | 'fail' | 'not_measured';

export interface GateResult {
  /** Stable id: spontaneous_failures, mtbf_lower_bound, availability, error_rate, failover_outage, recovery, ttft_p50, ttft_p99, tpot_p50, tpot_p99, memory_growth. */
  id: string;
  title: string;
  verdict: GateVerdict;
  value: number | null;
  unit: string;
  /** The thresholds as the plan set them, in the gate's unit. */
  thresholds: { pass: number; conditional?: number; fail?: number };
  reason: string;
}

export interface GateInput {
  hours: number;
  /** Spontaneous failures plus failed recoveries (what MTBF counts). */
  failuresForMtbf: number;
  mtbfLowerBoundHours: number;
  confidence: number;
  availability: number | null;
  /** The error rate the gate judges, and which one it is. */
  errorRate: number | null;
  errorRateInterval: [number, number] | null;
  errorRateScope: 'outside injected episodes' | 'all requests';
  requests: number;
  /** The service endpoint's longest outage when a node failed, ms (null: nothing failed there). */
  failoverMaxOutageMs: number | null;
  hasService: boolean;
  /** Why failover could not be measured though there is a service (no per-request rows, no fault injected); null when it was. */
  failoverUnmeasured: string | null;
  /** Outages at the service that began during a fault and never ended (the service did not serve again before the load ended). */
  failoverUnended: number;
  /** Failures (episodes, not Gauntlet's own), those served again, those past the limit (recovery_failed), the slowest recovery. */
  recovery: { episodes: number; recovered: number; failed: number; maxMs: number | null; limitMs: number };
  ttftP50Ms: number | null;
  ttftP99Ms: number | null;
  tpotP50Ms: number | null;
  tpotP99Ms: number | null;
  latencyScope: 'outside fault windows' | 'all requests';
  /** One per node and memory kind (container, GPU). */
  memory: { node: string; kind: string; trend: LeakResult }[];
}

const pct = (x: number, digits = 2): string => `${(x * 100).toFixed(digits)} %`;
const ms = (x: number): string => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(x < 10 ? 1 : 0)} ms`);
const hrs = (x: number): string => `${x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x >= 0.001 ? x.toFixed(3) : x.toPrecision(2)} h`;
const mib = (b: number): string => `${(b / 1_048_576).toFixed(1)} MiB`;

/** Higher is better: ≥ pass passes, ≥ conditional is conditional, else fail. */
function atLeast(value: number, pass: number, conditional: number | undefined): GateVerdict {
  if (value >= pass) return 'pass';
  if (conditional !== undefined && value >= conditional) return 'conditional';
  return 'fail';
}

export function evaluateGates(g: PlanGates, input: GateInput, mtbfTargetHours: number): GateResult[] {
  const out: GateResult[] = [];
  if (g.spontaneous_failures !== false) {
    const { pass, conditional } = g.spontaneous_failures;
    const v = input.failuresForMtbf;
    const verdict: GateVerdict = v <= pass ? 'pass' : v <= conditional ? 'conditional' : 'fail';
    out.push({ id: 'spontaneous_failures', title: 'Spontaneous failures', verdict, value: v, unit: 'failures', thresholds: { pass, conditional }, reason: `${v} in ${hrs(input.hours)} of load (spontaneous and failed recoveries; injected faults measure recovery); pass ≤ ${pass}, conditional ≤ ${conditional}` });
  }
  if (g.mtbf_lower_bound !== false) {
    const pass = (g.mtbf_lower_bound.pass ?? mtbfTargetHours * 3_600_000) / 3_600_000;
    const conditional = g.mtbf_lower_bound.conditional / 3_600_000;
    const fail = g.mtbf_lower_bound.fail / 3_600_000;
    const v = input.mtbfLowerBoundHours;
    const verdict: GateVerdict = v >= pass ? 'pass' : v < fail ? 'fail' : 'conditional';
    const why = v >= pass ? 'demonstrated' : v >= conditional ? `above the conditional line ${hrs(conditional)}` : v >= fail ? `not enough evidence either way (under ${hrs(conditional)}, above the fail line ${hrs(fail)})` : `under the fail line ${hrs(fail)}`;
    out.push({ id: 'mtbf_lower_bound', title: `MTBF lower bound (${pct(input.confidence, 0)})`, verdict, value: v, unit: 'h', thresholds: { pass, conditional, fail }, reason: `${hrs(v)} at ${pct(input.confidence, 0)} confidence against ${hrs(pass)}: ${why}` });
  }
  if (g.availability !== false) {
    const { pass, conditional } = g.availability;
    const v = input.availability;
    out.push(v === null
      ? { id: 'availability', title: 'Availability', verdict: 'not_measured', value: null, unit: 'share', thresholds: { pass, conditional }, reason: 'no health probes answered or sent' }
      : { id: 'availability', title: 'Availability', verdict: atLeast(v, pass, conditional), value: v, unit: 'share', thresholds: { pass, conditional }, reason: `${pct(v, 3)} of probe time (health probes); pass ≥ ${pct(pass, 1)}, conditional ≥ ${pct(conditional, 1)}` });
  }
  if (g.error_rate !== false) {
    const { pass, conditional } = g.error_rate;
    const v = input.errorRate;
    const ci = input.errorRateInterval ? ` (95 % interval ${pct(input.errorRateInterval[0], 3)}–${pct(input.errorRateInterval[1], 3)})` : '';
    out.push(v === null
      ? { id: 'error_rate', title: 'Error rate', verdict: 'not_measured', value: null, unit: 'share', thresholds: { pass, conditional }, reason: 'no requests' }
      : { id: 'error_rate', title: 'Error rate', verdict: v < pass ? 'pass' : v < conditional ? 'conditional' : 'fail', value: v, unit: 'share', thresholds: { pass, conditional }, reason: `${pct(v, 3)}${ci} of ${input.requests} requests, ${input.errorRateScope} (errors and timeouts); pass < ${pct(pass, 1)}, conditional < ${pct(conditional, 1)}` });
  }
  if (g.failover_outage !== false) {
    const pass = g.failover_outage.pass;
    const v = input.failoverMaxOutageMs;
    const title = 'Client-visible outage on node failure';
    out.push(
      !input.hasService
        ? { id: 'failover_outage', title, verdict: 'not_measured', value: null, unit: 'ms', thresholds: { pass }, reason: 'the plan has no service endpoint in front of the nodes (plan.service)' }
        : input.failoverUnmeasured !== null
          ? { id: 'failover_outage', title, verdict: 'not_measured', value: null, unit: 'ms', thresholds: { pass }, reason: input.failoverUnmeasured }
          : input.failoverUnended > 0
            ? { id: 'failover_outage', title, verdict: 'fail', value: null, unit: 'ms', thresholds: { pass }, reason: `${input.failoverUnended} outage(s) at the service endpoint never ended: it did not serve again before the load ended${v === null ? '' : `; the longest that ended ${ms(v)}`}` }
            : { id: 'failover_outage', title, verdict: v === null || v < pass ? 'pass' : 'fail', value: v ?? 0, unit: 'ms', thresholds: { pass }, reason: v === null ? 'no request failed at the service endpoint while nodes were faulted' : `longest ${ms(v)} at the service endpoint; pass < ${ms(pass)}` },
    );
  }
  if (g.recovery) {
    const r = input.recovery;
    out.push(r.episodes === 0
      ? { id: 'recovery', title: 'Node recovery', verdict: 'not_measured', value: null, unit: 'ms', thresholds: { pass: r.limitMs }, reason: 'no node failed' }
      : {
          id: 'recovery',
          title: 'Node recovery',
          verdict: r.failed === 0 && (r.maxMs === null || r.maxMs <= r.limitMs) ? 'pass' : 'fail',
          value: r.maxMs,
          unit: 'ms',
          thresholds: { pass: r.limitMs },
          reason: `${r.recovered} of ${r.episodes} failures served again${r.maxMs === null ? '' : `, the slowest after ${ms(r.maxMs)}`}; ${r.failed} past the recovery limit ${ms(r.limitMs)}${r.episodes - r.recovered - r.failed > 0 ? `; ${r.episodes - r.recovered - r.failed} still open at the end, within the limit (not judged)` : ''}`,
        });
  }
  const latency = (id: string, title: string, v: number | null, limit: number, what: string): GateResult =>
    v === null
      ? { id, title, verdict: 'not_measured', value: null, unit: 'ms', thresholds: { pass: limit }, reason: `no ${what} measured${input.latencyScope === 'outside fault windows' ? ' outside the fault windows' : ''}` }
      : { id, title, verdict: v < limit ? 'pass' : 'fail', value: v, unit: 'ms', thresholds: { pass: limit }, reason: `${ms(v)} (${input.latencyScope}); pass < ${ms(limit)}` };
  if (g.ttft !== false) {
    out.push(latency('ttft_p50', 'TTFT p50', input.ttftP50Ms, g.ttft.p50, 'time to first token (streamed responses)'));
    out.push(latency('ttft_p99', 'TTFT p99', input.ttftP99Ms, g.ttft.p99, 'time to first token (streamed responses)'));
  }
  if (g.tpot !== false) {
    out.push(latency('tpot_p50', 'Per-token latency p50', input.tpotP50Ms, g.tpot.p50, 'per-output-token latency'));
    out.push(latency('tpot_p99', 'Per-token latency p99', input.tpotP99Ms, g.tpot.p99, 'per-output-token latency'));
  }
  if (g.memory_growth !== false) {
    const judged = input.memory.filter((m) => m.trend.slopeBytesPerHour !== null);
    const growing = judged.filter((m) => m.trend.growing);
    const worst = [...judged].sort((a, b) => (b.trend.slopeBytesPerHour as number) - (a.trend.slopeBytesPerHour as number))[0];
    const conf = pct(g.memory_growth.confidence, 0);
    out.push(judged.length === 0
      ? { id: 'memory_growth', title: 'Memory growth', verdict: 'not_measured', value: null, unit: 'bytes/h', thresholds: { pass: 0 }, reason: 'no memory telemetry with at least 3 samples' }
      : {
          id: 'memory_growth',
          title: 'Memory growth',
          verdict: growing.length ? 'fail' : 'pass',
          value: worst?.trend.slopeBytesPerHour ?? null,
          unit: 'bytes/h',
          thresholds: { pass: 0 },
          reason: growing.length
            ? `grows (${conf} interval of the slope above 0): ${growing.map((m) => `${m.node} ${m.kind} ${mib(m.trend.slopeBytesPerHour as number)}/h, ${mib(m.trend.per24hBytes as number)} per 24 h${m.trend.hoursToLimit !== null ? `, at its limit in ${hrs(m.trend.hoursToLimit)}` : ''}`).join('; ')}`
            : `no significant growth on ${judged.length} series (${conf}); the steepest ${worst ? `${worst.node} ${worst.kind} ${mib(worst.trend.slopeBytesPerHour as number)}/h` : '—'}${input.hours < 24 ? ` — over ${hrs(input.hours)}, not the 24 h the criterion names` : ''}`,
        });
  }
  return out;
}

export type Verdict = 'pass' | 'conditional' | 'fail';

/** The overall verdict: any failed gate fails, any conditional one makes it conditional. */
export function overallVerdict(gates: readonly GateResult[]): Verdict {
  if (gates.some((x) => x.verdict === 'fail')) return 'fail';
  if (gates.some((x) => x.verdict === 'conditional')) return 'conditional';
  return 'pass';
}
