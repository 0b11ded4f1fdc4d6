// The run supervisor: resolves the plan's targets, waits until they are ready, then drives
// the load, fires the faults on schedule, feeds Docker events, probes and request outcomes
// to the detectors, writes everything to the store, and at the end — normal, aborted or
// failed — reverts every fault and writes the report.
import { randomBytes } from 'node:crypto';
import type { Random } from '../util/random.js';
import { hostname } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { request, type Dispatcher } from 'undici';
import { FAULTS } from '../../faults/index.js';
import { FaultWindows, NodeDetector, type Episode, type Observation, type StateChange } from '../detect/detector.js';
import { DegradedJudge } from '../detect/degraded.js';
import { TelemetryCollector } from '../detect/telemetry.js';
import { healthProbe, NodeProber, probeDispatcher, type ProbePace, type ProbeResult } from '../detect/probes.js';
import { CancelScope } from '../load/request.js';
import { tailLogs, watchContainerEvents, type Docker, type EventWatch } from '../docker/engine.js';
import { engineKey, engineLabel, type EngineSpec } from '../docker/engines.js';
import { EngineContexts, sameEngine } from '../fault/engine-contexts.js';
import type { ContainerEvent } from '../docker/events.js';
import { GauntletError, errorMessage } from '../errors.js';
import { recordSkipped, revertLeftovers } from '../fault/ledger.js';
import { isInstant, type FaultContext, type FaultInjector, type FaultTarget } from '../fault/types.js';
import { BuiltinEngine } from '../load/builtin.js';
import { generatorNode, GENERATOR_NODE } from '../analysis/generator.js';
import { GeneratorMonitor } from '../load/generator.js';
import { ParallelBuiltinEngine, resolveParallelism } from '../load/parallel.js';
import { k6HostsOf } from '../load/k6/remote.js';
import { K6Engine } from '../load/k6/engine.js';
import { K6OperatorEngine } from '../load/k6/operator-engine.js';
import type { LoadEngine, LoadSink, RequestRecord } from '../load/types.js';
import { RateCurve } from '../load/schedule.js';
import { WindowAggregator, rollupSpanMs } from '../load/windows.js';
import { buildWorkload, peakRate, type MixItem, type Workload } from '../load/workload.js';
import { expectedLatencyMs } from '../load/k6/config.js';
import { openFilesLimit } from '../util/proc.js';
import type { Logger } from '../log.js';
import type { Plan } from '../plan/schema.js';
import { writeReports } from '../report/write.js';
import { exposureInputOf } from '../report/build.js';
import { exposure, failureNodeHours } from '../analysis/run-summary.js';
import { planSequentialTest, sprtEvaluate } from '../analysis/sprt.js';
import { isSuccess, type EpisodeRow, type RunPhase, type RunRow, type RunStatus, type Store } from '../store/store.js';
import { selfOwner, type ProcessHost } from '../util/proc.js';
import { percentileSorted } from '../analysis/stats.js';
import { type Clock, RealClock, every } from '../util/clock.js';
import { formatDuration } from '../util/duration.js';
import { FaultSupervisor } from './fault-supervisor.js';
import { defaultEngineFor, planEngines, resolveOnEngines, type ResolvedTarget } from './targets.js';
import { VERSION } from '../version.js';

export interface RunContext {
  store: Store;
  clock: Clock;
  log: Logger;
  /**
   * Docker client, created by the caller (creating one does not connect). Needed for container
   * targets, and for reverting leftover Docker faults even when this plan has none.
   */
  docker: Docker | null;
  reportsDir: string;
  signal: AbortSignal;
  onProgress?: (p: RunProgress) => void;
  progressIntervalMs?: number;
  engine?: LoadEngine;
  runId?: string;
  /** Where the run id's suffix comes from (default: the OS's randomness; tests pass a seeded one). */
  random?: Random;
  /** HTTP to the targets (default: a pool for the load, another for probes); tests pass in-process stand-ins. */
  http?: { load: Dispatcher; probes: Dispatcher };
  /** The host's processes, for faults that signal a container's process (default: the real ones). */
  processes?: ProcessHost;
  /** Tests: how a Docker client for a plan's engine is made (default: dockerode from its spec). */
  connectEngine?: (spec: EngineSpec) => Docker;
  /**
   * Ends the run early, as completed, once this returns true (checked every 250 ms): a drill
   * ends when its fault is over and the node serves again.
   */
  until?: (v: RunView) => boolean;
  /** Sees the run as it goes (the daemon's Prometheus metrics): never its record, which is the store's. */
  observer?: RunObserver;
}

/** What a run tells an onlooker, as it happens. A hook that throws fails the run (as a bug would). */
export interface RunObserver {
  /** Every request attempt as recorded (after the degraded judgement). */
  request?(r: RequestRecord): void;
  /** A node's state changed (up, busy, degraded, down, recovering). */
  state?(c: StateChange): void;
  /** An episode opened or moved on (detected, running again, serving again, closed). */
  episode?(e: Episode): void;
  /** Faults active now, after an injection or a revert. */
  faults?(active: number): void;
}

export interface RunView {
  elapsedMs: number;
  faultsDone: number;
  faultsTotal: number;
  activeFaults: number;
  /** No node has an open episode (busy and degraded nodes serve). */
  allUp: boolean;
  /** When the last episode closed (serving again), or null. */
  lastServingAgainAt: number | null;
  now: number;
}

export interface RunProgress {
  runId: string;
  elapsedMs: number;
  durationMs: number;
  plannedRate: number;
  achievedRate: number;
  inFlight: number;
  ok: number;
  failed: number;
  ttftP50: number | null;
  ttftP99: number | null;
  nodes: { node: string; state: string; since: number | null }[];
  faultsDone: number;
  faultsTotal: number;
  episodes: number;
}

export interface RunResult {
  runId: string;
  status: RunStatus;
  reportDir: string;
  error: string | null;
}

interface Occurrence {
  offsetMs: number;
  kind: string;
  node: string;
  params: unknown;
}

export function faultSchedule(plan: Plan): Occurrence[] {
  const out: Occurrence[] = [];
  for (const f of plan.faults) {
    if (f.at !== undefined) out.push({ offsetMs: f.at, kind: f.kind, node: f.target, params: f.params });
    else {
      const every = f.every as number;
      for (let t = f.start ?? every; t < plan.duration; t += every) out.push({ offsetMs: t, kind: f.kind, node: f.target, params: f.params });
    }
  }
  return out.sort((a, b) => a.offsetMs - b.offsetMs);
}

/**
 * The load still to come in a run taken up at `fromMs` of its plan, for `forMs` more: the rate
 * profile from that moment on (a ramp under way goes on from where it was), with a seed of the
 * resumption's own (the arrivals of the killed process are not replayed). Null: nothing left.
 */
export function remainingWorkload(w: Workload, fromMs: number, forMs: number, resumes: number): Workload | null {
  if (forMs <= 0) return null;
  const curve = new RateCurve(w.profile);
  const stages: Workload['profile']['stages'] = [];
  let t = 0;
  for (const st of w.profile.stages) {
    const end = t + st.duration;
    if (end > fromMs) stages.push({ duration: end - Math.max(t, fromMs), target: st.target });
    t = end;
  }
  return { ...w, durationMs: forMs, seed: (w.seed + resumes * 0x9e3779b1) >>> 0, profile: { startRate: curve.rate(fromMs), stages } };
}

export function newRunId(plan: Plan, now: number, random: Random): string {
  const d = new Date(now).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${plan.name}-${d}-${Math.floor(random.next() * 0x10000).toString(16).padStart(4, '0')}`;
}

/** Randomness from the OS, for what must differ between runs of the same plan (run ids). */
export function osRandom(): Random {
  return { next: () => randomBytes(4).readUInt32BE(0) / 0x1_0000_0000 };
}

async function waitReady(targets: ResolvedTarget[], plan: Plan, clock: Clock, signal: AbortSignal, log: Logger, dispatcher: Dispatcher): Promise<void> {
  const stop = CancelScope.fromSignal(signal);
  const deadline = clock.now() + plan.ready_timeout;
  const pending = new Map(targets.map((t) => [t.node, 'not probed yet']));
  while (pending.size > 0) {
    for (const t of targets) {
      if (!pending.has(t.node)) continue;
      const r = await healthProbe(dispatcher, t.endpoint, plan.probes.path, plan.probes.timeout, clock, stop);
      if (r.ok) pending.delete(t.node);
      else pending.set(t.node, r.error ?? `HTTP ${r.status}`);
    }
    if (pending.size === 0) break;
    if (clock.now() > deadline) {
      const [node, why] = [...pending][0] as [string, string];
      const t = targets.find((x) => x.node === node) as ResolvedTarget;
      throw new GauntletError('GAUNTLET_TARGET_NOT_READY', [node, `${t.endpoint}${plan.probes.path} still answers "${why}" after ${formatDuration(plan.ready_timeout)} (ready_timeout)`]);
    }
    log.debug({ pending: Object.fromEntries(pending) }, 'waiting for targets to be ready');
    await clock.sleep(250, signal);
  }
}

async function discoverModel(endpoint: string, clock: Clock, dispatcher: Dispatcher): Promise<string> {
  try {
    const res = await request(new URL('/v1/models', endpoint), { signal: clock.deadline(5000), dispatcher });
    const body = (await res.body.json()) as { data?: { id?: unknown }[] };
    const id = body.data?.[0]?.id;
    if (res.statusCode === 200 && typeof id === 'string') return id;
    throw new Error(`HTTP ${res.statusCode}, no model listed`);
  } catch (err) {
    throw new GauntletError('GAUNTLET_TARGET_NOT_READY', [endpoint, `cannot list models at /v1/models (${errorMessage(err)}); set load.model in the plan`]);
  }
}

function episodeRow(runId: string, e: Episode): EpisodeRow {
  return {
    id: e.id,
    run_id: runId,
    node: e.node,
    status: e.status,
    cause: e.cause,
    fault_id: e.faultId,
    started_at: e.startedAt,
    detected_at: e.detectedAt,
    running_again_at: e.runningAgainAt,
    ready_at: e.readyAt,
    serving_again_at: e.servingAgainAt,
    first_evidence: e.firstEvidence,
    evidence: JSON.stringify(e.evidence),
    requests_affected: e.requestsAffected,
  };
}

/** What a fault is told of its target. */
function faultTarget(t: ResolvedTarget): FaultTarget {
  return { node: t.node, containerId: t.containerId, containerName: t.containerName, engine: t.engine ?? null };
}

/** How long the run waits for the Docker event stream to open before it goes on without it. */
const EVENTS_READY_WAIT_MS = 15_000;

/**
 * What the prepare phase found: everything a run needs before it exists in the store. Nothing
 * here holds a resource that must be released except the probe dispatcher the run then owns.
 */
export interface Prepared {
  /** DOCKER_HOST's engine (null when no target is on it). */
  docker: Docker | null;
  /** The default engine's fault context; `engines` moves it to a target's engine. */
  faultCtx: FaultContext;
  /** Each engine's context (the plan's engines), with the agents to remove at the end. */
  engines: EngineContexts;
  probes: Dispatcher;
  /** The probe dispatcher was made here (closed when the run ends), not passed in. */
  ownProbes: boolean;
  targets: ResolvedTarget[];
  service: { node: string; endpoint: string } | null;
  model: string;
  workload: ReturnType<typeof buildWorkload>;
  engine: LoadEngine;
}

/** The load engine a plan asks for: builtin (on threads), k6 (local, over SSH) or k6 through k6-operator. */
async function loadEngineFor(plan: Plan, planSource: string | null, generators: number, clock: Clock, ctx: RunContext): Promise<LoadEngine> {
  const dir = planSource ? dirname(planSource) : process.cwd();
  const l = plan.load;
  const script = l.script ? resolvePath(dir, l.script) : null;
  if (l.engine === 'k6' && l.k6_operator) {
    const op = l.k6_operator;
    return new K6OperatorEngine({ script, instances: generators, namespace: op.namespace, context: op.context ?? null, kubectl: op.kubectl, image: op.image ?? null, sse: op.sse, startTimeoutMs: op.start_timeout, log: ctx.log });
  }
  if (l.engine === 'k6') {
    return K6Engine.create({ script, arrival: l.arrival, maxInFlight: l.max_in_flight ?? null, log: ctx.log, ...(l.k6_hosts ? { hosts: k6HostsOf(l.k6_hosts, dir) } : { instances: generators }) });
  }
  return generators > 1 ? new ParallelBuiltinEngine(clock, generators) : new BuiltinEngine(clock, ctx.http?.load);
}

/**
 * Prepare: Docker reachable, targets resolved, leftovers of a killed Gauntlet reverted, every
 * target ready, the model known, the workload built (prompt files read and checked) and the
 * engine made. It throws (a GauntletError naming what is wrong) before the run exists, so a
 * failed prepare leaves no run row behind.
 */
export async function prepare(plan: Plan, planSource: string | null, ctx: RunContext, resume: { model: string | null } | null = null): Promise<Prepared> {
  const { store, clock, signal } = ctx;
  const docker = await defaultEngineFor(plan, ctx.docker);
  // Waits on real machinery (a process to be reaped, Docker to register an exit) take real time
  // even when the plan's clock is scaled; a virtual clock's fakes live on it.
  const machine = Number.isFinite(clock.timeScale) && clock.timeScale !== 1 ? new RealClock() : clock;
  const base: FaultContext = { docker, log: ctx.log, clock, machineClock: machine, ...(ctx.processes ? { processes: ctx.processes } : {}) };
  const engines = new EngineContexts(base, ctx.connectEngine);
  const faultCtx = engines.for(null);
  // The plan's engines, their files relative to the plan; each reachable before anything starts.
  const specs = planEngines(plan, planSource ? dirname(planSource) : process.cwd());
  const probes = ctx.http?.probes ?? probeDispatcher();
  try {
    const targets = await resolveOnEngines(plan, specs, engines, docker, clock);
    // Faults an earlier, killed Gauntlet left behind are undone before anything else touches
    // the targets: the ledger first (each fault on its own engine), then anything still
    // carrying Gauntlet's mark in the targets, engine by engine.
    for (const spec of [null, ...specs.values()]) {
      const mine = targets.filter((t) => sameEngine(t.engine, spec) && t.containerId).map((t) => t.containerId as string);
      if (spec && mine.length === 0) continue;
      const on = spec ? engines.for(spec) : { ...faultCtx, docker: ctx.docker };
      for (const line of await revertLeftovers(store, on, { containers: mine })) ctx.log.warn(`reverted a leftover fault${spec ? ` (engine ${spec.name})` : ''}: ${line}`);
    }
    // A run taken up after a crash does not wait for its nodes: one may be down, and that is
    // what its detection must see; the model is the one its load used.
    if (!resume) await waitReady(targets, plan, clock, signal, ctx.log, probes);
    const entries = plan.load.mix ?? [plan.load];
    const named = entries.find((e) => e.model !== undefined)?.model;
    const model = entries.every((e) => e.model !== undefined) && named ? named : (resume?.model ?? (await discoverModel((targets[0] as ResolvedTarget).endpoint, clock, probes)));
    // With a service endpoint, the load goes there (the router spreads it over the nodes).
    const service = plan.service ? { node: plan.service.name, endpoint: plan.service.endpoint } : null;
    const workload = buildWorkload(plan, service ? [service] : targets.map((t) => ({ node: t.node, endpoint: t.endpoint })), model, planSource);
    // An open loop holds a connection per request in flight: warn before EMFILE turns into a
    // storm of conn_errors that are the client's fault, not the node's.
    const needed = Math.ceil((peakRate(workload.profile) * expectedLatencyMs(workload)) / 1000) * 2 + 64;
    const fdLimit = openFilesLimit();
    if (fdLimit !== null && needed > fdLimit) {
      ctx.log.warn(`this load may need ~${needed} connections but the open-files limit is ${fdLimit}: raise it (ulimit -n ${needed * 2}) or requests will fail with EMFILE`);
    }
    const generators = resolveParallelism(plan.load.parallelism);
    const engine = ctx.engine ?? (await loadEngineFor(plan, planSource, generators, clock, ctx));
    return { docker, faultCtx, engines, probes, ownProbes: !ctx.http, targets, service, model, workload, engine };
  } catch (err) {
    if (!ctx.http) await probes.close().catch(() => undefined);
    await engines.close().catch(() => undefined);
    throw err;
  }
}

/**
 * A run taken up by a daemon after the Gauntlet running it was killed: where its record
 * stopped (gap.from, the last row written) and when it was taken up (gap.to), the load's
 * original start and planned end, the faults already run or skipped, and which resumption this is.
 */
export interface ResumeState {
  loadStartedAt: number;
  plannedEndAt: number;
  faultsDone: number;
  resumes: number;
  gap: { from: number; to: number };
}

/** Something a phase set going that must be stopped whatever happens (a timer, probes, a stream). */
interface Held {
  what: string;
  release: () => unknown;
}

/**
 * One run, in phases: start (the run's rows, detection, the event stream, probes, telemetry),
 * steady (load, faults, detection), stop (timers, the fault schedule), finalize (reverts, the
 * last windows, everything held released, evidence, the status decided last, the report).
 * Its progress is in the store (runs.phase, phase_at, planned_end_at, faults_done, owner), not
 * only in this object, so a daemon restarted after a crash can see where it was. Whatever
 * start or steady throws goes through stop and finalize: the run never stays `running` with
 * its probes alive, and a fault is never left behind.
 */
export class Run {
  readonly id: string;
  private readonly log: Logger;
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly held: Held[] = [];
  readonly failure = new AbortController();
  private readonly finish = new AbortController();
  private readonly stopFaults = new AbortController();
  private readonly runSignal: AbortSignal;
  private runError: string | null = null;
  private finished = false;
  /** The run's row exists (start got that far): from then on every end goes through finalize. */
  private exists = false;
  /** The load ended because the caller's signal was aborted (Ctrl-C, SIGTERM, a stop request). */
  private interrupted = false;

  // detection
  private readonly faultWindows: FaultWindows;
  private readonly detectors = new Map<string, NodeDetector>();
  private readonly probers = new Map<string, NodeProber>();
  private readonly episodesSeen = new Set<string>();
  private lastServingAgainAt: number | null = null;
  /** Evidence being fetched (log tails, restart counts): awaited before the run ends. */
  private readonly evidenceTasks = new Set<Promise<unknown>>();
  private telemetry: TelemetryCollector | null = null;
  private readonly views: { node: string; endpoint: string; errorBurst: number }[];
  /** Spans during which the Docker engine was lost (orchestrator blindness), per the container nodes. */
  private readonly blind: { from: number; to: number | null; nodes: string[] }[] = [];

  // faults
  private faults!: FaultSupervisor;
  private readonly schedule: Occurrence[];
  private faultsDone = 0;
  private halted: string | null = null;
  private scheduled: Promise<void> = Promise.resolve();
  private readonly outside = new Map<number, { n: number; failed: number }>();

  // load
  /** steady() launched the engine (a run that failed in start has no load, and no load end). */
  private launched = false;
  /** When the load ended, taken in stop() before waiting for an injection under way; null: never launched. */
  private loadEnd: number | null = null;
  private launchedAt = 0;
  private loadStart = 0;
  private loadBegan = false;
  private loadEndedAt: number | null = null;
  private markBegan: (at: number) => void = () => undefined;
  private readonly began = new Promise<number>((resolve) => (this.markBegan = resolve));
  private readonly degraded = new DegradedJudge(Number.POSITIVE_INFINITY);
  private windows: WindowAggregator | null = null;
  private windowTtft: number[] = [];

  constructor(
    private readonly plan: Plan,
    private readonly planSource: string | null,
    private readonly ctx: RunContext,
    private readonly p: Prepared,
    private readonly resumed: ResumeState | null = null,
  ) {
    this.store = ctx.store;
    this.clock = ctx.clock;
    this.id = ctx.runId ?? newRunId(plan, ctx.clock.now(), ctx.random ?? osRandom());
    if (resumed) this.faultsDone = resumed.faultsDone;
    this.log = ctx.log.child({ runId: this.id });
    this.runSignal = AbortSignal.any([ctx.signal, this.failure.signal, this.finish.signal]);
    this.faultWindows = new FaultWindows(plan.detection.fault_grace, new Set(p.service ? [p.service.node] : []));
    this.views = [...p.targets.map((t) => ({ node: t.node, endpoint: t.endpoint, errorBurst: plan.detection.error_burst })), ...(p.service ? [{ ...p.service, errorBurst: 1 }] : [])];
    this.schedule = faultSchedule(plan);
    if (p.ownProbes) this.hold('probe connections', () => p.probes.close());
    // agent containers on other engines: removed once everything else is released (they revert)
    this.hold('engine agents', () => p.engines.close());
  }

  /** Prepare, then every phase in turn: what runPlan does. */
  static async execute(plan: Plan, planSource: string | null, ctx: RunContext): Promise<RunResult> {
    return Run.phases(new Run(plan, planSource, ctx, await prepare(plan, planSource, ctx)));
  }

  /**
   * Takes up a run cut off by a killed Gauntlet (its row: status running, phase not done, owner
   * gone) until its planned end: the same phases on the same run id, its record continued.
   * What it left behind must be reverted first (the daemon does, before anything else).
   */
  static async resume(row: RunRow, gapFrom: number, ctx: RunContext): Promise<RunResult> {
    const plan = JSON.parse(row.plan_json) as Plan;
    if (row.load_started_at === null || row.planned_end_at === null || row.planned_end_at === undefined) throw new Error(`run ${row.id} was cut off before its load began: nothing to take up`);
    const state: ResumeState = {
      loadStartedAt: row.load_started_at,
      plannedEndAt: row.planned_end_at,
      faultsDone: row.faults_done ?? 0,
      resumes: (row.resumes ?? 0) + 1,
      gap: { from: gapFrom, to: ctx.clock.now() },
    };
    const p = await prepare(plan, row.plan_source, { ...ctx, runId: row.id }, { model: row.model ?? null });
    return Run.phases(new Run(plan, row.plan_source, { ...ctx, runId: row.id }, p, state));
  }

  private static async phases(run: Run): Promise<RunResult> {
    try {
      await run.start();
    } catch (err) {
      // Before its row exists there is no run to finish: release what was taken, say why.
      if (!run.exists) {
        await run.releaseAll();
        throw err;
      }
      run.fail('starting the run', err);
    }
    // (a resumed run goes to stop at once when its planned end has passed meanwhile)
    if (!run.failure.signal.aborted) {
      try {
        await run.steady();
      } catch (err) {
        run.fail('the run', err);
      }
    }
    await run.stop();
    return run.finalize();
  }

  /** Anything that throws inside a callback (a full disk, a bug) fails the run through the normal path. */
  private fail(where: string, err: unknown): void {
    this.runError ??= `${where}: ${errorMessage(err)}`;
    this.log.error({ err: errorMessage(err), where }, 'run failing');
    this.failure.abort(err);
  }

  private guarded<A extends unknown[]>(where: string, fn: (...args: A) => void): (...args: A) => void {
    return (...args: A): void => {
      try {
        fn(...args);
      } catch (err) {
        this.fail(where, err);
      }
    };
  }

  private hold(what: string, release: () => unknown): void {
    this.held.push({ what, release });
  }

  private track(p: Promise<unknown>): void {
    this.evidenceTasks.add(p);
    void p.finally(() => this.evidenceTasks.delete(p)).catch(() => undefined);
  }

  /** Where the run is (runs.phase): what a daemon restarted after a crash reads to take it up. */
  private note(fields: Partial<RunRow>): void {
    try {
      this.store.updateRun(this.id, fields);
    } catch (err) {
      this.fail(`recording the run's progress (${Object.keys(fields).join(', ')})`, err);
    }
  }

  private phase(p: RunPhase, extra: Partial<RunRow> = {}): void {
    this.note({ phase: p, phase_at: this.clock.now(), ...extra });
  }

  private journal(kind: string, message: string, detail?: unknown): void {
    this.store.addRunEvent({ run_id: this.id, at: this.clock.now(), kind, message, detail: detail === undefined ? null : JSON.stringify(detail) });
  }

  // ---- start: the run's rows, detection, the event stream, probes, telemetry

  private createRow(started: number): void {
    const { plan, p, store, clock } = this;
    store.createRun({
      id: this.id,
      plan_name: plan.name,
      plan_json: JSON.stringify(plan),
      plan_source: this.planSource,
      status: 'running',
      started_at: started,
      load_started_at: null,
      load_ended_at: null,
      ended_at: null,
      time_scale: clock.timeScale,
      seed: plan.seed,
      error: null,
      host: hostname(),
      gauntlet_version: VERSION,
      engine: JSON.stringify({ name: p.engine.name, capabilities: p.engine.capabilities, generators: p.engine.generators?.() ?? [] }),
      phase: 'start',
      phase_at: started,
      owner: selfOwner(),
      model: p.model,
    });
    this.exists = true;
    for (const t of p.targets) {
      store.addNode({
        run_id: this.id,
        name: t.node,
        endpoint: t.endpoint,
        container_id: t.containerId,
        container_name: t.containerName,
        image: t.image,
        restart_count_start: t.restartCount,
        restart_count_end: null,
        docker_engine: t.containerId ? engineLabel(t.engine ?? null) : null,
      });
    }
  }

  /**
   * The run's row taken over from the killed Gauntlet: the gap (its last row to now) recorded
   * as orchestrator downtime on every node, left out of exposure; episodes it left open closed
   * where its record stops (their end was not seen: orchestrator, not a node failure); faults
   * due in the gap recorded as skipped, the one under way at the kill counted as done.
   */
  private takeUp(at: number): void {
    const { store } = this;
    const r = this.resumed as ResumeState;
    store.updateRun(this.id, { status: 'running', phase: 'start', phase_at: at, owner: selfOwner(), resumes: r.resumes });
    this.exists = true;
    const nodes = this.views.map((v) => v.node);
    this.journal(
      'orchestrator_down_span',
      `Gauntlet was down from ${new Date(r.gap.from).toISOString()} (its last record) for ${formatDuration(r.gap.to - r.gap.from)}: the run is taken up (resumption ${r.resumes}) until its planned end ${new Date(r.plannedEndAt).toISOString()}; that time is left out of exposure`,
      { from: r.gap.from, to: r.gap.to, nodes },
    );
    this.log.warn({ from: r.gap.from, gapMs: r.gap.to - r.gap.from, plannedEnd: r.plannedEndAt }, 'run taken up after Gauntlet was killed');
    for (const e of store.episodes(this.id)) {
      if (e.status !== 'open') continue;
      const ev = JSON.parse(e.evidence) as { signals?: { at: number; what: string }[] };
      (ev.signals ??= []).push({ at: r.gap.from, what: 'Gauntlet was killed while this episode was open: its end was not seen; counted as orchestrator downtime, not a node failure' });
      store.upsertEpisode({ ...e, cause: 'orchestrator', evidence: JSON.stringify(ev) });
      this.journal('episode_cut_off', `episode ${e.id} on ${e.node} was open when Gauntlet was killed: closed at its last record, not counted`, { episode: e.id, at: Math.max(r.gap.from, e.started_at) });
    }
    // what the killed run injected stays an attribution window (reverted at the restart), so
    // the recovery the revert sets off is the fault's, not a spontaneous failure
    for (const f of store.faults(this.id)) {
      if (f.injected_at === null || f.injected_at === undefined) continue;
      this.faultWindows.open(f.node, f.id, f.injected_at);
      this.faultWindows.close(f.id, f.reverted_at ?? at);
    }
  }

  async start(): Promise<void> {
    const { plan, p, store, clock } = this;
    const started = clock.now();
    // (each sets exists once the run's row is this process's: from then on every end goes through finalize)
    if (this.resumed) this.takeUp(started);
    else this.createRow(started);
    // Hourly rollups span an hour of plan time (a whole number of windows), telemetry's too: set
    // before anything is sampled.
    store.rollupMs = rollupSpanMs(plan.load.window);
    // A write that fails (a full disk, an I/O error) fails the run through the same path.
    // (cleared in finalize once the run's end is written: every run whose row exists ends there)
    store.onError = (err, what) => this.fail(`store (writing ${what})`, err);
    this.faults = new FaultSupervisor(store, this.id, p.faultCtx, this.faultWindows, this.log);
    const observer = this.ctx.observer;
    if (observer?.faults) this.faults.onChange = this.guarded('fault observer', (n: number) => observer.faults?.(n));
    this.log.info({ targets: p.targets.map((t) => `${t.node}=${t.endpoint}`), model: p.model }, 'run started');

    if (plan.telemetry.interval > 0) {
      this.telemetry = new TelemetryCollector(
        p.targets.map((t) => ({ node: t.node, containerId: t.containerId, endpoint: t.endpoint, docker: p.engines.docker(t.engine) })),
        { intervalMs: plan.telemetry.interval, metricsPath: plan.telemetry.metrics_path, metrics: plan.telemetry.metrics, timeoutMs: Math.min(plan.telemetry.interval, 5000) },
        p.docker,
        clock,
        this.log,
        this.guarded('telemetry sample', (x) => store.addTelemetry({ run_id: this.id, ...x })),
        p.probes,
      );
    }
    for (const t of this.views) {
      this.detectors.set(
        t.node,
        new NodeDetector(
          t.node,
          { probeFailures: plan.probes.failures, errorBurst: t.errorBurst, recoveryLimitMs: plan.recovery_limit },
          this.faultWindows,
          () => clock.now(),
          (e) => this.onEpisode(e),
          this.resumed ? `${this.id}-r${this.resumed.resumes}-${t.node}` : `${this.id}-${t.node}`,
          this.guarded('node state', (c: StateChange) => this.onState(c)),
        ),
      );
    }
    await this.watchDocker(started);
    this.startProbes();
    if (this.telemetry) {
      this.telemetry.start();
      const tel = this.telemetry;
      this.hold('telemetry', () => tel.stop());
    }
  }

  private onEpisode(e: Episode): void {
    if (this.finished) {
      this.log.debug({ episode: e.id }, 'episode update after the run ended: dropped');
      return;
    }
    // The service's detector gives its live state; its outages are measured per fault from the
    // requests (report), and only the nodes' own episodes are failures or end a fault.
    if (this.p.service && e.node === this.p.service.node) return;
    // What the node looked like just before: its latest telemetry, taken once, at the opening.
    if (!this.episodesSeen.has(e.id) && this.telemetry && e.evidence.telemetry === undefined) e.evidence.telemetry = this.telemetry.snapshot(e.node);
    this.store.upsertEpisode(episodeRow(this.id, e));
    this.episodesSeen.add(e.id);
    if (e.servingAgainAt !== null) this.lastServingAgainAt = Math.max(this.lastServingAgainAt ?? 0, e.servingAgainAt);
    this.faults.onEpisode(e);
    this.ctx.observer?.episode?.(e);
  }

  private onState(c: StateChange): void {
    if (this.finished) return;
    this.store.addNodeState({ run_id: this.id, node: c.node, at: c.at, detected_at: c.detectedAt, state: c.state, reason: c.reason });
    // degraded comes and goes with single slow or failed requests: not worth the info log
    (c.state === 'degraded' ? this.log.debug.bind(this.log) : this.log.info.bind(this.log))({ node: c.node, state: c.state, reason: c.reason }, `${c.node} is ${c.state}`);
    // The probes' pace follows the state: fast while busy, down or recovering.
    this.probers.get(c.node)?.hurry();
    this.ctx.observer?.state?.(c);
  }

  private observe(node: string, o: Observation): void {
    (this.detectors.get(node) as NodeDetector).observe(o);
  }

  /** Each engine's event stream, for the targets on it (all at once; each bounded). */
  private async watchDocker(since: number): Promise<void> {
    const groups = new Map<string, ResolvedTarget[]>();
    for (const t of this.p.targets.filter((x) => x.containerId)) {
      const key = t.engine ? engineKey(t.engine) : '';
      groups.set(key, [...(groups.get(key) ?? []), t]);
    }
    await Promise.all([...groups.values()].map((ts) => this.watchEngine(since, ts)));
  }

  private async watchEngine(since: number, targets: ResolvedTarget[]): Promise<void> {
    const { p, store, clock } = this;
    const spec = targets[0]?.engine ?? null;
    const docker = p.engines.docker(spec);
    const byContainer = new Map(targets.map((t) => [t.containerId as string, t]));
    const which = spec ? `the Docker engine ${spec.name} (${spec.host})` : 'the Docker engine';
    if (!docker || byContainer.size === 0) return;
    const watch = watchContainerEvents(
      docker,
      [...byContainer.keys()],
      this.guarded('docker event', (e: ContainerEvent) => {
        const t = byContainer.get(e.containerId);
        if (!t) return;
        store.addDockerEvent({ run_id: this.id, node: t.node, container_id: e.containerId, at: e.at, action: e.rawAction, exit_code: e.exitCode ?? null, attributes: JSON.stringify(e.attributes) });
        this.observe(t.node, { type: 'docker', action: e.action, at: e.at, exitCode: e.exitCode, signal: e.signal });
        const d = this.detectors.get(t.node) as NodeDetector;
        if (e.action === 'die') {
          this.track(
            tailLogs(docker, e.containerId, 20).then(
              (logs) => d.annotate({ logs }),
              (err: unknown) => this.log.debug({ err: errorMessage(err) }, 'cannot read container logs'),
            ),
          );
        }
        if (e.action === 'start' || e.action === 'die') {
          this.track(
            docker
              .getContainer(e.containerId)
              .inspect()
              .then(
                (info) => d.annotate({ restartCount: info.RestartCount, ...(info.State.OOMKilled ? { oomKilled: true } : {}) }),
                () => undefined,
              ),
          );
        }
      }),
      this.log,
      {
        sinceMs: since,
        now: () => clock.now(),
        epoch: clock,
        onConnection: this.guarded('docker connection', (state: 'lost' | 'restored', at: number, why: string) => {
          const nodes = [...byContainer.values()].map((t) => t.node);
          if (state === 'lost') {
            this.faultWindows.blindStart(nodes, at);
            this.blind.push({ from: at, to: null, nodes });
            this.journal('orchestrator_blind', `lost ${which} (${why}): failures seen on ${nodes.join(', ')} until it answers again are orchestrator blindness, not node failures, and the time is left out of exposure`);
            this.log.error({ why, nodes }, `lost ${which}: Gauntlet cannot see its containers`);
          } else {
            this.faultWindows.blindEnd(at, nodes);
            const span = this.blind.findLast((b) => b.to === null && b.nodes.join() === nodes.join());
            if (span) span.to = at;
            this.journal('orchestrator_restored', `${which} answers again${span ? ` after ${formatDuration(at - span.from)}` : ''}`);
            this.log.warn(`${which} answers again`);
          }
        }),
      },
    );
    this.hold(spec ? `docker events of engine ${spec.name}` : 'docker events', () => watch.stop());
    // Bounded: an engine that does not open its event stream is said (and counted as blind
    // time by the watch itself), not waited for forever; the stream keeps trying meanwhile.
    const opened = await Promise.race([watch.ready.then(() => true), clock.sleep(EVENTS_READY_WAIT_MS, this.ctx.signal).then(() => false, () => false)]);
    if (!opened) this.log.warn(`${which} has not opened its event stream within ${formatDuration(EVENTS_READY_WAIT_MS)}: the run goes on, container events are seen once it does`);
  }

  private startProbes(): void {
    const { plan, p, store, clock } = this;
    const faultedAnywhere = (): boolean => p.targets.some((t) => this.faultWindows.openOn(t.node));
    for (const t of this.views) {
      const prober = new NodeProber(
        {
          endpoint: t.endpoint,
          healthPath: plan.probes.path,
          intervalMs: plan.probes.interval,
          timeoutMs: plan.probes.timeout,
          fastIntervalMs: plan.probes.fast_interval,
          canaryIntervalMs: plan.probes.canary_interval,
          canaryTimeoutMs: plan.probes.canary_timeout ?? plan.probes.timeout,
          api: (p.workload.mix[0] as MixItem).api,
          model: (p.workload.mix[0] as MixItem).model ?? p.model,
        },
        clock,
        p.probes,
        this.guarded('probe result', (r: ProbeResult) => {
          store.addProbe({ run_id: this.id, node: t.node, kind: r.kind, sent_at: r.sentAt, response_at: r.respondedAt, latency_ms: r.latencyMs, ok: r.ok, status: r.status, error: r.error });
          this.observe(t.node, { type: 'probe', kind: r.kind, sentAt: r.sentAt, respondedAt: r.respondedAt, endAt: r.sentAt + r.latencyMs, ok: r.ok, timedOut: r.timedOut, status: r.status, error: r.error });
        }),
        (): ProbePace => {
          const state = (this.detectors.get(t.node) as NodeDetector).state;
          if (state === 'down' || state === 'recovering') return 'down';
          // the service is watched closely while any of its nodes is faulted
          return state === 'busy' || this.faultWindows.openOn(t.node) || (t.node === p.service?.node && faultedAnywhere()) ? 'watch' : 'normal';
        },
      );
      this.probers.set(t.node, prober);
      prober.start();
    }
    // (stopped after the reverts, so the recovery they cause is seen)
  }

  // ---- steady: load, faults on schedule, detection

  async steady(): Promise<void> {
    const { plan, p, store, clock, ctx } = this;
    // The load's clock starts when the engine's first arrival is due (sink.started): at once for
    // the builtin engine, a moment after launch for k6. Until then loadStart is the launch time.
    this.launchedAt = clock.now();
    this.loadStart = this.resumed?.loadStartedAt ?? this.launchedAt;
    this.launched = true;
    const r = this.resumed;
    const windows = new WindowAggregator(
      plan.load.window,
      this.loadStart,
      (closed) => store.addWindow(this.id, closed),
      p.engine.capabilities.queueDelay,
      undefined,
      // a resumed run's windows keep the run's grid; its parts and rollups do not collide with the killed process's
      r ? { partBase: r.resumes * 1000, rollupFrom: this.launchedAt } : null,
    );
    this.windows = windows;
    const curve = new RateCurve(p.workload.profile);
    if (ctx.until) {
      this.hold(
        'until check',
        every(
          clock,
          250,
          this.guarded('until', () => {
            const now = clock.now();
            for (const d of this.detectors.values()) d.tick(now);
            const view: RunView = {
              elapsedMs: Math.max(0, now - this.loadStart),
              faultsDone: this.faultsDone,
              faultsTotal: this.schedule.length,
              activeFaults: this.faults.activeCount,
              allUp: [...this.detectors.values()].every((d) => d.openEpisode === null),
              lastServingAgainAt: this.lastServingAgainAt,
              now,
            };
            if (ctx.until?.(view)) this.finish.abort(new Error('done'));
          }),
        ),
      );
    }
    if (r) {
      // the load's clock is the run's: it began long ago; a fresh baseline for the degraded judge
      this.loadBegan = true;
      this.degraded.close(this.launchedAt + plan.detection.baseline);
      this.phase('steady');
      this.markBegan(this.loadStart);
    } else store.updateRun(this.id, { load_started_at: this.loadStart });
    let lastProgress = { at: this.loadStart, scheduled: 0 };
    this.hold(
      'progress',
      every(
        clock,
        ctx.progressIntervalMs ?? 5000,
        this.guarded('progress', () => {
          const now = clock.now();
          for (const d of this.detectors.values()) d.tick(now);
          windows.tick(now);
          this.checkHalt(now);
          if (!ctx.onProgress) return;
          const sorted = this.windowTtft.sort((a, b) => a - b);
          const pr = p.engine.progress;
          ctx.onProgress({
            runId: this.id,
            elapsedMs: Math.max(0, now - this.loadStart),
            durationMs: plan.duration,
            plannedRate: this.loadBegan ? curve.rate(now - this.loadStart) : 0,
            achievedRate: ((pr.scheduled - lastProgress.scheduled) * 1000) / Math.max(1, now - lastProgress.at),
            inFlight: pr.inFlight,
            ok: pr.ok,
            failed: pr.failed,
            ttftP50: percentileSorted(sorted, 50),
            ttftP99: percentileSorted(sorted, 99),
            nodes: [...this.detectors.values()].map((d) => ({ node: d.node, state: d.state, since: d.openEpisode?.startedAt ?? null })),
            faultsDone: this.faultsDone,
            faultsTotal: this.schedule.length,
            episodes: this.episodesSeen.size,
          });
          this.windowTtft = [];
          lastProgress = { at: now, scheduled: pr.scheduled };
        }),
      ),
    );
    // Once per plan-hour (the rollup span): the write-ahead log folded in and truncated, and this
    // process's memory and the database's size recorded, so every run says how both grew.
    this.hold(
      'housekeeping',
      every(
        clock,
        windows.rollupMs,
        this.guarded('housekeeping', () => {
          const at = clock.now();
          const cp = store.checkpoint();
          if (!cp.ok) this.log.warn({ walPages: cp.walPages }, 'the database checkpoint did not complete; SQLite retries it as the log grows');
          const size = store.sizeBytes();
          if (size !== null) store.addTelemetry({ run_id: this.id, node: GENERATOR_NODE, at, metric: 'db_bytes', value: size });
          store.addTelemetry({ run_id: this.id, node: GENERATOR_NODE, at, metric: 'rss_bytes', value: process.memoryUsage.rss() });
        }),
      ),
    );
    if (plan.sequential?.stop_early) this.watchSequentialTest();
    this.scheduled = this.faultLoop(AbortSignal.any([this.stopFaults.signal, this.runSignal]));
    // Whether the generator keeps up: this process's event-loop lag and k6's CPU, every second.
    const engine = p.engine;
    const generator = new GeneratorMonitor(
      this.guarded('generator sample', (x) => store.addTelemetry({ run_id: this.id, ...x })),
      () => clock.now(),
      () => engine.processes?.() ?? [],
    );
    generator.start();
    this.hold('generator monitor', () => generator.stop());
    try {
      const workload = r ? remainingWorkload(p.workload, this.launchedAt - this.loadStart, r.plannedEndAt - this.launchedAt, r.resumes) : p.workload;
      if (workload) await engine.run(workload, this.runSignal, this.sink(windows));
      else this.loadEndedAt = this.launchedAt;
    } catch (err) {
      this.fail('load engine', err);
    }
  }

  /**
   * plan.sequential.stop_early: the sequential test read every plan-minute against the exposure
   * and the failures so far (as the report counts them); once it accepts or rejects, the run
   * ends as completed with the decision journalled, instead of running on to its planned end.
   */
  private watchSequentialTest(): void {
    const { plan, store, clock } = this;
    const seq = plan.sequential;
    const sprt = planSequentialTest(seq, plan.mtbf_target / 3_600_000);
    const nodes = plan.targets.map((t) => t.name);
    let decided = false;
    this.hold(
      'sequential test',
      every(
        clock,
        60_000,
        this.guarded('sequential test', () => {
          if (!this.loadBegan || decided || this.stopFaults.signal.aborted) return;
          const now = clock.now();
          // Gauntlet's blindness so far is in memory (the journal gets its spans at the end)
          const input = { ...exposureInputOf(store, this.id, this.loadStart, now, nodes), blindSpans: this.blind.map((b) => ({ from: b.from, to: b.to ?? now, nodes: b.nodes })) };
          const state = sprtEvaluate(sprt, failureNodeHours(input), exposure(input).nodeHours);
          if (state.decision === 'continue') return;
          decided = true;
          const what = state.decision === 'accept' ? `accepts MTBF θ0 = ${sprt.theta0Hours} h` : `rejects: the MTBF is nearer θ1 = ${Math.round(sprt.theta1Hours)} h`;
          this.journal(
            'sequential_decision',
            `the sequential test ${what} after ${state.atNodeHours.toFixed(1)} node-hours with ${state.failures} failure(s) (${state.by === 'truncation' ? 'by truncation' : "at Wald's line"}); the run stops early (sequential.stop_early)`,
            { decision: state.decision, node_hours: state.atNodeHours, failures: state.failures, by: state.by },
          );
          this.log.info({ decision: state.decision, nodeHours: state.atNodeHours, failures: state.failures }, 'sequential test decided: stopping early');
          this.finish.abort(new Error('sequential test decided'));
        }),
      ),
    );
  }

  private begin(at: number): void {
    if (this.loadBegan) return;
    this.loadBegan = true;
    // (never before the launch: a replayed or skewed first time must not stretch the load back)
    at = Math.max(at, this.launchedAt);
    this.loadStart = at;
    this.windows?.rebase(at);
    this.degraded.close(at + this.plan.detection.baseline);
    this.phase('steady', { load_started_at: at, planned_end_at: at + this.plan.duration });
    const lag = at - this.launchedAt;
    // Said when the engine took a while to begin (k6: VU start-up); the builtin engine begins at once.
    if (lag >= 100) {
      this.journal(
        'load_started',
        `${this.p.engine.name} began the load ${formatDuration(Math.max(0, lag))} after Gauntlet launched it: fault times, windows and exposure count from its first arrival`,
        { launched_at: this.launchedAt, began_at: at, lag_ms: lag },
      );
    }
    this.markBegan(at);
  }

  private sink(windows: WindowAggregator): LoadSink {
    const { plan, store } = this;
    return {
      started: this.guarded('load start', (at: number): void => this.begin(at)),
      ended: this.guarded('load end', (at: number): void => {
        this.loadEndedAt = at;
      }),
      record: this.guarded('request record', (raw: RequestRecord): void => {
        this.begin(raw.scheduledAt);
        const outcome = this.degraded.judge(raw);
        const r = outcome === raw.outcome ? raw : { ...raw, outcome };
        windows.record(r);
        this.noteOutcome(r);
        this.ctx.observer?.request?.(r);
        if (plan.load.raw_requests) {
          store.addRequest({
            run_id: this.id,
            node: r.node,
            seq: r.seq,
            attempt: r.attempt,
            final: r.final,
            mix: r.mix,
            prompt_tokens: r.promptTokens,
            max_tokens: r.maxTokens,
            scheduled_at: r.scheduledAt,
            sent_at: r.sentAt,
            response_at: r.respondedAt,
            first_token_at: r.firstTokenAt,
            end_at: r.endAt,
            ttft_ms: r.ttftMs,
            e2e_ms: r.e2eMs,
            queue_delay_ms: r.queueDelayMs,
            outcome: r.outcome,
            status: r.status,
            output_tokens: r.outputTokens,
            tokens_source: r.tokensSource,
            chunks: r.chunks,
            itl_max_ms: r.itlMaxMs,
            error: r.error,
          });
        }
        if (r.outcome !== 'cancelled') this.observe(r.node, { type: 'request', sentAt: r.sentAt, respondedAt: r.respondedAt, firstTokenAt: r.firstTokenAt, endAt: r.endAt, outcome: r.outcome, status: r.status, error: r.error });
        if (r.ttftMs !== null && isSuccess(r.outcome) && this.windowTtft.length < 100_000) this.windowTtft.push(r.ttftMs);
      }),
      scheduleMiss: this.guarded('schedule miss', (node: string, at: number, count: number): void => {
        this.begin(at);
        windows.scheduleMiss(node, at, count);
      }),
      planned: this.guarded('planned arrival', (node: string, at: number, count: number): void => {
        this.begin(at);
        windows.planned(node, at, count);
      }),
      sample: this.guarded('latency sample', (node: string, metric: 'ttft' | 'itl' | 'tpot', at: number, ms: number): void => windows.sample(node, metric, at, ms)),
      tokens: this.guarded('token count', (node: string, at: number, count: number, source: 'usage' | 'chunks'): void => windows.tokens(node, at, count, source)),
      alive: this.guarded('sign of life', (node: string, at: number): void => this.observe(node, { type: 'alive', at })),
      generator: this.guarded('generator sample', (name: string, at: number, metric: string, value: number): void => store.addTelemetry({ run_id: this.id, node: generatorNode(name), at, metric, value })),
    };
  }

  private skip(id: string, occ: Occurrence, t: ResolvedTarget, reason: string): void {
    recordSkipped(this.store, this.id, id, occ.kind, faultTarget(t), occ.params, this.clock.now(), reason);
    this.journal('fault_skipped', `${occ.kind} on ${t.node} skipped: ${reason}`, { fault: id });
    this.log.warn({ fault: id, kind: occ.kind, node: t.node, reason }, 'fault skipped');
    this.faultsDone++;
    this.note({ faults_done: this.faultsDone });
  }

  /** Why this injection must not happen now (blast radius, halt, host), or null. */
  private async skipReason(occ: Occurrence, t: ResolvedTarget): Promise<string | null> {
    const { plan, clock } = this;
    if (this.halted) return `halted: ${this.halted}`;
    const injector = FAULTS[occ.kind] as FaultInjector<unknown>;
    const unsupported = await injector.unsupported?.(this.p.engines.for(t.engine));
    if (unsupported) return `not supported on this host: ${unsupported}`;
    // The plan's own limit first: it is the reason a user set, whatever else also applies.
    const max = plan.safety.max_concurrent_faults;
    if (max !== undefined && this.faults.activeCount >= max) return `blast radius: ${this.faults.activeCount} fault(s) already active (safety.max_concurrent_faults: ${max})`;
    const own = this.detectors.get(t.node);
    // busy and degraded nodes serve: faults go ahead (a slow node under test is still a node under test)
    if (own?.openEpisode) {
      // Its failure is already being measured; a fault on top would blur what caused what.
      return `${t.node} is ${own.state} (episode open since ${new Date(own.openEpisode?.startedAt ?? clock.now()).toISOString()}): a fault on a failing node measures nothing and would blur attribution`;
    }
    const service = this.p.service;
    const healthyOthers = [...this.detectors.values()].filter((d) => d.node !== t.node && d.node !== service?.node && d.openEpisode === null).length;
    if (healthyOthers < plan.safety.min_healthy_nodes) {
      return `blast radius: only ${healthyOthers} other node(s) healthy (safety.min_healthy_nodes: ${plan.safety.min_healthy_nodes})`;
    }
    return null;
  }

  private async faultLoop(stop: AbortSignal): Promise<void> {
    const { plan, clock, schedule, p } = this;
    // Fault times count from the load's first arrival, not from when the engine was launched.
    const loadStart = await new Promise<number | null>((resolve) => {
      if (stop.aborted) return resolve(null);
      stop.addEventListener('abort', () => resolve(null), { once: true });
      void this.began.then(resolve);
    });
    for (const [i, occ] of schedule.entries()) {
      if (this.resumed && i < this.resumed.faultsDone) continue; // run or skipped before the kill
      if (this.resumed && loadStart !== null && loadStart + occ.offsetMs < this.launchedAt) {
        // due while Gauntlet was down: the one under way at the kill (it has a ledger row, reverted at the restart) is done; the others never happened
        const id = `${this.id}-f${i + 1}`;
        const t = p.targets.find((x) => x.node === occ.node) as ResolvedTarget;
        if (this.store.faults(this.id).some((f) => f.id === id)) {
          this.faultsDone++;
          this.note({ faults_done: this.faultsDone });
        } else this.skip(id, occ, t, `due at ${new Date(loadStart + occ.offsetMs).toISOString()}, while Gauntlet was down`);
        continue;
      }
      try {
        if (loadStart === null) throw new Error('stopped before the load began');
        await clock.sleep(loadStart + occ.offsetMs - clock.now(), stop);
      } catch {
        // Stopped. After a halt, what was still to come is recorded as skipped.
        if (this.halted) for (const [k, rest] of schedule.entries()) if (k >= i) this.skip(`${this.id}-f${k + 1}`, rest, p.targets.find((x) => x.node === rest.node) as ResolvedTarget, `halted: ${this.halted}`);
        return;
      }
      // The baseline is the run before any fault.
      this.degraded.close(clock.now());
      const injector = FAULTS[occ.kind];
      const t = p.targets.find((x) => x.node === occ.node);
      if (!injector || !t) continue; // validated with the plan; cannot happen
      const id = `${this.id}-f${i + 1}`;
      const why = await this.skipReason(occ, t);
      if (why) {
        this.skip(id, occ, t, why);
        continue;
      }
      const holdMs = isInstant(injector, occ.params) ? plan.recovery_limit : (injector.holdMs?.(occ.params) ?? plan.recovery_limit);
      const quietMs = Math.max(10_000, plan.probes.interval * (plan.probes.failures + 2));
      const injection = this.faults.inject(id, injector, faultTarget(t), occ.params, holdMs, quietMs);
      // The fault's window is open now: the node's probes go to the fast pace from the injection.
      this.probers.get(t.node)?.hurry();
      if (p.service) this.probers.get(p.service.node)?.hurry();
      const ok = await injection;
      if (ok) this.log.info({ fault: id, kind: occ.kind, node: t.node }, `fault ${i + 1}/${schedule.length} injected`);
      this.faultsDone++;
      this.note({ faults_done: this.faultsDone });
    }
  }

  // ---- the halt condition: error rate outside fault windows over a sliding span

  private noteOutcome(r: RequestRecord): void {
    if (!this.plan.safety.halt || r.outcome === 'cancelled') return;
    if (this.faultWindows.find(r.node, r.sentAt, r.endAt) !== null) return;
    const sec = Math.floor(r.endAt / 1000);
    const b = this.outside.get(sec) ?? { n: 0, failed: 0 };
    b.n++;
    if (!isSuccess(r.outcome)) b.failed++;
    this.outside.set(sec, b);
  }

  private checkHalt(now: number): void {
    const haltCfg = this.plan.safety.halt;
    if (!haltCfg || this.halted || now - this.loadStart < haltCfg.for) return;
    const from = Math.floor((now - haltCfg.for) / 1000);
    let n = 0;
    let failed = 0;
    for (const [sec, b] of this.outside) {
      if (sec < from) this.outside.delete(sec);
      else {
        n += b.n;
        failed += b.failed;
      }
    }
    if (n < haltCfg.min_requests || failed / n <= haltCfg.error_rate) return;
    this.halted = `error rate outside fault windows ${((failed / n) * 100).toFixed(1)} % (${failed}/${n}) over the last ${formatDuration(haltCfg.for)}, above safety.halt.error_rate ${(haltCfg.error_rate * 100).toFixed(1)} %`;
    this.journal('halt', `halted: ${this.halted}; no further faults, reverting the active ones`, { failed, requests: n });
    this.log.error({ reason: this.halted }, 'halt condition met: no further faults; reverting');
    this.stopFaults.abort();
    this.faults.halt();
  }

  // ---- stop: timers and the fault schedule (an injection under way lands; nothing after)

  async stop(): Promise<void> {
    this.interrupted = this.ctx.signal.aborted;
    // The load ended with its last request (k6 takes a moment to exit after it); a load that
    // never began has no length. Taken now: an injection under way may take seconds to land.
    const now = this.clock.now();
    if (this.launched) this.loadEnd = this.loadBegan ? Math.max(this.loadStart, Math.min(now, this.loadEndedAt ?? now)) : this.loadStart;
    this.phase('stop');
    this.stopFaults.abort();
    // timers first (progress, until, housekeeping, the generator monitor): nothing ticks into finalize
    for (const what of ['generator monitor', 'progress', 'until check', 'housekeeping', 'sequential test']) await this.release(what);
    await this.scheduled.catch((err: unknown) => this.fail('fault schedule', err));
  }

  /** Releases everything held, latest first, reporting rather than throwing. */
  async releaseAll(): Promise<void> {
    for (const h of this.held.splice(0).reverse()) {
      try {
        await h.release();
      } catch (err) {
        this.log.warn({ err: errorMessage(err), what: h.what }, 'could not release a run resource');
      }
    }
  }

  /** Releases what was held under this name (once), reporting rather than throwing. */
  private async release(what: string): Promise<void> {
    for (let i = this.held.length - 1; i >= 0; i--) {
      const h = this.held[i] as Held;
      if (h.what !== what) continue;
      this.held.splice(i, 1);
      try {
        await h.release();
      } catch (err) {
        this.log.warn({ err: errorMessage(err), what }, 'could not release a run resource');
      }
    }
  }

  // ---- finalize: reverts, the last windows, everything released, evidence, status, report

  async finalize(): Promise<RunResult> {
    const { store, clock, p } = this;
    const loadEnd = this.loadEnd;
    this.phase('finalize');
    // The faults first: the probes still run, so the recovery a revert causes is seen.
    if (this.faults) {
      try {
        await this.faults.revertAll();
      } catch (err) {
        this.fail('reverting the faults', err);
      }
    }
    try {
      this.windows?.flush();
    } catch (err) {
      this.fail('writing the last windows', err);
    }
    await Promise.all([...this.probers.values()].map((pr) => pr.stop().catch(() => undefined)));
    // whatever else is held, latest first (telemetry, the event stream, the connections)
    await this.releaseAll();
    await Promise.allSettled([...this.evidenceTasks]);
    for (const d of this.detectors.values()) d.tick(clock.now());
    for (const t of p.targets) {
      const docker = p.engines.docker(t.engine);
      if (!t.containerId || !docker) continue;
      try {
        const info = await docker.getContainer(t.containerId).inspect();
        store.updateNode(this.id, t.node, { restart_count_end: info.RestartCount });
      } catch {
        // container gone: leave the end count empty
      }
    }
    try {
      for (const span of this.blind) {
        const to = span.to ?? loadEnd ?? clock.now();
        this.journal('orchestrator_blind_span', `blind from ${new Date(span.from).toISOString()} for ${formatDuration(to - span.from)}${span.to === null ? ' (until the end of the load)' : ''}`, { from: span.from, to, nodes: span.nodes });
      }
      const baselines = this.degraded.baselines();
      this.journal(
        'baseline',
        baselines.length > 0
          ? `baseline (until ${new Date(this.degraded.endsAt).toISOString()}): ${baselines.map((x) => `${x.mix} e2e p50 ${x.p50Ms.toFixed(1)} ms over ${x.samples} requests, degraded above ${x.thresholdMs.toFixed(1)} ms`).join('; ')}`
          : 'no baseline: too few successful requests before the first fault; nothing judged degraded',
        baselines,
      );
    } catch (err) {
      this.fail('writing the journal', err);
    }
    // The run's status is decided last: a failure found while finishing (the store, a revert) counts.
    if (!store.flush()) this.log.error({ pending: store.pendingRows }, 'some rows could not be written');
    let status: RunStatus = this.failure.signal.aborted ? 'failed' : this.interrupted ? 'aborted' : 'completed';
    try {
      // (phase 'done' once the reports are written: whoever watches the row finds them then)
      store.updateRun(this.id, { status, load_ended_at: loadEnd, ended_at: clock.now(), error: this.runError });
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, "the run's end could not be recorded in the database");
    }
    store.onError = null;
    if (store.lostRows > 0) this.log.error({ lost: store.lostRows }, 'rows lost to failed database writes');
    this.finished = true;
    let reportDir = join(this.ctx.reportsDir, this.id);
    try {
      reportDir = await writeReports(store, this.id, this.ctx.reportsDir);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'the report could not be written');
      this.runError ??= `writing the report: ${errorMessage(err)}`;
      status = 'failed';
    }
    try {
      store.updateRun(this.id, { phase: 'done', phase_at: clock.now(), ...(status === 'failed' ? { status, error: this.runError } : {}) });
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, "the run's end could not be recorded in the database");
    }
    this.log.info({ status, reportDir }, 'run ended');
    return { runId: this.id, status, reportDir, error: this.runError };
  }
}

/**
 * Ends a run cut off by a killed Gauntlet that is not taken up (its plan says so, its planned
 * end has passed, it was finishing): aborted, with the reason and where its record stops, and
 * its report written from what was recorded. What it left behind must be reverted first.
 */
export async function endCutOffRun(store: Store, row: RunRow, lastAt: number, why: string, reportsDir: string, now: number): Promise<string> {
  store.updateRun(row.id, {
    status: 'aborted',
    error: `Gauntlet was killed (its record stops at ${new Date(lastAt).toISOString()}); not taken up: ${why}`,
    load_ended_at: row.load_started_at === null ? null : Math.max(row.load_started_at, Math.min(lastAt, row.planned_end_at ?? lastAt)),
    ended_at: now,
    phase: 'done',
    phase_at: now,
  });
  store.addRunEvent({ run_id: row.id, at: now, kind: 'cut_off', message: `Gauntlet was killed; its record stops at ${new Date(lastAt).toISOString()}; the run is ended as aborted: ${why}`, detail: JSON.stringify({ last_at: lastAt }) });
  return writeReports(store, row.id, reportsDir);
}

export async function runPlan(plan: Plan, planSource: string | null, ctx: RunContext): Promise<RunResult> {
  return Run.execute(plan, planSource, ctx);
}
