// report.html: one self-contained file for people — the verdict and the gates first, then the
// numbers with how each was measured, the charts (vega-lite drawn to inline SVG at report time),
// episodes and faults. No script, no font, no image from anywhere: it opens with no network.
import type { ChartSpec } from './charts.js';
import type { ReportJson } from './build.js';

const esc = (s: unknown): string =>
  String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
const ms = (x: number | null | undefined): string => (x === null || x === undefined ? '—' : x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(x < 10 ? 1 : 0)} ms`);
const pct = (x: number | null | undefined, d = 2): string => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(d)} %`);
const hrs = (x: number | null | undefined): string => (x === null || x === undefined ? '—' : x >= 100 ? `${x.toFixed(0)} h` : x >= 1 ? `${x.toFixed(2)} h` : x >= 0.01 ? `${x.toFixed(3)} h` : `${x.toPrecision(2)} h`);
const num = (x: number | null | undefined, d = 2): string => (x === null || x === undefined ? '—' : x.toFixed(d));

const MARK: Record<string, [string, string]> = { pass: ['pass', '#2e7d32'], conditional: ['conditional', '#ef6c00'], fail: ['fail', '#c62828'], not_measured: ['not measured', '#757575'] };
const mark = (v: string): [string, string] => MARK[v] ?? [v, '#757575'];
const badge = (v: string): string => `<span class="badge" style="background:${mark(v)[1]}">${esc(mark(v)[0])}</span>`;

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

const CSS = `
body{font:14px/1.45 Helvetica,Arial,sans-serif;color:#222;margin:0;background:#fafafa}
main{max-width:1000px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;font-size:13px}.verdict{display:flex;align-items:center;gap:14px;margin:18px 0 6px;padding:12px 16px;border-radius:6px;color:#fff;font-size:18px}
.badge{display:inline-block;color:#fff;border-radius:3px;padding:1px 7px;font-size:12px;white-space:nowrap}
table{border-collapse:collapse;width:100%;margin:6px 0 10px;font-size:13px}th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.kpis{display:grid;grid-template-columns:repeat(3,1fr);gap:10px;margin:12px 0}.kpi{border:1px solid #e3e3e3;border-radius:6px;padding:8px 10px}.kpi b{display:block;font-size:18px}.kpi span{color:#666;font-size:12px}
figure{margin:14px 0 18px}figcaption{color:#555;font-size:12px;max-width:900px}.warn{background:#fff3e0;border-left:4px solid #ef6c00;padding:8px 12px;margin:10px 0}
svg{max-width:100%;height:auto}code{background:#f3f3f3;padding:0 3px}
`;

export function renderHtml(r: ReportJson, charts: { chart: ChartSpec; svg: string }[]): string {
  const v = mark(r.verdict);
  const rel = r.reliability;
  const sq = rel.sequential;
  const scaled = r.run.time_scale !== 1;
  const body: string[] = [];
  body.push(`<h1>Gauntlet report — ${esc(r.run.plan)}</h1>`);
  body.push(`<div class="sub">run <code>${esc(r.run.id)}</code> · ${esc(r.run.status)} · ${esc(r.run.started_at)} → ${esc(r.run.ended_at ?? '—')} · engine ${esc(r.run.engine?.name ?? '?')} · host ${esc(r.run.host ?? '?')} · Gauntlet ${esc(r.run.gauntlet_version ?? '?')}</div>`);
  if (r.run.error) body.push(`<div class="warn">The run ended ${esc(r.run.status)}: ${esc(r.run.error)}</div>`);
  if (r.run.time_scale === null) body.push('<div class="warn"><b>Virtual clock</b>: this run ran on a test\'s virtual clock against stand-ins; no real time passed.</div>');
  else if (scaled) body.push(`<div class="warn"><b>Time-scaled ×${esc(r.run.time_scale)}</b>: plan time ran ${esc(r.run.time_scale)} times faster than real time. Exposure, MTBF and every duration here are in plan time; this demonstrates no real MTBF.</div>`);
  if (!r.generator.kept_up) body.push(`<div class="warn"><b>Load generator saturated</b>: behind for ${pct(r.generator.behind_share, 1)} of the load (limit ${pct(r.generator.limit_share, 0)}). Latency in those windows is the generator's, not the server's; no verdict should be trusted.</div>`);
  const counts = (k: string): number => r.gates.filter((g) => g.verdict === k).length;
  body.push(`<div class="verdict" style="background:${v[1]}"><b>Verdict: ${esc(v[0].toUpperCase())}</b><span>${counts('pass')} pass · ${counts('conditional')} conditional · ${counts('fail')} fail · ${counts('not_measured')} not measured${r.verdict_fails_run ? ' — the run fails (exit 4)' : ''}</span></div>`);
  body.push(table(['gate', 'verdict', 'measured, and against what'], r.gates.map((g) => [esc(g.title), badge(g.verdict), esc(g.reason)])));

  const m = r.mtbf;
  body.push('<div class="kpis">');
  const kpi = (value: string, label: string): string => `<div class="kpi"><b>${value}</b><span>${esc(label)}</span></div>`;
  body.push(kpi(`≥ ${hrs(m.lower_bound_hours)}`, `MTBF at ${pct(m.confidence, 0)} confidence (target ${hrs(m.target_hours)})`));
  body.push(kpi(hrs(r.exposure_node_hours), `exposure, node-hours${scaled ? ' (plan time)' : ''}`));
  body.push(kpi(pct(r.availability.value, 3), 'availability (health probes)'));
  body.push(kpi(pct(r.requests.error_rate, 3), `error rate, ${r.requests.failed} of ${r.requests.total} requests`));
  body.push(kpi(ms(r.latency.ttft_p50_ms), `ttft p50 (p99 ${ms(r.latency.ttft_p99_ms)})`));
  body.push(kpi(ms(r.recovery.p50_ms), `recovery p50 of ${r.recovery.count} (max ${ms(r.recovery.max_ms)})`));
  body.push(kpi(num(rel.throughput.requests_per_s), `requests/s (${num(rel.throughput.output_tokens_per_s, 1)} output tokens/s)`));
  body.push(kpi(`${r.failures.spontaneous} / ${r.failures.injected}`, 'failures: spontaneous / injected'));
  const gp = r.requests.goodput;
  body.push(kpi(pct(gp?.share ?? null, 2), gp ? `goodput: within ttft ≤ ${ms(gp.slo_ttft_ms)} and tpot ≤ ${ms(gp.slo_tpot_ms)}` : 'goodput (needs per-request rows)'));
  body.push('</div>');

  body.push('<h2>MTBF</h2>');
  body.push(`<p>${m.point_hours === null ? 'No failure counted: there is no point estimate, only a lower bound.' : `Point estimate ${hrs(m.point_hours)} (T/r).`} MTBF counts spontaneous failures and failed recoveries over exposure (time under load, less injected episodes and Gauntlet's own downtime); injected faults measure recovery. Bounds are from a time-terminated test under a constant failure rate: MTBF ≥ 2T / χ²(C; 2r+2).</p>`);
  body.push(
    table(
      ['confidence', 'MTBF ≥', 'two-sided interval', `shows ${hrs(m.target_hours)}?`, 'more node-hours needed (no more failures)', 'with 1 / 2 more failures'],
      rel.mtbf_bounds.map((b) => [pct(b.confidence, 0), hrs(b.lower_bound_hours), `${hrs(b.interval_hours[0])} – ${b.interval_hours[1] === null ? '∞' : hrs(b.interval_hours[1])}`, b.demonstrated ? 'yes' : 'no', hrs(b.more_node_hours_needed).replace(/ h$/, ''), b.more_node_hours_needed_with_failures.map((x) => hrs(x.node_hours).replace(/ h$/, '')).join(' / ')]),
    ),
  );
  body.push(
    `<p><b>Sequential test</b> (${sq.plan ? `MIL-HDBK-781 PRST plan ${esc(sq.plan)}` : 'probability-ratio test'}: θ0 = ${hrs(sq.theta0_hours)}, θ1 = ${hrs(sq.theta1_hours)}, α = ${sq.alpha}, β = ${sq.beta}; truncated at ${sq.truncation.failures} failures or ${Math.round(sq.truncation.node_hours)} node-hours; true risks of the truncated test α′ = ${pct(sq.true_risks.alpha, 1)}, β′ = ${pct(sq.true_risks.beta, 1)}): <b>${esc(sq.decision)}</b>${
      sq.decision === 'continue' ? ` after ${hrs(sq.node_hours).replace(/ h$/, '')} node-hours with ${sq.failures} failure(s) — ${Math.round(sq.node_hours_to_accept)} more node-hours without a failure would accept, ${sq.failures_to_reject} more failure(s) now would reject` : ` at ${hrs(sq.decided_at_node_hours).replace(/ h$/, '')} node-hours (${esc(sq.by)})`
    }. Expected test time: ${Math.round(sq.expected_node_hours.at_theta0)} node-hours if the MTBF is θ0, ${Math.round(sq.expected_node_hours.at_theta1)} if it is θ1.</p>`,
  );
  const trendRow = (t: ReportJson['reliability']['trend']['failures']): string[] => [esc(t.what), String(t.events), t.laplace_u === null ? '—' : `U = ${num(t.laplace_u)} (p = ${num(t.laplace_p_worse, 3)})`, t.crow_amsaa_beta === null ? '—' : `β = ${num(t.crow_amsaa_beta)} (90 %: ${num(t.crow_amsaa_beta_interval?.[0])} – ${num(t.crow_amsaa_beta_interval?.[1])})`, t.worsening ? '<b>yes</b>' : 'no'];
  body.push('<h2>Trend</h2>');
  body.push(table(['events', 'count', 'Laplace (getting worse)', 'Crow-AMSAA shape', 'accelerating'], [trendRow(rel.trend.failures), trendRow(rel.trend.soft_events)]));
  body.push('<p class="sub">Laplace: U ~ N(0,1) when events come at a constant rate; a small p says they come more often later. Crow-AMSAA: β &gt; 1 means events accelerate (a leak, wear); accelerating is said when β’s 90 % interval lies above 1, or p &lt; 0.05 with 3 or more events. Nodes pooled over the load’s span.</p>');

  body.push('<h2>Charts</h2>');
  for (const c of charts) body.push(`<figure id="chart-${esc(c.chart.id)}"><h3>${esc(c.chart.title)}</h3>${c.svg}<figcaption>${esc(c.chart.caption)}</figcaption></figure>`);

  body.push('<h2>Recovery</h2>');
  body.push(`<p>Recovery = serving again (the first successful response’s start among inferences sent after the failure) − first evidence (Docker die/oom, or the first failed probe or request). Parts (p50): detect ${ms(r.recovery.detect_p50_ms)}, restart ${ms(r.recovery.restart_p50_ms)}, ready ${ms(r.recovery.ready_p50_ms)}. Percentiles are nearest-rank with 90 % bootstrap intervals.</p>`);
  if (rel.recovery_by.length)
    body.push(table(['by', '', 'n', 'p50', 'p95', 'p99', 'max'], rel.recovery_by.map((x) => [x.group, esc(x.key), String(x.count), `${ms(x.p50_ms)}${x.p50_interval_ms ? ` <span class="sub">(${ms(x.p50_interval_ms[0])}–${ms(x.p50_interval_ms[1])})</span>` : ''}`, `${ms(x.p95_ms)}${x.p95_interval_ms ? ` <span class="sub">(${ms(x.p95_interval_ms[0])}–${ms(x.p95_interval_ms[1])})</span>` : ''}`, ms(x.p99_ms), ms(x.max_ms)])));
  if (r.episodes.length)
    body.push(table(['node', 'cause', 'status', 'started', 'detect', 'restart', 'recovery', 'requests hit', 'evidence'], r.episodes.map((e) => [esc(e.node), esc(e.cause), esc(e.status), esc(e.started_at), ms(e.detected_ms), ms(e.restart_ms), ms(e.recovery_ms), String(e.requests_affected), esc(`${e.first_evidence}${e.exit_code !== null ? `, exit ${e.exit_code}` : ''}${e.oom_killed ? ', OOMKilled' : ''}`)])));

  body.push('<h2>Faults</h2>');
  if (r.faults.length) body.push(table(['fault', 'kind', 'node', 'state', 'driver', 'injected', 'held', 'revert'], r.faults.map((f) => [esc(f.id), esc(f.kind), esc(f.node), esc(f.state), esc(f.driver ?? ''), esc(f.injected_at ?? '—'), ms(f.held_ms), esc(f.revert_action ?? f.error ?? '')])));
  else body.push('<p>No fault was injected.</p>');
  if (r.faults_not_run.length) body.push(table(['not run', 'kind', 'node', 'why'], r.faults_not_run.map((f) => [esc(f.id), esc(f.kind), esc(f.node), esc(f.reason)])));

  const L = r.latency;
  body.push('<h2>Latency</h2>');
  body.push(
    table(
      ['metric', 'p50', 'p99', 'from the scheduled send p50 / p99'],
      [
        ['time to first token', ms(L.ttft_p50_ms), ms(L.ttft_p99_ms), `${ms(L.ttft_from_scheduled_p50_ms)} / ${ms(L.ttft_from_scheduled_p99_ms)}`],
        ['inter-token gap', ms(L.itl_p50_ms), ms(L.itl_p99_ms), ''],
        ['time per output token', ms(L.tpot_p50_ms), ms(L.tpot_p99_ms), ''],
        ['end to end', ms(L.e2e_p50_ms), ms(L.e2e_p99_ms), `${ms(L.e2e_from_scheduled_p50_ms)} / ${ms(L.e2e_from_scheduled_p99_ms)}`],
        ['queue delay (actual − scheduled send)', ms(L.queue_delay_p50_ms), ms(L.queue_delay_p99_ms), ''],
        ...(L.outside_faults ? [['ttft outside fault windows (gated)', ms(L.outside_faults.ttft_p50_ms), ms(L.outside_faults.ttft_p99_ms), ''], ['tpot outside fault windows (gated)', ms(L.outside_faults.tpot_p50_ms), ms(L.outside_faults.tpot_p99_ms), '']] : []),
      ],
    ),
  );
  body.push(`<p class="sub">From per-node, per-window HDR histograms merged exactly; ${L.samples} successful responses. Error rate ${pct(r.requests.error_rate, 3)} (95 % Wilson ${r.requests.error_rate_ci95 ? `${pct(r.requests.error_rate_ci95[0], 3)} – ${pct(r.requests.error_rate_ci95[1], 3)}` : '—'}); outside injected episodes ${pct(r.requests.error_rate_outside_injected, 3)} (counted per ${r.requests.error_rate_outside_injected_from === 'requests' ? 'request' : 'window'}).</p>`);

  if (r.memory.length) {
    body.push('<h2>Memory</h2>');
    const mib = (b: number | null): string => (b === null ? '—' : `${(b / 1_048_576).toFixed(2)} MiB`);
    body.push(table(['node', 'memory', 'samples', 'slope per hour', 'interval', 'growing', 'per 24 h', 'at its limit in'], r.memory.map((x) => [esc(x.node), esc(x.kind), `${x.samples} over ${hrs(x.span_hours)}`, mib(x.slope_bytes_per_hour), x.interval ? `${mib(x.interval[0])} – ${mib(x.interval[1])}` : '—', x.growing ? '<b>yes</b>' : 'no', mib(x.per_24h_bytes), hrs(x.hours_to_limit)])));
  }

  const gens = r.generator.generators;
  if (gens.length > 1) {
    body.push('<h2>Load generators</h2>');
    body.push(`<table><tr><th>generator</th><th>kind</th><th>host</th><th>event loop lag p99, at most</th><th>CPU, at most</th><th>sends late, at most</th></tr>${gens.map((x) => `<tr><td>${esc(x.name)}</td><td>${esc(x.kind)}</td><td>${esc(x.host)}${x.clock_offset_ms === null ? '' : ` (clock ${x.clock_offset_ms >= 0 ? '+' : ''}${x.clock_offset_ms.toFixed(1)} ms, corrected)`}</td><td>${x.loop_lag_p99_max_ms === null ? '—' : `${x.loop_lag_p99_max_ms.toFixed(0)} ms`}</td><td>${x.k6_cpu_max_cores === null ? '—' : `${x.k6_cpu_max_cores.toFixed(2)} cores`}</td><td>${x.late_max_ms === null ? '—' : `${x.late_max_ms.toFixed(0)} ms`}</td></tr>`).join('')}</table>`);
  }
  body.push('<h2>Nodes</h2>');
  body.push(table(['node', 'endpoint', 'container', 'Docker engine', 'image', 'restarts', 'exposure', 'availability'], r.nodes.map((n) => [esc(n.name), esc(n.endpoint), esc(n.container ?? '—'), esc(n.docker_engine ?? '—'), esc(n.image ?? '—'), String(n.restarts ?? '—'), hrs(n.exposure_hours), pct(n.availability, 3)])));
  const acc = r.requests.accounting;
  if (acc) body.push(`<p class="sub">Every planned arrival accounted for: ${acc.planned} planned = ${acc.sent} sent + ${acc.missed} missed + ${acc.interrupted} interrupted + ${acc.cancelled} cancelled.</p>`);

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Gauntlet — ${esc(r.run.plan)} — ${esc(r.verdict)}</title><style>${CSS}</style></head>
<body><main>
${body.join('\n')}
<p class="sub">Machine-readable: report.json (schema ${esc(r.schema)}, version ${r.schema_version}), junit.xml, report.md. Rewrite with <code>gauntlet report ${esc(r.run.id)}</code>.</p>
</main></body></html>
`;
}
