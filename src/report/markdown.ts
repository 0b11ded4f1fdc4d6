// report.md: the run for people, with every number next to how it was measured.
import type { Plan } from '../plan/schema.js';
import { formatDuration } from '../util/duration.js';
import type { ReportJson } from './build.js';

const ms = (x: number | null): string => (x === null ? '—' : `${x.toFixed(0)} ms`);
const pct = (x: number | null, digits = 3): string => (x === null ? '—' : `${(x * 100).toFixed(digits)} %`);
// hours everywhere (node-hours, MTBF), with the digits a short run needs: never minutes for one and hours for another
const h = (x: number | null): string => (x === null ? '—' : x >= 100 ? `${x.toFixed(0)} h` : x >= 1 ? `${x.toFixed(2)} h` : x >= 0.01 ? `${x.toFixed(3)} h` : `${x.toPrecision(2)} h`);
const VERDICT_MARK: Record<string, string> = { pass: '✅ pass', conditional: '⚠️ conditional', fail: '❌ fail', not_measured: '— not measured' };

export function renderMarkdown(r: ReportJson, plan: Plan): string {
  const m = r.mtbf;
  const conf = `${Math.round(m.confidence * 100)} %`;
  const out: string[] = [];
  out.push(`# Gauntlet report — ${r.run.plan}`, '');
  out.push(`Run \`${r.run.id}\` · status **${r.run.status}** · ${r.run.started_at} → ${r.run.ended_at ?? '(not ended)'} · seed ${r.run.seed} · Gauntlet ${r.run.gauntlet_version ?? '?'} on ${r.run.host ?? '?'}`);
  if (r.run.error) out.push('', `> Run error: ${r.run.error}`);
  const scaled = r.run.time_scale !== 1;
  if (scaled) {
    out.push(
      '',
      `> **Time-scaled ×${r.run.time_scale}**: plan time ran ${r.run.time_scale} times faster than real time, against nodes whose own timings were scaled the same way. ` +
        `Exposure, MTBF and every duration below are in plan time — ${h(r.exposure_node_hours)} of plan node-hours are ${h(r.exposure_real_node_hours)} of real ones. ` +
        'This checks the run and the fleet’s behaviour under the plan; it demonstrates no real MTBF. Docker’s own delays (restart back-off, engine calls) are not scaled: in plan time they read ' +
        `${r.run.time_scale} times longer.`,
    );
  }
  const g = r.generator;
  if (!g.kept_up) {
    out.push(
      '',
      `> **Load generator saturated**: it was behind for ${(g.behind_share * 100).toFixed(1)}% of the load (limit ${(g.limit_share * 100).toFixed(0)}%). ` +
        `Latency in those windows is the generator's, not the server's, and the offered load fell short. ${g.rules}.`,
    );
    for (const w of g.behind_windows.slice(0, 10)) out.push(`> - ${w.from} → ${w.to}: ${w.why.join('; ')}`);
  }
  if (r.gates) {
    const failing = r.gates.filter((x) => x.verdict === 'fail').length;
    const cond = r.gates.filter((x) => x.verdict === 'conditional').length;
    out.push('', `## Verdict: ${VERDICT_MARK[r.verdict]}`, '');
    out.push(`${failing} gate(s) fail, ${cond} conditional, ${r.gates.filter((x) => x.verdict === 'pass').length} pass${r.verdict_fails_run ? ' — `gauntlet run` exits 4' : ''}. Every threshold is a plan setting (\`gates:\`).`, '');
    out.push('| gate | verdict | measured |', '|---|---|---|');
    for (const x of r.gates) out.push(`| ${x.title} | ${VERDICT_MARK[x.verdict]} | ${x.reason} |`);
  }
  const tp = r.reliability?.throughput;
  if (tp && tp.requests_per_s !== null) {
    out.push('', `Throughput: ${tp.requests_per_s.toFixed(2)} requests/s sent, ${(tp.ok_per_s ?? 0).toFixed(2)} ok/s, ${(tp.output_tokens_per_s ?? 0).toFixed(1)} output tokens/s over ${formatDuration(tp.load_seconds * 1000)} of load${scaled ? ' (plan time)' : ''}.`);
  }
  out.push('', '## Reliability', '');
  out.push(`| measure | value | how |`, `|---|---|---|`);
  out.push(`| exposure | ${h(r.exposure_node_hours).replace(/ h$/, '')} node-hours${scaled ? ` (plan time, scaled ×${r.run.time_scale}: ${h(r.exposure_real_node_hours).replace(/ h$/, '')} real)` : ''} | Σ nodes of time under load, minus injected failure episodes |`);
  out.push(`| failures | ${r.failures.spontaneous} spontaneous, ${r.failures.injected} injected, ${r.failures.recovery_failed} failed recoveries | episodes; cause = injected when it starts in a fault's window (+${formatDuration(plan.detection.fault_grace)} grace) |`);
  if (r.orchestrator_down_ms > 0) {
    out.push(`| Gauntlet down | **${formatDuration(r.orchestrator_down_ms)}** of node-time | Gauntlet was killed and a restarted daemon took the run up: that time is left out of exposure (see the journal) |`);
  }
  if (r.orchestrator_blind_ms > 0) {
    out.push(`| orchestrator blindness | **${formatDuration(r.orchestrator_blind_ms)}** of node-time, ${r.failures.orchestrator} episodes | Gauntlet lost the Docker engine: that time is left out of exposure and what failed then is not counted as a node failure |`);
  }
  out.push(
    `| MTBF lower bound | **≥ ${h(m.lower_bound_hours)} at ${conf}** | 2T/χ²(${conf}; 2r+2), r = ${r.failures.counted_for_mtbf} (spontaneous + failed recoveries) |`,
  );
  out.push(`| MTBF point estimate | ${m.point_hours === null ? 'none (no failure counted)' : h(m.point_hours)} | T / r |`);
  out.push(`| MTBF ${conf} two-sided | ${h(m.interval_hours[0])} – ${m.interval_hours[1] === null ? '∞' : h(m.interval_hours[1])} | χ²(α/2; 2r), χ²(1−α/2; 2r+2) |`);
  out.push(
    `| MTBF target ${h(m.target_hours)} | ${m.demonstrated ? (scaled ? `demonstrated in plan time only (scaled ×${r.run.time_scale}): not a real demonstration` : '**demonstrated**') : `not demonstrated: ${h(m.more_node_hours_needed)} more ${scaled ? 'plan ' : ''}node-hours with no further failure`} | same bound, same confidence |`,
  );
  out.push(
    `| availability | ${pct(r.availability.value)} | time-weighted over ${r.availability.probes} health probes (every ${formatDuration(plan.probes.interval)}, ${formatDuration(plan.probes.fast_interval)} while a node is faulted or failing): ${r.availability.ok} ok, ${r.availability.busy} failed while the node was busy (serving: counted available) |`,
  );
  out.push(
    `| error rate | ${pct(r.requests.error_rate)} (95 % CI ${r.requests.error_rate_ci95 ? `${pct(r.requests.error_rate_ci95[0])} – ${pct(r.requests.error_rate_ci95[1])}` : '—'}) | ${r.requests.failed}/${r.requests.total} requests not ok (Wilson interval); outside injected episodes: ${pct(r.requests.error_rate_outside_injected)} |`,
  );
  const rel = r.reliability;
  if (rel) {
    out.push('', `MTBF at each confidence (${r.failures.counted_for_mtbf} failure(s) in ${h(r.exposure_node_hours).replace(/ h$/, '')} node-hours):`, '');
    out.push('| confidence | MTBF ≥ | two-sided | more node-hours to show the target: no / 1 / 2 more failures |', '|---|---|---|---|');
    for (const b of rel.mtbf_bounds) out.push(`| ${pct(b.confidence, 0)} | ${h(b.lower_bound_hours)} | ${h(b.interval_hours[0])} – ${b.interval_hours[1] === null ? '∞' : h(b.interval_hours[1])} | ${b.demonstrated ? 'shown' : [b.more_node_hours_needed, ...b.more_node_hours_needed_with_failures.map((x) => x.node_hours)].map((x) => h(x).replace(/ h$/, '')).join(' / ')} |`);
    const sq = rel.sequential;
    out.push(
      '',
      `**Sequential test** (${sq.plan ? `MIL-HDBK-781 PRST ${sq.plan}` : 'probability-ratio test'}: θ0 ${h(sq.theta0_hours)}, θ1 ${h(sq.theta1_hours)}, α ${sq.alpha}, β ${sq.beta}, truncated at ${sq.truncation.failures} failures or ${Math.round(sq.truncation.node_hours)} node-hours; true risks α′ ${pct(sq.true_risks.alpha, 1)}, β′ ${pct(sq.true_risks.beta, 1)}): **${sq.decision}**` +
        (sq.decision === 'continue' ? ` — ${Math.round(sq.node_hours_to_accept)} more node-hours without a failure accept; ${sq.failures_to_reject} more failure(s) now reject.` : ` at ${h(sq.decided_at_node_hours).replace(/ h$/, '')} node-hours (${sq.by}).`),
    );
    const tr = (t: typeof rel.trend.failures, name: string): string =>
      `| ${name} | ${t.events} | ${t.laplace_u === null ? '—' : `U ${t.laplace_u.toFixed(2)}, p ${(t.laplace_p_worse as number).toFixed(3)}`} | ${t.crow_amsaa_beta === null ? '—' : `β ${t.crow_amsaa_beta.toFixed(2)} (90 %: ${t.crow_amsaa_beta_interval?.[0].toFixed(2)} – ${t.crow_amsaa_beta_interval?.[1].toFixed(2)})`} | ${t.worsening ? '**yes**' : 'no'} |`;
    out.push('', '| trend | events | Laplace (worse later?) | Crow-AMSAA β | accelerating |', '|---|---|---|---|---|', tr(rel.trend.failures, 'failures'), tr(rel.trend.soft_events, 'softer events (episodes not caused by a fault, degraded spells)'));
  }
  const gp = r.requests.goodput;
  out.push('', gp && gp.share !== null ? `Goodput: **${pct(gp.share)}** of ${gp.total} attempts succeeded within every latency SLO (ttft ≤ ${ms(gp.slo_ttft_ms)}, time per output token ≤ ${ms(gp.slo_tpot_ms)}; per request).` : 'Goodput: not measured (it needs per-request rows: load.raw_requests).');
  out.push('', '## Recovery', '');
  out.push(
    r.recovery.count === 0
      ? 'No node recovered from a failure in this run (none failed, or none served again before the end).'
      : `${r.recovery.count} recovered episode(s): p50 ${ms(r.recovery.p50_ms)}, p95 ${ms(r.recovery.p95_ms)}, max ${ms(r.recovery.max_ms)}. Parts (p50): detect ${ms(r.recovery.detect_p50_ms)}, container restart ${ms(r.recovery.restart_p50_ms)}, ready to serve ${ms(r.recovery.ready_p50_ms)}.`,
  );
  out.push('', 'Recovery = serving again − first evidence of the failure (Docker `die`/`oom` event time, or the first failed probe or request). Serving again is when the first successful response *began* (its headers; for a stream, its first token) among the inferences sent after the failure started — not when it was sent.', '');
  if (r.reliability?.recovery_by.length) {
    const iv = (x: [number, number] | null): string => (x ? ` (${ms(x[0])} – ${ms(x[1])})` : '');
    out.push('| by | | n | p50 (90 % bootstrap) | p95 | max |', '|---|---|---|---|---|---|');
    for (const x of r.reliability.recovery_by) out.push(`| ${x.group} | ${x.key} | ${x.count} | ${ms(x.p50_ms)}${iv(x.p50_interval_ms)} | ${ms(x.p95_ms)}${iv(x.p95_interval_ms)} | ${ms(x.max_ms)} |`);
    out.push('');
  }
  if (r.episodes.length > 0) {
    out.push('| node | cause | started | detect | restart | recovery | requests hit | evidence |', '|---|---|---|---|---|---|---|---|');
    for (const e of r.episodes) {
      const ev = [e.first_evidence, e.oom_killed ? 'OOMKilled' : '', e.restart_count !== null ? `restart count ${e.restart_count}` : ''].filter(Boolean).join('; ');
      out.push(`| ${e.node} | ${e.cause}${e.status === 'recovery_failed' ? ' **(recovery failed)**' : e.status === 'open' ? ' (open at end)' : ''} | ${e.started_at} | ${ms(e.detected_ms)} | ${ms(e.restart_ms)} | ${ms(e.recovery_ms)} | ${e.requests_affected} | ${ev} |`);
    }
  } else out.push('No failure episodes.');
  const L = r.latency;
  const caps = r.run.engine?.capabilities;
  out.push('', '## Latency (successful requests)', '');
  out.push('| metric | p50 | p95 | p99 |', '|---|---|---|---|');
  out.push(`| TTFT (from actual send) | ${ms(L.ttft_p50_ms)} | ${ms(L.ttft_p95_ms)} | ${ms(L.ttft_p99_ms)} |`);
  out.push(`| TTFT (from scheduled send, coordinated-omission corrected) | ${ms(L.ttft_from_scheduled_p50_ms)} | ${ms(L.ttft_from_scheduled_p95_ms)} | ${ms(L.ttft_from_scheduled_p99_ms)} |`);
  out.push(`| inter-token gap (ITL) | ${ms(L.itl_p50_ms)} | | ${ms(L.itl_p99_ms)} |`);
  out.push(`| time per output token (TPOT) | ${ms(L.tpot_p50_ms)} | | ${ms(L.tpot_p99_ms)} |`);
  out.push(`| end to end | ${ms(L.e2e_p50_ms)} | | ${ms(L.e2e_p99_ms)} |`);
  out.push(`| end to end from scheduled send | ${ms(L.e2e_from_scheduled_p50_ms)} | | ${ms(L.e2e_from_scheduled_p99_ms)} |`);
  out.push(`| queue delay (actual − scheduled send) | ${ms(L.queue_delay_p50_ms)} | | ${ms(L.queue_delay_p99_ms)} |`);
  if (L.outside_faults) {
    const o = L.outside_faults;
    out.push(`| TTFT outside fault windows (what the gates judge) | ${ms(o.ttft_p50_ms)} | | ${ms(o.ttft_p99_ms)} |`);
    out.push(`| TPOT outside fault windows | ${ms(o.tpot_p50_ms)} | | ${ms(o.tpot_p99_ms)} |`);
    out.push('', `Outside fault windows: ${o.samples} responses; the ${o.windows_left_out} windows a fault touched (from its injection less the plan's timeout to its revert plus ${formatDuration(plan.detection.fault_grace)} grace, and every injected episode) are taken out of the run's histograms exactly.`);
  }
  out.push(
    '',
    `Load engine: ${r.run.engine?.name ?? '?'}; TTFT taken at ${caps?.ttft === 'time_to_first_byte' ? '**the first byte of the body (approximation: no SSE support)**' : 'the first SSE chunk with content'}${caps && !caps.itl ? '; **inter-token gaps not measured**' : ''}${caps && !caps.queueDelay ? '; queue delay not measured (schedule misses are counted instead)' : ''}.` +
      ` Percentiles from HDR histograms per ${formatDuration(plan.load.window)} window (3 significant digits) over ${L.samples} responses and ${L.itl_samples} inter-token gaps.` +
      ` Output tokens: ${r.requests.output_tokens}, from the server's usage in ${r.requests.output_tokens_from.usage} responses, counted from chunks (fallback) in ${r.requests.output_tokens_from.chunk_count}.`,
  );
  for (const n of caps?.notes ?? []) out.push('', `> ${n}`);
  if (r.memory && r.memory.length > 0) {
    out.push('', '## Memory', '');
    out.push('| node | memory | samples over | slope | interval | growing | per 24 h | reaches its limit in |', '|---|---|---|---|---|---|---|---|');
    const mb = (b: number | null): string => (b === null ? '—' : `${(b / 1_048_576).toFixed(2)} MiB`);
    for (const x of r.memory) {
      out.push(`| ${x.node} | ${x.kind} | ${x.samples} over ${h(x.span_hours)} | ${mb(x.slope_bytes_per_hour)}/h | ${x.interval ? `${mb(x.interval[0])} – ${mb(x.interval[1])}/h` : '—'} | ${x.growing ? '**yes**' : 'no'} | ${mb(x.per_24h_bytes)} | ${x.hours_to_limit === null ? '—' : h(x.hours_to_limit)} |`);
    }
    out.push('', `Least-squares slope of the node's memory against time; its ${Math.round((r.memory[0]?.confidence ?? 0.95) * 100)} % interval counts samples as fewer than they are where they follow each other closely (effective n = n(1−ρ)/(1+ρ), ρ the residuals' lag-1 autocorrelation). "Growing" means the whole interval is above zero.`);
  }
  out.push('', '## Requests', '');
  if (r.requests.baseline.length > 0) {
    out.push(
      `${r.requests.degraded} of ${r.requests.ok} successes were **degraded** (e2e over twice the run's baseline p50: ${r.requests.baseline.map((b) => `${b.mix} ${b.p50_ms.toFixed(0)} ms → above ${b.threshold_ms.toFixed(0)} ms, from ${b.samples} requests`).join('; ')}); they are not errors.`,
      '',
    );
  } else out.push('No baseline (too few successes before the first fault): nothing was judged degraded.', '');
  out.push(`| outcome | attempts |`, `|---|---|`);
  for (const [k, v] of Object.entries(r.requests.outcomes).sort()) out.push(`| ${k} | ${v} |`);
  if (r.requests.client.retries > 0 || plan.load.retry) {
    out.push(
      '',
      `With the client retry policy (${plan.load.retry ? `${plan.load.retry.attempts} attempts, backoff ${formatDuration(plan.load.retry.backoff)}` : 'none'}): ${r.requests.client.requests} requests, ${r.requests.client.failed} failed in the end (${pct(r.requests.client.error_rate)}), after ${r.requests.client.retries} retries. The rates above count every attempt, as the servers saw them.`,
    );
  }
  if (r.requests.schedule_misses > 0) out.push('', `**${r.requests.schedule_misses} arrivals could not be started on time** (the engine dropped them): the offered load was lower than planned.`);
  const a = r.requests.accounting;
  if (a) {
    out.push('', `Arrivals: ${a.planned} planned = ${a.sent} sent + ${a.missed} missed + ${a.interrupted} interrupted + ${a.cancelled} cancelled.`);
    if (a.interrupted > 0) out.push(`**${a.interrupted} started but never reported** (cut off at the end of the load or by a stop): they are in no count above.`);
    if (a.interrupted < 0) out.push(`**The engine sent ${-a.interrupted} more than it planned** (k6's arrival-rate executors can start one or two extra).`);
  }
  out.push(
    '',
    `Load generator: ${g.kept_up ? 'kept up' : '**saturated**'} — behind ${(g.behind_share * 100).toFixed(1)}% of the load (limit ${(g.limit_share * 100).toFixed(0)}%); Gauntlet's event loop lag p99 at most ${g.loop_lag_p99_max_ms === null ? '—' : `${g.loop_lag_p99_max_ms.toFixed(0)} ms`}${g.k6_cpu_max_cores !== null ? `; k6 used up to ${g.k6_cpu_max_cores.toFixed(2)} of ${g.cores} cores` : ''}. Rule: ${g.rules}.`,
  );
  if (g.generators.length > 1) {
    out.push('', '| generator | kind | host | event loop lag p99, at most | CPU, at most | sends late, at most |', '|---|---|---|---|---|---|');
    for (const x of g.generators) out.push(`| ${x.name} | ${x.kind} | ${x.host}${x.clock_offset_ms === null ? '' : ` (clock ${x.clock_offset_ms >= 0 ? '+' : ''}${x.clock_offset_ms.toFixed(1)} ms, corrected)`} | ${x.loop_lag_p99_max_ms === null ? '—' : `${x.loop_lag_p99_max_ms.toFixed(0)} ms`} | ${x.k6_cpu_max_cores === null ? '—' : `${x.k6_cpu_max_cores.toFixed(2)} cores`} | ${x.late_max_ms === null ? '—' : `${x.late_max_ms.toFixed(0)} ms`} |`);
  }
  out.push('', '## Nodes', '', '| node | endpoint | container | Docker engine | restarts during run | exposure | availability |', '|---|---|---|---|---|---|---|');
  for (const n of r.nodes) out.push(`| ${n.name} | ${n.endpoint} | ${n.container ?? '(bare endpoint)'} | ${n.docker_engine ?? '—'} | ${n.restarts ?? '—'} | ${h(n.exposure_hours)} | ${pct(n.availability)} |`);
  const withTelemetry = r.nodes.filter((n) => Object.keys(n.telemetry).length > 0);
  if (withTelemetry.length > 0) {
    out.push('', `Telemetry, sampled every ${formatDuration(plan.telemetry.interval)} (first → last, min–max):`, '', '| node | metric | samples | first → last | min–max |', '|---|---|---|---|---|');
    const fmt = (metric: string, v: number): string => (metric.endsWith('_bytes') ? `${(v / 1048576).toFixed(1)} MiB` : Number.isInteger(v) ? String(v) : v.toFixed(3));
    for (const n of withTelemetry) {
      for (const [metric, t] of Object.entries(n.telemetry)) out.push(`| ${n.name} | ${metric} | ${t.samples} | ${fmt(metric, t.first)} → ${fmt(metric, t.last)} | ${fmt(metric, t.min)}–${fmt(metric, t.max)} |`);
    }
  }
  if (r.service) {
    const sv = r.service;
    out.push('', `## Service endpoint ${sv.name} (${sv.endpoint})`, '');
    out.push(
      `The load went through it. Client-visible outage per fault: from the first request that failed there until the first response begun by a request sent after the last failing one — the failover time; the nodes' own recovery is under Episodes. Longest: ${sv.max_outage_ms === null ? '—' : `${sv.max_outage_ms.toFixed(0)} ms`}; availability of its health endpoint ${pct(sv.availability)}.`,
      '',
    );
    out.push('| fault | client-visible outage | failed requests | later failures in its window | from |', '|---|---|---|---|---|');
    for (const o of sv.outages) out.push(`| ${o.fault_kind} on ${o.node} (${o.fault_id}) | ${o.started_at === null ? 'none' : o.outage_ms === null ? 'not over' : `${o.outage_ms.toFixed(0)} ms`} | ${o.failed_requests} | ${o.later_failures} | ${o.started_at ?? '—'} |`);
  }
  out.push('', '## Faults (the ledger)', '');
  if (r.faults.length > 0) {
    const ms = (v: number | null): string => (v === null ? '—' : `${v.toFixed(0)} ms`);
    const effect = (f: ReportJson['faults'][number]): string =>
      f.effect
        ? `ttft p50 ${ms(f.effect.before.ttft_p50_ms)} → ${ms(f.effect.during.ttft_p50_ms)}, e2e p50 ${ms(f.effect.before.e2e_p50_ms)} → ${ms(f.effect.during.e2e_p50_ms)}; failed ${f.effect.before.failed}/${f.effect.before.requests} → ${f.effect.during.failed}/${f.effect.during.requests}`
        : '—';
    out.push('| fault | kind | node | driver | state | injected | held | episodes | measured effect (30 s before → during) | revert did | result |', '|---|---|---|---|---|---|---|---|---|---|---|');
    for (const f of r.faults) {
      out.push(
        `| ${f.id} | ${f.kind} | ${f.node} | ${f.driver ?? '—'} | ${f.state} | ${f.injected_at ?? '—'} | ${f.held_ms === null ? '—' : formatDuration(f.held_ms)} | ${f.episodes.join(', ') || 'none'} | ${effect(f)} | ${f.revert_action ?? f.error ?? '—'} | ${f.result ? JSON.stringify(f.result) : '—'} |`,
      );
    }
  } else out.push('No faults injected.');
  if (r.faults_not_run.length > 0) {
    out.push('', '### Not run', '', '| fault | kind | node | why |', '|---|---|---|---|');
    for (const f of r.faults_not_run) out.push(`| ${f.id} | ${f.kind} | ${f.node} | ${f.state}: ${f.reason} |`);
  }
  if (r.journal.length > 0) {
    out.push('', '### Journal', '');
    for (const j of r.journal) out.push(`- ${j.at} ${j.kind}: ${j.message}`);
  }
  const rate = plan.load.stages ? `stages from ${plan.load.start_rate} req/s (${plan.load.stages.map((st) => `${formatDuration(st.duration)} → ${st.target}`).join(', ')})` : `${plan.load.rate} req/s`;
  out.push('', `## Plan`, '', `${plan.description ?? ''}`, '', `Duration ${formatDuration(plan.duration)}; load ${rate}, ${plan.load.arrival} arrivals${plan.load.burstiness ? ` (burstiness ${plan.load.burstiness})` : ''}${plan.load.max_in_flight ? `, at most ${plan.load.max_in_flight} in flight` : ''}, timeout ${formatDuration(plan.load.timeout)}; recovery limit ${formatDuration(plan.recovery_limit)}.`, '');
  out.push('```json', JSON.stringify(plan.load.mix ?? { api: plan.load.api ?? 'chat', stream: plan.load.stream ?? true, model: plan.load.model, prompt_tokens: plan.load.prompt_tokens ?? 128, max_tokens: plan.load.max_tokens ?? 64, prompts: plan.load.prompts }), '```', '');
  return out.join('\n');
}
