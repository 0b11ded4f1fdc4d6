// Builds report.json's content from a run's rows: the machine-readable record of what was
// measured and how. Reads the store, never writes it. Field names are documented in README.md.
import { clientOutage, type ServiceRequest } from '../analysis/failover.js';
import { availabilityFromSlots, summarizeRun, type ExposureInput, type RunSummary } from '../analysis/run-summary.js';
import { percentileSorted, wilsonInterval } from '../analysis/stats.js';
import { mergeHistograms } from '../analysis/histogram.js';
import { GauntletError } from '../errors.js';
import type { Plan } from '../plan/schema.js';
import { isSuccess, type Store } from '../store/store.js';
import { GENERATOR_NODE, generatorNode, K6_CPU_SHARE_LIMIT, LOOP_LAG_LIMIT_MS, QUEUE_DELAY_LIMIT_MS, judgeGenerator } from '../analysis/generator.js';
import { hostname } from 'node:os';
import type { EngineCapabilities } from '../load/types.js';
import { evaluateGates, overallVerdict, type GateInput, type GateResult, type Verdict } from '../analysis/gates.js';
import { memoryTrend } from '../analysis/leak.js';
import { CONTAINER_METRICS } from '../detect/telemetry.js';
import { DEFAULT_GATES } from '../plan/schema.js';
import { reliability, type ReliabilityJson } from './reliability.js';

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
const r1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);
const r4 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10_000) / 10_000);

export interface FaultEffect {
  requests: number;
  failed: number;
  ttft_p50_ms: number | null;
  e2e_p50_ms: number | null;
}

export interface ReportJson {
  schema: 'gauntlet.report/1';
  /** Bumped when a field changes meaning or goes away (adding one does not). */
  schema_version: 1;
  /** The release verdict: any failed gate fails, any conditional one makes it conditional. */
  verdict: Verdict;
  /** Whether the verdict fails the run (`gauntlet run` exits 4): a failed gate, or a conditional one with gates.conditional_fails. */
  verdict_fails_run: boolean;
  /** Each release gate against the plan's thresholds, with the reason. */
  gates: GateResult[];
  /** MTBF at each confidence, the sequential test's state, trends, recovery by kind and node, throughput. */
  reliability: ReliabilityJson;
  /** Memory trend of each node (container, GPU): slope and interval, per hour. */
  memory: { node: string; kind: string; samples: number; span_hours: number; slope_bytes_per_hour: number | null; interval: [number, number] | null; confidence: number; growing: boolean; per_24h_bytes: number | null; hours_to_limit: number | null; limit_bytes: number | null }[];
  run: {
    id: string;
    plan: string;
    status: string;
    started_at: string;
    ended_at: string | null;
    load_started_at: string | null;
    load_ended_at: string | null;
    /** Plan seconds per wall second (1 for real runs); null on a virtual clock (tests: no real time at all). */
    time_scale: number | null;
    seed: number;
    host: string | null;
    gauntlet_version: string | null;
    error: string | null;
    /** The load engine and what it can measure. */
    engine: { name: string; capabilities: EngineCapabilities } | null;
  };
  nodes: {
    name: string;
    endpoint: string;
    container: string | null;
    /** The Docker engine the container is on ("rack-b (tcp://10.0.0.5:2376)", or DOCKER_HOST's); null for a bare endpoint. */
    docker_engine: string | null;
    image: string | null;
    restarts: number | null;
    exposure_hours: number;
    availability: number | null;
    /** Per metric sampled (container_memory_bytes, vllm:…): samples, first, last, min, max. */
    telemetry: Record<string, TelemetryStats>;
  }[];
  exposure_node_hours: number;
  /** Exposure in real time: exposure_node_hours / run.time_scale (the same for an unscaled run). */
  exposure_real_node_hours: number;
  /** orchestrator: episodes while Gauntlet had lost the Docker engine; not node failures. */
  failures: { spontaneous: number; injected: number; orchestrator: number; recovery_failed: number; counted_for_mtbf: number };
  /** Time Gauntlet could not see its container nodes (Docker engine lost), summed over nodes, ms: left out of exposure. */
  orchestrator_blind_ms: number;
  /** Node-time Gauntlet itself was down (killed; the run taken up by a restarted daemon): out of exposure. */
  orchestrator_down_ms: number;
  /**
   * Whether the load generator kept up. Windows where it was behind (arrivals not started,
   * sends late, its event loop stalled) hold latency that is the generator's, not the server's;
   * past limit_share of the load's time the run is generator-saturated (`gauntlet run` exits 3).
   */
  generator: {
    kept_up: boolean;
    behind_ms: number;
    behind_share: number;
    limit_share: number;
    /** How the windows were judged. */
    rules: string;
    behind_windows: { from: string; to: string; why: string[] }[];
    loop_lag_p99_max_ms: number | null;
    k6_cpu_max_cores: number | null;
    cores: number;
    /**
     * Every load generator with its own saturation signal: Gauntlet's process (it reads the
     * records, and runs the builtin engine unless worker threads do), each worker thread, each k6
     * process, and the host it runs on.
     */
    generators: {
      name: string;
      kind: 'gauntlet process' | 'worker thread' | 'k6 process';
      host: string;
      loop_lag_p99_max_ms: number | null;
      /** A k6 process on this machine: the most CPU it used (cores). */
      k6_cpu_max_cores: number | null;
      /** One of several k6 instances (on any host): how late it started an arrival, at most (ms). */
      late_max_ms: number | null;
      /** On another host: how far its clock was from this one's (theirs − ours, ms); its samples' times were corrected by it. */
      clock_offset_ms: number | null;
    }[];
  };
  mtbf: {
    point_hours: number | null;
    lower_bound_hours: number;
    confidence: number;
    interval_hours: [number, number | null];
    target_hours: number;
    demonstrated: boolean;
    more_node_hours_needed: number;
    method: string;
  };
  recovery: {
    count: number;
    p50_ms: number | null;
    p95_ms: number | null;
    p99_ms: number | null;
    max_ms: number | null;
    detect_p50_ms: number | null;
    restart_p50_ms: number | null;
    ready_p50_ms: number | null;
  };
  availability: { value: number | null; probes: number; ok: number; busy: number };
  requests: {
    total: number;
    /** Successes, degraded included. */
    ok: number;
    /** Successes slower than twice the run's baseline e2e p50 (of their kind): not errors. */
    degraded: number;
    /** The baseline each kind of request was judged against (from the journal). */
    baseline: { mix: string; samples: number; p50_ms: number; threshold_ms: number }[];
    failed: number;
    cancelled: number;
    error_rate: number | null;
    error_rate_ci95: [number, number] | null;
    error_rate_outside_injected: number | null;
    /** Attempts that succeeded within every latency SLO (plan.slo; ttft and tpot per request), and their share; null without per-request rows. */
    goodput: { good: number; total: number; share: number | null; slo_ttft_ms: number | null; slo_tpot_ms: number | null } | null;
    /** How error_rate_outside_injected was counted: per request, or per window (no per-request rows: windows an injected episode touches left out whole). */
    error_rate_outside_injected_from: 'requests' | 'windows';
    outcomes: Record<string, number>;
    output_tokens: number;
    output_tokens_from: { usage: number; chunk_count: number };
    /** With the plan's retry policy: what the client finally got per scheduled request. */
    client: { requests: number; failed: number; error_rate: number | null; retries: number };
    /** Arrivals the engine could not start on time (k6's dropped_iterations). */
    schedule_misses: number;
    /** planned = sent + missed + interrupted + cancelled (null: not recorded for this run). */
    accounting: { planned: number; sent: number; missed: number; interrupted: number; cancelled: number } | null;
  };
  latency: {
    /** How ttft was taken: the first content chunk, or (k6 without SSE) only the first byte. */
    ttft_source: EngineCapabilities['ttft'] | null;
    ttft_p50_ms: number | null;
    ttft_p95_ms: number | null;
    ttft_p99_ms: number | null;
    ttft_from_scheduled_p50_ms: number | null;
    ttft_from_scheduled_p95_ms: number | null;
    ttft_from_scheduled_p99_ms: number | null;
    itl_p50_ms: number | null;
    itl_p99_ms: number | null;
    tpot_p50_ms: number | null;
    tpot_p99_ms: number | null;
    e2e_p50_ms: number | null;
    e2e_p99_ms: number | null;
    e2e_from_scheduled_p50_ms: number | null;
    e2e_from_scheduled_p99_ms: number | null;
    queue_delay_p50_ms: number | null;
    queue_delay_p99_ms: number | null;
    samples: number;
    itl_samples: number;
    /**
     * The same outside every fault's window (from its injection, less the plan's timeout, to its
     * revert plus fault_grace) and every injected episode: what the latency gates judge. Null
     * when the run had no fault (then they are the figures above).
     */
    outside_faults: { ttft_p50_ms: number | null; ttft_p99_ms: number | null; tpot_p50_ms: number | null; tpot_p99_ms: number | null; samples: number; windows_left_out: number } | null;
  };
  faults: {
    id: string;
    kind: string;
    node: string;
    state: string;
    /** The mechanism used where there is a choice (netem, proxy, iptables). */
    driver: string | null;
    injected_at: string | null;
    reverted_at: string | null;
    /** Injection to revert, ms. */
    held_ms: number | null;
    revert_action: string | null;
    /** What the fault turned out to do (oom: oom_killed or survived with the numbers). */
    result: Record<string, unknown> | null;
    error: string | null;
    /** Episodes attributed to this fault. */
    episodes: string[];
    /** The node's requests sent in the 30 s before the fault and during it (needs raw requests). */
    effect: { before: FaultEffect; during: FaultEffect } | null;
  }[];
  /** Faults decided against or refused: the reasons, for "which kinds did not run, and why". */
  faults_not_run: { id: string; kind: string; node: string; state: string; reason: string }[];
  /** The run's journal: halts, skipped injections. */
  journal: { at: string; kind: string; message: string }[];
  /**
   * The service endpoint in front of the nodes (plan.service), when there is one: every
   * client-visible outage there (from the first request it failed to the first response it
   * began after), with the fault it overlaps — the failover time, next to the nodes' recovery.
   */
  service: {
    name: string;
    endpoint: string;
    /** One per injected fault: failover measured at the service (null fields: no request failed). */
    outages: { fault_id: string; fault_kind: string; node: string; started_at: string | null; outage_ms: number | null; failed_requests: number; later_failures: number }[];
    max_outage_ms: number | null;
    availability: number | null;
  } | null;
  episodes: {
    id: string;
    node: string;
    cause: string;
    fault_id: string | null;
    status: string;
    started_at: string;
    detected_ms: number;
    restart_ms: number | null;
    ready_ms: number | null;
    recovery_ms: number | null;
    requests_affected: number;
    first_evidence: string;
    exit_code: number | null;
    oom_killed: boolean;
    restart_count: number | null;
  }[];
}

/** Requests of one node sent in the 30 s before a fault and during it: the fault's measured effect. */
function faultEffect(store: Store, runId: string, node: string, from: number | null, to: number | null): { before: FaultEffect; during: FaultEffect } | null {
  if (from === null) return null;
  const rows = store.db
    .prepare("SELECT sent_at, ttft_ms, e2e_ms, outcome FROM requests WHERE run_id = ? AND node = ? AND sent_at >= ? AND sent_at < ? AND outcome != 'cancelled'")
    .all(runId, node, from - 30_000, to ?? Number.MAX_SAFE_INTEGER) as { sent_at: number; ttft_ms: number | null; e2e_ms: number; outcome: string }[];
  if (rows.length === 0) return null;
  const part = (rs: typeof rows): FaultEffect => {
    const ok = rs.filter((r) => isSuccess(r.outcome));
    const med = (vs: number[]): number | null => r1(percentileSorted(vs.sort((a, b) => a - b), 50));
    return { requests: rs.length, failed: rs.length - ok.length, ttft_p50_ms: med(ok.flatMap((r) => (r.ttft_ms === null ? [] : [r.ttft_ms]))), e2e_p50_ms: med(ok.map((r) => r.e2e_ms)) };
  };
  return { before: part(rows.filter((r) => r.sent_at < from)), during: part(rows.filter((r) => r.sent_at >= from)) };
}

/** The rules the generator verdict applies, in words (report.json generator.rules). */
function behindRules(capped: boolean, k6: boolean): string {
  const rules = ['an arrival in it was not started'];
  if (!capped) rules.push(`its queue delay p99 (send − scheduled) is over ${QUEUE_DELAY_LIMIT_MS} ms`);
  rules.push(`Gauntlet's event loop lagged over ${LOOP_LAG_LIMIT_MS} ms (p99 over a second)`);
  if (k6) rules.push(`k6 used ${K6_CPU_SHARE_LIMIT * 100} % or more of the CPU it may use (on average in the window)`);
  const last = rules.pop() as string;
  return `a window is behind when ${rules.join(', ')}, or ${last}${capped ? '; queue delay is not judged: with max_in_flight it holds the wait for a slot' : ''}`;
}

export function buildReport(store: Store, runId: string): { report: ReportJson; summary: RunSummary; plan: Plan } {
  const run = store.getRun(runId);
  if (!run) throw new GauntletError('GAUNTLET_RUN_NOT_FOUND', [runId, store.path]);
  const plan = JSON.parse(run.plan_json) as Plan;
  const nodes = store.nodes(runId);
  const dockerEvents = store.dockerEvents(runId);
  const episodes = store.episodes(runId);
  const loadStart = run.load_started_at ?? run.started_at;
  const loadEnd = run.load_ended_at ?? run.ended_at ?? loadStart;
  const journal = store.runEvents(runId);
  const exposureInput = exposureInputOf(store, runId, loadStart, loadEnd, nodes.map((n) => n.name), episodes, journal);
  const summary = summarizeRun({
    ...exposureInput,
    confidence: plan.confidence,
    mtbfTargetHours: plan.mtbf_target / 3_600_000,
    probes: { slots: store.probeSlots(runId, nodes.map((n) => n.name), plan.probes.interval, loadEnd) },
    probeIntervalMs: plan.probes.interval,
    states: store.nodeStates(runId),
    loadWindows: store.loadTotals(runId),
    latencyWindows: store.latencyTotals(runId),
    outsideInjected: store.countOutsideInjected(runId, loadEnd, plan.service?.name ?? null),
  });
  const evidence = new Map(episodes.map((e) => [e.id, JSON.parse(e.evidence) as { exitCode?: number; oomKilled?: boolean; restartCount?: number }]));
  const firstEvidence = new Map(episodes.map((e) => [e.id, e.first_evidence]));
  const s = summary;
  const L = s.latency;
  const engine = run.engine ? (JSON.parse(run.engine) as { name: string; capabilities: EngineCapabilities; generators?: ({ name: string; host: string | null } | string)[] }) : null;
  // Without per-request rows, outside injected episodes is counted per window (the plan's timeout before each episode too).
  const byWindows = s.requests.outsideInjected === null ? store.countOutsideInjectedWindows(runId, loadEnd, plan.load.timeout, plan.service?.name ?? null) : null;
  const outside = s.requests.outsideInjected ?? (byWindows ? { total: byWindows.total, failed: byWindows.failed, errorRate: byWindows.total ? byWindows.failed / byWindows.total : null } : null);
  const outsideLatency = latencyOutsideFaults(store, runId, plan, loadEnd);
  const memory = memoryTrends(store, runId, nodes.map((n) => n.name), plan.gates?.memory_growth === false ? 0.95 : (plan.gates?.memory_growth.confidence ?? 0.95));
  const report: ReportJson = {
    schema: 'gauntlet.report/1',
    schema_version: 1,
    verdict: 'pass',
    verdict_fails_run: false,
    gates: [],
    reliability: reliability(store, runId, {
      plan,
      exposure: exposureInput,
      exposureNodeHours: s.exposureNodeHours,
      failuresCounted: s.failures.countedForMtbf,
      episodes: s.episodes,
      requests: { total: s.requests.total, ok: s.requests.ok, outputTokens: s.requests.outputTokens },
    }),
    memory: memory.map((m) => ({ node: m.node, kind: m.kind, samples: m.trend.samples, span_hours: r4(m.trend.spanHours) as number, slope_bytes_per_hour: r1(m.trend.slopeBytesPerHour), interval: m.trend.interval ? [r1(m.trend.interval[0]) as number, r1(m.trend.interval[1]) as number] : null, confidence: m.trend.confidence, growing: m.trend.growing, per_24h_bytes: r1(m.trend.per24hBytes), hours_to_limit: r4(m.trend.hoursToLimit), limit_bytes: m.trend.limitBytes })),
    run: {
      id: run.id,
      plan: run.plan_name,
      status: run.status,
      started_at: iso(run.started_at) as string,
      ended_at: iso(run.ended_at),
      load_started_at: iso(run.load_started_at),
      load_ended_at: iso(run.load_ended_at),
      time_scale: Number.isFinite(run.time_scale) ? run.time_scale : null,
      seed: run.seed,
      host: run.host,
      gauntlet_version: run.gauntlet_version,
      error: run.error,
      engine: engine ? { name: engine.name, capabilities: engine.capabilities } : null,
    },
    nodes: nodes.map((n) => ({
      name: n.name,
      endpoint: n.endpoint,
      container: n.container_name,
      docker_engine: n.docker_engine ?? null,
      image: n.image,
      // Counted from Docker's own start events during the run: its RestartCount goes back to
      // 0 whenever a container is started or restarted by hand (node-kill stop and restart do).
      restarts: n.container_id === null ? null : dockerEvents.filter((e) => e.node === n.name && e.action === 'start').length,
      exposure_hours: r4(s.perNodeExposureHours[n.name] ?? 0) as number,
      availability: r4(s.availability.perNode[n.name] ?? null),
      telemetry: Object.fromEntries(store.telemetrySummary(runId, n.name).map(({ metric, ...t }) => [metric, t])),
    })),
    exposure_node_hours: r4(s.exposureNodeHours) as number,
    exposure_real_node_hours: r4(s.exposureNodeHours / (run.time_scale > 0 ? run.time_scale : 1)) as number,
    failures: { spontaneous: s.failures.spontaneous, injected: s.failures.injected, orchestrator: s.failures.orchestrator, recovery_failed: s.failures.recoveryFailed, counted_for_mtbf: s.failures.countedForMtbf },
    orchestrator_blind_ms: r4(s.blindMs) as number,
    orchestrator_down_ms: r4(s.downMs) as number,
    generator: (() => {
      const limit = plan.load.generator_behind_limit ?? 0.05;
      // With max_in_flight, waiting for a slot is the plan's own queue, not the generator's lateness.
      const capped = plan.load.max_in_flight !== undefined;
      // Every generator's own signals: this process's and a single k6's under GENERATOR_NODE,
      // each of several worker threads or k6 instances under its own node.
      // (recorded as {name, host}; a run of an earlier version recorded names only)
      const recorded = (engine?.generators ?? []).map((g) => (typeof g === 'string' ? { name: g, host: null } : g));
      const named = recorded.map((g) => g.name).filter((n) => generatorNode(n) !== GENERATOR_NODE);
      const nodes = [GENERATOR_NODE, ...named.map(generatorNode)];
      const perNode = nodes.map((node) =>
        store.generatorSignals(runId, {
          node,
          loadStartedAt: loadStart,
          loadEndedAt: loadEnd,
          windowMs: plan.load.window,
          queueLimitMs: QUEUE_DELAY_LIMIT_MS,
          lagLimitMs: LOOP_LAG_LIMIT_MS,
          shareLimit: K6_CPU_SHARE_LIMIT,
        }),
      );
      const first = perNode[0] as (typeof perNode)[number];
      const signals = { loadWindows: first.loadWindows, queueWindows: first.queueWindows, telemetry: perNode.flatMap((x) => x.telemetry) };
      const kindOf = (name: string): 'gauntlet process' | 'worker thread' | 'k6 process' => (name === 'gauntlet' ? 'gauntlet process' : name.startsWith('k6') ? 'k6 process' : 'worker thread');
      const generators = [{ name: 'gauntlet', host: null }, ...recorded.filter((g) => g.name !== 'gauntlet')].map(({ name, host }) => {
        const node = generatorNode(name);
        return {
          name,
          kind: kindOf(name),
          host: host ?? run.host ?? hostname(),
          loop_lag_p99_max_ms: name.startsWith('k6') ? null : r4(store.telemetryMax(runId, node, 'loop_lag_p99_ms')),
          k6_cpu_max_cores: name.startsWith('k6') ? r4(store.telemetryMax(runId, node, 'k6_cpu_cores')) : null,
          late_max_ms: name.startsWith('k6-') ? r4(store.telemetryMax(runId, node, 'late_ms_max')) : null,
          clock_offset_ms: host !== null ? r4(store.telemetryMax(runId, node, 'clock_offset_ms')) : null,
        };
      });
      const g = judgeGenerator({ loadStartedAt: loadStart, loadEndedAt: loadEnd, windowMs: plan.load.window, ...signals, queueWindows: capped ? [] : signals.queueWindows, limitShare: limit });
      const lagMax = store.telemetryMax(runId, GENERATOR_NODE, 'loop_lag_p99_ms');
      return {
        kept_up: g.keptUp,
        behind_ms: r4(g.behindMs) as number,
        behind_share: r4(g.behindShare) as number,
        limit_share: limit,
        rules: behindRules(capped, engine?.name === 'k6'),
        behind_windows: g.spans.slice(0, 50).map((x) => ({ from: new Date(x.from).toISOString(), to: new Date(x.to).toISOString(), why: x.why })),
        loop_lag_p99_max_ms: r4(lagMax),
        k6_cpu_max_cores: r4(g.k6CpuMaxCores),
        cores: g.cores,
        generators,
      };
    })(),
    mtbf: {
      point_hours: r4(s.mtbf.point_hours),
      lower_bound_hours: r4(s.mtbf.lower_bound_hours) as number,
      confidence: s.mtbf.confidence,
      interval_hours: [r4(s.mtbf.interval_hours[0]) as number, r4(s.mtbf.interval_hours[1])],
      target_hours: s.mtbf.target_hours,
      demonstrated: s.mtbf.demonstrated,
      more_node_hours_needed: r4(s.mtbf.more_node_hours_needed) as number,
      method: 'time-terminated, constant failure rate; lower bound 2T/χ²(C; 2r+2); r = spontaneous failures + failed recoveries',
    },
    recovery: {
      count: s.recovery.count,
      p50_ms: r1(s.recovery.p50),
      p95_ms: r1(s.recovery.p95),
      p99_ms: r1(s.recovery.p99),
      max_ms: r1(s.recovery.max),
      detect_p50_ms: r1(s.recovery.detect.p50),
      restart_p50_ms: r1(s.recovery.restart.p50),
      ready_p50_ms: r1(s.recovery.ready.p50),
    },
    availability: { value: r4(s.availability.value), probes: s.availability.probes, ok: s.availability.ok, busy: s.availability.busy },
    requests: {
      total: s.requests.total,
      ok: s.requests.ok,
      degraded: s.requests.outcomes.degraded ?? 0,
      baseline: (() => {
        const row = store.runEvents(runId).find((e) => e.kind === 'baseline');
        const list = row?.detail ? (JSON.parse(row.detail) as { mix: string; samples: number; p50Ms: number; thresholdMs: number }[]) : [];
        return list.map((b) => ({ mix: b.mix, samples: b.samples, p50_ms: r4(b.p50Ms) as number, threshold_ms: r4(b.thresholdMs) as number }));
      })(),
      failed: s.requests.failed,
      cancelled: s.requests.cancelled,
      error_rate: r4(s.requests.errorRate),
      error_rate_ci95: s.requests.errorRateInterval ? [r4(s.requests.errorRateInterval[0]) as number, r4(s.requests.errorRateInterval[1]) as number] : null,
      error_rate_outside_injected: r4(outside?.errorRate ?? null),
      error_rate_outside_injected_from: s.requests.outsideInjected ? 'requests' : 'windows',
      goodput: goodput(store, runId, plan),
      outcomes: s.requests.outcomes,
      output_tokens: s.requests.outputTokens,
      output_tokens_from: { usage: s.requests.tokensFromUsage, chunk_count: s.requests.tokensFromChunks },
      client: { requests: s.requests.client.total, failed: s.requests.client.failed, error_rate: r4(s.requests.client.errorRate), retries: s.requests.client.retries },
      schedule_misses: s.requests.scheduleMisses,
      accounting: s.requests.accounting,
    },
    latency: {
      ttft_source: engine?.capabilities.ttft ?? null,
      ttft_p50_ms: r1(L.ttft.p50),
      ttft_p95_ms: r1(L.ttft.p95),
      ttft_p99_ms: r1(L.ttft.p99),
      ttft_from_scheduled_p50_ms: r1(L.ttft_sched.p50),
      ttft_from_scheduled_p95_ms: r1(L.ttft_sched.p95),
      ttft_from_scheduled_p99_ms: r1(L.ttft_sched.p99),
      itl_p50_ms: r1(L.itl.p50),
      itl_p99_ms: r1(L.itl.p99),
      tpot_p50_ms: r1(L.tpot.p50),
      tpot_p99_ms: r1(L.tpot.p99),
      e2e_p50_ms: r1(L.e2e.p50),
      e2e_p99_ms: r1(L.e2e.p99),
      e2e_from_scheduled_p50_ms: r1(L.e2e_sched.p50),
      e2e_from_scheduled_p99_ms: r1(L.e2e_sched.p99),
      queue_delay_p50_ms: r1(L.queue_delay.p50),
      queue_delay_p99_ms: r1(L.queue_delay.p99),
      samples: L.ttft.count,
      itl_samples: L.itl.count,
      outside_faults: outsideLatency,
    },
    faults: store
      .faults(runId)
      .filter((f) => f.state !== 'skipped')
      .map((f) => ({
        id: f.id,
        kind: f.kind,
        node: f.node,
        state: f.state,
        driver: f.driver ?? null,
        injected_at: iso(f.injected_at),
        reverted_at: iso(f.reverted_at),
        held_ms: f.injected_at !== null && f.reverted_at !== null ? r1(f.reverted_at - f.injected_at) : null,
        revert_action: f.revert_action,
        result: f.result ? (JSON.parse(f.result) as Record<string, unknown>) : null,
        error: f.error,
        episodes: s.episodes.filter((e) => e.faultId === f.id).map((e) => e.id),
        effect: faultEffect(store, runId, f.node, f.injected_at, f.reverted_at),
      })),
    faults_not_run: store
      .faults(runId)
      .filter((f) => f.state === 'skipped' || (f.state === 'failed' && f.injected_at === null))
      .map((f) => ({ id: f.id, kind: f.kind, node: f.node, state: f.state, reason: f.error ?? '' })),
    journal: store.runEvents(runId).map((e) => ({ at: iso(e.at) as string, kind: e.kind, message: e.message })),
    service: plan.service
      ? (() => {
          const name = plan.service.name;
          const rows = store.db
            .prepare("SELECT sent_at, response_at, end_at, outcome FROM requests WHERE run_id = ? AND node = ? AND outcome != 'cancelled' ORDER BY sent_at")
            .all(runId, name) as ServiceRequest[];
          const list = store
            .faults(runId)
            .filter((f) => f.injected_at !== null)
            .map((f) => {
              const o = clientOutage(rows, f.injected_at as number, (f.reverted_at ?? loadEnd) + plan.detection.fault_grace);
              return { fault_id: f.id, fault_kind: f.kind, node: f.node, started_at: o ? iso(o.startedAt) : null, outage_ms: o ? r1(o.outageMs) : null, failed_requests: o?.failed ?? 0, later_failures: o?.laterFailures ?? 0 };
            });
          const measured = list.flatMap((o) => (o.outage_ms === null ? [] : [o.outage_ms]));
          return {
            name: plan.service.name,
            endpoint: plan.service.endpoint,
            outages: list,
            max_outage_ms: measured.length ? Math.max(...measured) : null,
            availability: r4(availabilityFromSlots(store.probeSlots(runId, [plan.service.name], plan.probes.interval, loadEnd), store.nodeStates(runId)).value),
          };
        })()
      : null,
    episodes: s.episodes.map((e) => ({
      id: e.id,
      node: e.node,
      cause: e.cause,
      fault_id: e.faultId,
      status: e.status,
      started_at: iso(e.startedAt) as string,
      detected_ms: r1(e.detectedMs) as number,
      restart_ms: r1(e.restartMs),
      ready_ms: r1(e.readyMs),
      recovery_ms: r1(e.recoveryMs),
      requests_affected: e.requestsAffected,
      first_evidence: firstEvidence.get(e.id) ?? '',
      exit_code: evidence.get(e.id)?.exitCode ?? null,
      oom_killed: evidence.get(e.id)?.oomKilled === true,
      restart_count: evidence.get(e.id)?.restartCount ?? null,
    })),
  };
  const gateInput: GateInput = {
    hours: (loadEnd - loadStart) / 3_600_000,
    failuresForMtbf: s.failures.countedForMtbf,
    mtbfLowerBoundHours: s.mtbf.lower_bound_hours,
    confidence: plan.confidence,
    availability: s.availability.value,
    errorRate: outside?.errorRate ?? s.requests.errorRate,
    errorRateInterval: outside && outside.total > 0 ? wilsonInterval(outside.failed, outside.total, 0.95) : s.requests.errorRateInterval,
    errorRateScope: outside ? 'outside injected episodes' : 'all requests',
    requests: outside?.total ?? s.requests.total,
    failoverMaxOutageMs: report.service?.max_outage_ms ?? null,
    hasService: report.service !== null,
    failoverUnmeasured: !report.service
      ? null
      : !store.hasRequestRows(runId)
        ? 'the service endpoint is measured per request: this run kept no per-request rows (load.raw_requests: false)'
        : report.service.outages.length === 0
          ? 'no fault was injected: no node failed under the service endpoint'
          : null,
    failoverUnended: report.service?.outages.filter((o) => o.started_at !== null && o.outage_ms === null).length ?? 0,
    recovery: {
      episodes: s.episodes.filter((e) => e.cause !== 'orchestrator').length,
      recovered: s.episodes.filter((e) => e.cause !== 'orchestrator' && e.recoveryMs !== null).length,
      failed: s.episodes.filter((e) => e.cause !== 'orchestrator' && e.status === 'recovery_failed').length,
      maxMs: s.recovery.max,
      limitMs: plan.recovery_limit,
    },
    ttftP50Ms: outsideLatency ? outsideLatency.ttft_p50_ms : L.ttft.p50,
    ttftP99Ms: outsideLatency ? outsideLatency.ttft_p99_ms : L.ttft.p99,
    tpotP50Ms: outsideLatency ? outsideLatency.tpot_p50_ms : L.tpot.p50,
    tpotP99Ms: outsideLatency ? outsideLatency.tpot_p99_ms : L.tpot.p99,
    latencyScope: outsideLatency ? 'outside fault windows' : 'all requests',
    memory,
  };
  report.gates = evaluateGates(plan.gates ?? DEFAULT_GATES, gateInput, plan.mtbf_target / 3_600_000);
  report.verdict = overallVerdict(report.gates);
  report.verdict_fails_run = report.verdict === 'fail' || (report.verdict === 'conditional' && (plan.gates ?? DEFAULT_GATES).conditional_fails);
  return { report, summary, plan };
}

/**
 * ttft and tpot percentiles outside the faults: the run's totals less the windows a fault's
 * window (injection − timeout … revert + grace) or an injected episode touched (exact: the
 * histograms are subtracted). Null when nothing was injected.
 */
function latencyOutsideFaults(store: Store, runId: string, plan: Plan, loadEnd: number): ReportJson['latency']['outside_faults'] {
  const spans = [
    ...store.faults(runId).flatMap((f) => (f.injected_at === null ? [] : [{ node: f.node, from: f.injected_at - plan.load.timeout, to: (f.reverted_at ?? loadEnd) + plan.detection.fault_grace }])),
    ...store.episodes(runId).flatMap((e) => (e.cause.startsWith('injected') ? [{ node: e.node, from: e.started_at - plan.load.timeout, to: e.serving_again_at ?? loadEnd }] : [])),
  ];
  if (spans.length === 0) return null;
  // a service endpoint's requests are recorded under its own name: a fault on any node behind it touches them
  if (plan.service) spans.push(...spans.map((sp) => ({ ...sp, node: (plan.service as { name: string }).name })));
  const part = (metric: 'ttft' | 'tpot') => {
    const touched = store.latencyWindowsTouching(runId, metric, plan.load.window, spans);
    const m = mergeHistograms(store.latencyTotals(runId, metric).map((x) => x.hist), touched);
    return { m, left: touched.length };
  };
  const ttft = part('ttft');
  const tpot = part('tpot');
  return { ttft_p50_ms: r1(ttft.m.percentile(50)), ttft_p99_ms: r1(ttft.m.percentile(99)), tpot_p50_ms: r1(tpot.m.percentile(50)), tpot_p99_ms: r1(tpot.m.percentile(99)), samples: ttft.m.count, windows_left_out: ttft.left };
}

/** Goodput against the plan's SLO (by default the gates' p99 lines). */
function goodput(store: Store, runId: string, plan: Plan): ReportJson['requests']['goodput'] {
  const gates = plan.gates ?? DEFAULT_GATES;
  const ttft = plan.slo?.ttft ?? (gates.ttft === false ? null : gates.ttft.p99);
  const tpot = plan.slo?.tpot ?? (gates.tpot === false ? null : gates.tpot.p99);
  const c = store.countGoodput(runId, { ttftMs: ttft, tpotMs: tpot });
  return c ? { good: c.good, total: c.total, share: c.total ? r4(c.good / c.total) : null, slo_ttft_ms: ttft, slo_tpot_ms: tpot } : null;
}

/** Each node's memory trend: the container's (against its limit) and the GPUs' framebuffer (DCGM, MiB summed over GPUs). */
function memoryTrends(store: Store, runId: string, nodes: string[], confidence: number): GateInput['memory'] {
  // Thinned to at most 1000 means a node (a 72 h run has 52 000 samples each): the slope is the
  // same line, and the interval's autocorrelation correction already treats close samples as one.
  const out: GateInput['memory'] = [];
  const trend = (node: string, kind: string, metric: string, scale: number, limitBytes: number | null): void => {
    const m = store.telemetryMeans(runId, node, metric);
    if (m.samples === 0) return;
    out.push({ node, kind, trend: { ...memoryTrend(m.points.map((p) => ({ at: p.at, bytes: p.value * scale })), { confidence, limitBytes }), samples: m.samples } });
  };
  for (const node of nodes) {
    const limit = store.lastTelemetry(runId, node, CONTAINER_METRICS.memoryLimit);
    trend(node, 'container', CONTAINER_METRICS.memory, 1, limit && limit > 0 ? limit : null);
    trend(node, 'gpu', 'DCGM_FI_DEV_FB_USED', 1_048_576, null);
  }
  return out;
}

export interface TelemetryStats {
  samples: number;
  first: number;
  last: number;
  min: number;
  max: number;
}

/** The spans a run's journal recorded under this kind (detail {from, to, nodes}). */
/**
 * What exposure is counted from, as the store has it: the episodes, and the journal's spans of
 * Gauntlet's blindness and downtime and the episodes a killed Gauntlet left open. `loadEnd`
 * earlier than the load's end gives the exposure so far (the runner's sequential test).
 */
export function exposureInputOf(store: Store, runId: string, loadStart: number, loadEnd: number, nodes: string[], episodes = store.episodes(runId), journal = store.runEvents(runId)): ExposureInput {
  return {
    loadStartedAt: loadStart,
    loadEndedAt: loadEnd,
    nodes,
    episodes,
    blindSpans: spansOf(journal, 'orchestrator_blind_span'),
    downSpans: spansOf(journal, 'orchestrator_down_span'),
    cutOff: new Map(
      journal
        .filter((e) => e.kind === 'episode_cut_off' && e.detail)
        .map((e) => JSON.parse(e.detail as string) as { episode: string; at: number })
        .map((x) => [x.episode, x.at]),
    ),
  };
}

function spansOf(journal: { kind: string; detail: string | null }[], kind: string): { from: number; to: number; nodes: string[] }[] {
  return journal.filter((e) => e.kind === kind && e.detail).map((e) => JSON.parse(e.detail as string) as { from: number; to: number; nodes: string[] });
}
