// `gauntlet drill <kind> --target <container or node>`: one fault, now, against a running
// container, measured by the same detector as a run. A drill is a small run — light load for
// a baseline, the fault, then the run ends by itself once the fault is over and the node has
// served for a few seconds — so it is saved in the database and listed by `gauntlet runs`.
import { FAULTS, faultKinds } from '../../faults/index.js';
import type { Docker } from '../docker/engine.js';
import { inspectContainer } from '../docker/engine.js';
import { GauntletError } from '../errors.js';
import { validatePlan } from '../plan/load.js';
import { isInstant } from '../fault/types.js';
import type { Plan } from '../plan/schema.js';
import { isSuccess, type Store } from '../store/store.js';
import { percentileSorted } from '../analysis/stats.js';
import { formatDuration } from '../util/duration.js';
import type { RunContext, RunResult, RunView } from './runner.js';
import { runPlan } from './runner.js';
import { TARGET_LABEL } from './targets.js';

export interface DrillOptions {
  kind: string;
  /** A container name, or the value of a gauntlet.target label. */
  target: string;
  /** --duration, given to the fault as its duration (down_for for node-kill stop). */
  duration?: string;
  /** --param k=v, as strings: numbers, booleans and JSON are recognised. */
  params: Record<string, string>;
  rate: number;
  baselineMs: number;
  settleMs: number;
  recoveryLimit: string;
  endpoint?: string;
}

/** "300ms" stays a string; "0.3" → 0.3; "true" → true; "[…]"/"{…}" → JSON. */
export function paramValue(v: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  if (/^[[{]/.test(v)) {
    try {
      return JSON.parse(v);
    } catch {
      throw new GauntletError('GAUNTLET_PLAN_INVALID', ['drill', `  --param value ${v} looks like JSON but is not valid JSON`]);
    }
  }
  return v;
}

/** Parses `k=v` pairs; a missing "=" is named. */
export function parseParamPairs(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new GauntletError('GAUNTLET_PLAN_INVALID', ['drill', `  --param ${JSON.stringify(p)}: expected key=value (e.g. --param share=0.3)`]);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

/** The plan a drill runs: validated like any plan, so a bad --param is named with what was expected. */
export async function drillPlan(o: DrillOptions, docker: Docker | null): Promise<Plan> {
  const injector = FAULTS[o.kind];
  if (!injector) throw new GauntletError('GAUNTLET_PLAN_INVALID', ['drill', `  kind: got ${JSON.stringify(o.kind)}; expected one of ${faultKinds().join(', ')}`]);
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o.params)) params[k] = paramValue(v);
  if (o.duration !== undefined) {
    if (o.kind === 'node-kill') {
      params.mode ??= 'stop';
      params.down_for = o.duration;
    } else params.duration = o.duration;
  }
  const byName = docker ? await inspectContainer(docker, o.target) : null;
  if (docker && !byName) {
    const labelled = await docker.listContainers({ all: true, filters: { label: [`${TARGET_LABEL}=${o.target}`] } });
    if (labelled.length === 0) throw new GauntletError('GAUNTLET_TARGET_NOT_FOUND', [o.target, `no container is named ${o.target} and none has the label ${TARGET_LABEL}=${o.target} (docker ps shows what runs)`]);
  }
  const node = o.target.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63) || 'node';
  const target = { name: node, ...(byName ? { container: o.target } : { label: o.target }), ...(o.endpoint ? { endpoint: o.endpoint } : {}) };
  const raw = {
    name: `drill-${o.kind}`,
    description: `gauntlet drill ${o.kind} --target ${o.target}`,
    // Replaced below by a bound computed from the fault; the drill usually ends well before.
    duration: '6h',
    targets: [target],
    load: { rate: o.rate, arrival: 'constant', max_tokens: 16, prompt_tokens: 32, timeout: '10s', window: '1s' },
    faults: [{ kind: o.kind, target: node, at: `${o.baselineMs}ms`, params }],
    probes: { interval: '1s', timeout: '1s', failures: 2, fast_interval: '100ms' },
    detection: { error_burst: 3, fault_grace: '5s' },
    recovery_limit: o.recoveryLimit,
    ready_timeout: '30s',
    // a drill ends when its fault is over (RunContext.until, not in the plan): not taken up after a crash
    resume: false,
  };
  const plan = validatePlan(raw, 'drill');
  // The drill ends by itself once the fault is over; this bounds it when the node never
  // comes back: baseline, the fault's hold, the recovery limit, the settle time, and slack.
  const occ = plan.faults[0] as Plan['faults'][number];
  const hold = isInstant(injector, occ.params) ? 0 : (injector.holdMs?.(occ.params) ?? 0);
  plan.duration = o.baselineMs + hold + plan.recovery_limit + o.settleMs + 30_000;
  return plan;
}

/** Ends the drill once its fault is done and reverted, and every node has been up for settleMs. */
export function drillUntil(settleMs: number): (v: RunView) => boolean {
  let upSince: number | null = null;
  return (v) => {
    const over = v.faultsDone === v.faultsTotal && v.activeFaults === 0 && v.allUp;
    if (!over) {
      upSince = null;
      return false;
    }
    upSince ??= v.now;
    return v.now - upSince >= settleMs;
  };
}

export interface DrillVerdict {
  recovered: boolean;
  lines: string[];
}

/** The short verdict printed after a drill, from what the store recorded. */
export function drillVerdict(store: Store, result: RunResult, plan: Plan): DrillVerdict {
  const run = store.getRun(result.runId);
  const fault = store.faults(result.runId)[0];
  const episodes = store.episodes(result.runId);
  const lines: string[] = [];
  const kind = plan.faults[0]?.kind ?? '?';
  const node = plan.targets[0]?.name ?? '?';
  if (!fault || !run) return { recovered: false, lines: [`drill ${kind} on ${node}: no fault recorded (${result.error ?? result.status})`] };
  if (fault.state === 'failed' || fault.state === 'skipped') {
    return { recovered: false, lines: [`drill ${kind} on ${node}: NOT INJECTED (${fault.state}): ${fault.error ?? ''}`, `  run ${result.runId} saved; see gauntlet runs`] };
  }
  const ours = episodes.filter((e) => e.fault_id === fault.id);
  const stray = episodes.filter((e) => e.fault_id !== fault.id);
  const limit = plan.recovery_limit;
  const recovered = result.status === 'completed' && fault.state === 'reverted' && ours.every((e) => e.status === 'recovered') && stray.length === 0;
  const injectedAt = fault.injected_at ?? fault.planned_at ?? 0;
  lines.push(`drill ${kind} on ${node}: ${recovered ? 'RECOVERED' : ours.some((e) => e.status !== 'recovered') ? 'NOT RECOVERED within the limit' : `ended ${result.status}`}`);
  lines.push(
    `  injected${fault.driver ? ` (driver ${fault.driver})` : ''} ${formatDuration(injectedAt - (run.load_started_at ?? injectedAt))} into the load; ` +
      (fault.reverted_at ? `reverted ${formatDuration(fault.reverted_at - injectedAt)} later: ${fault.revert_action ?? ''}` : `NOT reverted: ${fault.error ?? 'still active'}`),
  );
  if (fault.result) lines.push(`  result: ${fault.result}`);
  if (ours.length === 0) lines.push('  no failure episode: the node kept serving (see the latency below)');
  for (const e of ours) {
    const rec = e.serving_again_at !== null ? formatDuration(e.serving_again_at - e.started_at) : 'not serving again';
    lines.push(
      `  episode: first evidence "${e.first_evidence}" ${formatDuration(e.started_at - injectedAt)} after injection; detected after ${formatDuration(e.detected_at - e.started_at)}; ` +
        `recovery ${rec} (limit ${formatDuration(limit)})${e.running_again_at !== null ? `; container running again after ${formatDuration(e.running_again_at - e.started_at)}` : ''}; ${e.requests_affected} request(s) affected`,
    );
  }
  for (const e of stray) lines.push(`  also: episode ${e.id} (${e.cause}) "${e.first_evidence}" — not caused by this fault`);
  // Latency before and during the fault, from the request rows.
  const reqs = store.db
    .prepare("SELECT sent_at, ttft_ms, e2e_ms, outcome FROM requests WHERE run_id = ? AND outcome != 'cancelled'")
    .all(result.runId) as { sent_at: number; ttft_ms: number | null; e2e_ms: number; outcome: string }[];
  const end = fault.reverted_at ?? Infinity;
  const before = reqs.filter((r) => r.sent_at < injectedAt);
  const during = reqs.filter((r) => r.sent_at >= injectedAt && r.sent_at < end);
  const p50 = (rs: typeof reqs, k: 'ttft_ms' | 'e2e_ms'): string => {
    const v = rs.filter((r) => isSuccess(r.outcome) && r[k] !== null).map((r) => r[k] as number).sort((a, b) => a - b);
    const p = percentileSorted(v, 50);
    return p === null ? '—' : `${p.toFixed(0)} ms`;
  };
  lines.push(
    `  requests before: ${before.length} (failed ${before.filter((r) => !isSuccess(r.outcome)).length}), ttft p50 ${p50(before, 'ttft_ms')}, e2e p50 ${p50(before, 'e2e_ms')}; ` +
      `during: ${during.length} (failed ${during.filter((r) => !isSuccess(r.outcome)).length}), ttft p50 ${p50(during, 'ttft_ms')}, e2e p50 ${p50(during, 'e2e_ms')}`,
  );
  return { recovered, lines };
}

export async function runDrill(o: DrillOptions, ctx: RunContext): Promise<{ result: RunResult; verdict: DrillVerdict; plan: Plan }> {
  const plan = await drillPlan(o, ctx.docker);
  const result = await runPlan(plan, null, { ...ctx, until: drillUntil(o.settleMs) });
  return { result, verdict: drillVerdict(ctx.store, result, plan), plan };
}
