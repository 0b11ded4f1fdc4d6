// gauntlet compare <run-a> <run-b>: what got better or worse from one run to the next (a nightly
// soak against last night's), each difference with the test that says whether it is more than
// chance, and every release gate's verdict then and now. For the terminal, JSON and HTML.
import { compareErrorRates, compareFailureRates, compareQuantiles, compareSamples, SIGNIFICANCE, type Comparison } from '../analysis/compare.js';
import { mergeHistograms } from '../analysis/histogram.js';
import { percentileSorted } from '../analysis/stats.js';
import type { Store } from '../store/store.js';
import { buildReport, type ReportJson } from './build.js';

export interface RunComparison {
  a: { id: string; plan: string; started_at: string; verdict: string; exposure_node_hours: number };
  b: { id: string; plan: string; started_at: string; verdict: string; exposure_node_hours: number };
  /** Different plans: the comparison still holds per measure, but say so. */
  same_plan: boolean;
  significance: number;
  comparisons: Comparison[];
  /** Figures shown side by side with no test (probe availability is not a sample of independent trials). */
  untested: { measure: string; a: number | null; b: number | null; unit: string; why: string }[];
  gates: { id: string; title: string; a: string | null; b: string | null; changed: boolean }[];
  better: string[];
  worse: string[];
}

const median = (v: readonly number[]): number | null => percentileSorted([...v].sort((x, y) => x - y), 50);

function recoveryTimes(r: ReportJson, kind: string | null): number[] {
  const kindOf = new Map(r.faults.map((f) => [f.id, f.kind]));
  return r.episodes.filter((e) => e.recovery_ms !== null && e.cause !== 'orchestrator' && (kind === null || (e.fault_id ? kindOf.get(e.fault_id) : e.cause) === kind)).map((e) => e.recovery_ms as number);
}

export function compareRuns(store: Store, idA: string, idB: string): RunComparison {
  const A = buildReport(store, idA).report;
  const B = buildReport(store, idB).report;
  const comparisons: Comparison[] = [];
  comparisons.push(compareFailureRates(A.failures.counted_for_mtbf, A.exposure_node_hours, B.failures.counted_for_mtbf, B.exposure_node_hours));
  comparisons.push(compareErrorRates(A.requests.failed, A.requests.total, B.requests.failed, B.requests.total));
  comparisons.push(compareSamples('recovery time p50, all failures', recoveryTimes(A, null), recoveryTimes(B, null), 'ms', median));
  const kinds = new Set([...A.faults, ...B.faults].map((f) => f.kind));
  for (const k of [...kinds].sort()) {
    const a = recoveryTimes(A, k);
    const b = recoveryTimes(B, k);
    if (a.length + b.length > 0) comparisons.push(compareSamples(`recovery time p50, ${k}`, a, b, 'ms', median));
  }
  for (const metric of ['ttft', 'tpot', 'e2e'] as const) {
    const ha = mergeHistograms(store.latencyTotals(idA, metric).map((x) => x.hist));
    const hb = mergeHistograms(store.latencyTotals(idB, metric).map((x) => x.hist));
    for (const p of [50, 99]) comparisons.push(compareQuantiles(`${metric} p${p}`, p, ha, hb));
  }
  const untested: RunComparison['untested'] = [
    { measure: 'availability', a: A.availability.value, b: B.availability.value, unit: 'share', why: 'health probes a few seconds apart are not independent trials: shown, not tested' },
    { measure: 'MTBF lower bound', a: A.mtbf.lower_bound_hours, b: B.mtbf.lower_bound_hours, unit: 'h', why: `at ${Math.round(A.mtbf.confidence * 100)} % / ${Math.round(B.mtbf.confidence * 100)} %; the failure-rate test above compares the runs` },
    { measure: 'requests/s', a: A.reliability?.throughput.requests_per_s ?? null, b: B.reliability?.throughput.requests_per_s ?? null, unit: '/s', why: 'set by the plan' },
  ];
  const ids = [...new Set([...(A.gates ?? []).map((g) => g.id), ...(B.gates ?? []).map((g) => g.id)])];
  const gates = ids.map((id) => {
    const ga = A.gates?.find((g) => g.id === id);
    const gb = B.gates?.find((g) => g.id === id);
    return { id, title: (gb ?? ga)?.title ?? id, a: ga?.verdict ?? null, b: gb?.verdict ?? null, changed: (ga?.verdict ?? null) !== (gb?.verdict ?? null) };
  });
  const head = (r: ReportJson) => ({ id: r.run.id, plan: r.run.plan, started_at: r.run.started_at, verdict: r.verdict ?? '—', exposure_node_hours: r.exposure_node_hours });
  return {
    a: head(A),
    b: head(B),
    same_plan: A.run.plan === B.run.plan,
    significance: SIGNIFICANCE,
    comparisons,
    untested,
    gates,
    better: comparisons.filter((c) => c.direction === 'better').map((c) => c.measure),
    worse: comparisons.filter((c) => c.direction === 'worse').map((c) => c.measure),
  };
}

function fmt(x: number | null, unit: string): string {
  if (x === null) return '—';
  if (unit === 'share') return `${(x * 100).toFixed(3)} %`;
  if (unit === 'ms') return x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(1)} ms`;
  if (unit === '/node-hour') return x === 0 ? '0' : x.toPrecision(3);
  if (unit === 'h') return `${x.toFixed(x >= 100 ? 0 : 2)} h`;
  return x.toFixed(2);
}
const change = (c: number | null): string => (c === null ? '' : `${c >= 0 ? '+' : ''}${(c * 100).toFixed(1)} %`);

export function compareText(c: RunComparison): string[] {
  const out = [`A ${c.a.id} (${c.a.plan}, ${c.a.started_at}, verdict ${c.a.verdict})`, `B ${c.b.id} (${c.b.plan}, ${c.b.started_at}, verdict ${c.b.verdict})`];
  if (!c.same_plan) out.push('(different plans: each measure is compared, but the runs did not face the same load and faults)');
  out.push('', `${'measure'.padEnd(34)} ${'A'.padStart(12)} ${'B'.padStart(12)} ${'change'.padStart(9)}  verdict`);
  for (const x of c.comparisons) out.push(`${x.measure.padEnd(34)} ${fmt(x.a, x.unit).padStart(12)} ${fmt(x.b, x.unit).padStart(12)} ${change(x.relative_change).padStart(9)}  ${x.direction === 'same' ? (x.significant ? 'different' : 'no significant change') : x.direction.toUpperCase()} — ${x.test}`);
  for (const u of c.untested) out.push(`${u.measure.padEnd(34)} ${fmt(u.a, u.unit).padStart(12)} ${fmt(u.b, u.unit).padStart(12)} ${''.padStart(9)}  (${u.why})`);
  const moved = c.gates.filter((g) => g.changed);
  out.push('', moved.length ? `gates that changed: ${moved.map((g) => `${g.title} ${g.a ?? '—'} → ${g.b ?? '—'}`).join('; ')}` : 'no gate changed its verdict');
  out.push(`better: ${c.better.length ? c.better.join(', ') : 'nothing'}; worse: ${c.worse.length ? c.worse.join(', ') : 'nothing'} (significance level ${c.significance})`);
  return out;
}

const esc = (s: unknown): string => String(s ?? '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function compareHtml(c: RunComparison): string {
  const colour = (d: string): string => (d === 'better' ? '#2e7d32' : d === 'worse' ? '#c62828' : '#555');
  const rows = c.comparisons
    .map((x) => `<tr><td>${esc(x.measure)}</td><td>${esc(fmt(x.a, x.unit))}</td><td>${esc(fmt(x.b, x.unit))}</td><td>${esc(change(x.relative_change))}</td><td style="color:${colour(x.direction)};font-weight:bold">${esc(x.direction === 'same' ? 'no significant change' : x.direction)}</td><td>${esc(x.test)}</td></tr>`)
    .join('');
  const untested = c.untested.map((u) => `<tr><td>${esc(u.measure)}</td><td>${esc(fmt(u.a, u.unit))}</td><td>${esc(fmt(u.b, u.unit))}</td><td></td><td>—</td><td>${esc(u.why)}</td></tr>`).join('');
  const gates = c.gates.map((g) => `<tr${g.changed ? ' style="background:#fff3e0"' : ''}><td>${esc(g.title)}</td><td>${esc(g.a ?? '—')}</td><td>${esc(g.b ?? '—')}</td></tr>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Gauntlet — ${esc(c.a.id)} vs ${esc(c.b.id)}</title>
<style>body{font:14px/1.45 Helvetica,Arial,sans-serif;color:#222;max-width:1100px;margin:0 auto;padding:24px}table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0 18px}th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f3f3f3}.sub{color:#666;font-size:12px}</style></head>
<body><h1>Run against run</h1>
<p>A <code>${esc(c.a.id)}</code> (${esc(c.a.plan)}, ${esc(c.a.started_at)}, verdict ${esc(c.a.verdict)}, ${c.a.exposure_node_hours} node-hours)<br>B <code>${esc(c.b.id)}</code> (${esc(c.b.plan)}, ${esc(c.b.started_at)}, verdict ${esc(c.b.verdict)}, ${c.b.exposure_node_hours} node-hours)</p>
${c.same_plan ? '' : '<p><b>Different plans</b>: each measure is compared, but the runs did not face the same load and faults.</p>'}
<p><b>Better:</b> ${esc(c.better.join(', ') || 'nothing')} · <b>Worse:</b> ${esc(c.worse.join(', ') || 'nothing')} <span class="sub">(a change counts when its test says so at the ${c.significance} level)</span></p>
<table><thead><tr><th>measure</th><th>A</th><th>B</th><th>change</th><th>verdict</th><th>test</th></tr></thead><tbody>${rows}${untested}</tbody></table>
<h2>Release gates</h2><table><thead><tr><th>gate</th><th>A</th><th>B</th></tr></thead><tbody>${gates}</tbody></table>
<p class="sub">Failure rates: conditional binomial test of two Poisson rates. Error rates: two-proportion z-test. Recovery times: Mann-Whitney U. Latency percentiles: 95 % distribution-free (order-statistic) intervals from each run's merged histograms, different when they do not overlap.</p>
</body></html>
`;
}
