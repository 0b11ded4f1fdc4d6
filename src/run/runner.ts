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
import { requireDocker, tailLogs, watchContainerEvents, type Docker, type EventWatch } from '../docker/engine.js';
import type { ContainerEvent } from '../docker/events.js';
import { GauntletError, errorMessage } from '../errors.js';
import { recordSkipped, revertLeftovers } from '../fault/ledger.js';
import { isInstant, type FaultContext, type FaultInjector } from '../fault/types.js';
import { BuiltinEngine } from '../load/builtin.js';
import { GENERATOR_NODE } from '../analysis/generator.js';
import { GeneratorMonitor } from '../load/generator.js';
import { K6Engine } from '../load/k6/engine.js';
import type { LoadEngine, RequestRecord } from '../load/types.js';
import { RateCurve } from '../load/schedule.js';
import { WindowAggregator, rollupSpanMs } from '../load/windows.js';
import { buildWorkload, peakRate, type MixItem } from '../load/workload.js';
import { expectedLatencyMs } from '../load/k6/config.js';
import { openFilesLimit } from '../util/proc.js';
import type { Logger } from '../log.js';
import type { Plan } from '../plan/schema.js';
import { writeReports } from '../report/write.js';
import { isSuccess, type EpisodeRow, type RunPhase, type RunRow, type RunStatus, type Store } from '../store/store.js';
import { selfOwner, type ProcessHost } from '../util/proc.js';
import { percentileSorted } from '../analysis/stats.js';
import { type Clock, RealClock, every } from '../util/clock.js';
import { formatDuration } from '../util/duration.js';
import { FaultSupervisor } from './fault-supervisor.js';
import { needsDocker, resolveTarget, type ResolvedTarget } from './targets.js';
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
  /**
   * Ends the run early, as completed, once this returns true (checked every 250 ms): a drill
   * ends when its fault is over and the node serves again.
   */
  until?: (v: RunView) => boolean;
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

function newRunId(plan: Plan, now: number, random: Random): string {
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

/** How long the run waits for the Docker event stream to open before it goes on without it. */
const EVENTS_READY_WAIT_MS = 15_000;

export async function runPlan(plan: Plan, planSource: string | null, ctx: RunContext): Promise<RunResult> {
  const { store, clock, signal } = ctx;
  const docker = needsDocker(plan.targets) ? ctx.docker : null;
  if (needsDocker(plan.targets)) {
    if (!docker) throw new GauntletError('GAUNTLET_DOCKER_UNAVAILABLE', ['-', 'the plan has container targets but no Docker client is available']);
    await requireDocker(docker);
  }
  // Waits on real machinery (a process to be reaped, Docker to register an exit) take real time
  // even when the plan's clock is scaled; a virtual clock's fakes live on it.
  const machine = Number.isFinite(clock.timeScale) && clock.timeScale !== 1 ? new RealClock() : clock;
  const faultCtx: FaultContext = { docker, log: ctx.log, clock, machineClock: machine, ...(ctx.processes ? { processes: ctx.processes } : {}) };
  // Hourly rollups span an hour of plan time (a whole number of windows), telemetry's too: set
  // before anything is sampled.
  store.rollupMs = rollupSpanMs(plan.load.window);
  const probes = ctx.http?.probes ?? probeDispatcher();

  const targets = await Promise.all(plan.targets.map((t) => resolveTarget(t, docker, clock)));
  // Faults an earlier, killed Gauntlet left behind are undone before anything else touches
  // the targets: the ledger first, then anything still carrying Gauntlet's mark.
  const targetContainers = targets.flatMap((t) => (t.containerId ? [t.containerId] : []));
  for (const line of await revertLeftovers(store, { ...faultCtx, docker: ctx.docker }, { containers: targetContainers })) ctx.log.warn(`reverted a leftover fault: ${line}`);
  await waitReady(targets, plan, clock, signal, ctx.log, probes);
  const entries = plan.load.mix ?? [plan.load];
  const named = entries.find((e) => e.model !== undefined)?.model;
  const model = entries.every((e) => e.model !== undefined) && named ? named : await discoverModel((targets[0] as ResolvedTarget).endpoint, clock, probes);
  // Prompt files are read and checked here, before the run exists.
  // With a service endpoint, the load goes there (the router spreads it over the nodes).
  const service = plan.service ? { node: plan.service.name, endpoint: plan.service.endpoint } : null;
  const workload = buildWorkload(
    plan,
    service ? [service] : targets.map((t) => ({ node: t.node, endpoint: t.endpoint })),
    model,
    planSource,
  );
  // An open loop holds a connection per request in flight: warn before EMFILE turns into a
  // storm of conn_errors that are the client's fault, not the node's.
  const needed = Math.ceil((peakRate(workload.profile) * expectedLatencyMs(workload)) / 1000) * 2 + 64;
  const fdLimit = openFilesLimit();
  if (fdLimit !== null && needed > fdLimit) {
    ctx.log.warn(`this load may need ~${needed} connections but the open-files limit is ${fdLimit}: raise it (ulimit -n ${needed * 2}) or requests will fail with EMFILE`);
  }
  const engine =
    ctx.engine ??
    (plan.load.engine === 'k6'
      ? await K6Engine.create({
          script: plan.load.script ? resolvePath(planSource ? dirname(planSource) : process.cwd(), plan.load.script) : null,
          arrival: plan.load.arrival,
          maxInFlight: plan.load.max_in_flight ?? null,
          log: ctx.log,
        })
      : new BuiltinEngine(clock, ctx.http?.load));

  const runId = ctx.runId ?? newRunId(plan, clock.now(), ctx.random ?? osRandom());
  const log = ctx.log.child({ runId });
  const started = clock.now();
  store.createRun({
    id: runId,
    plan_name: plan.name,
    plan_json: JSON.stringify(plan),
    plan_source: planSource,
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
    engine: JSON.stringify({ name: engine.name, capabilities: engine.capabilities }),
    phase: 'start',
    phase_at: started,
    owner: selfOwner(),
  });
  for (const t of targets) {
    store.addNode({
      run_id: runId,
      name: t.node,
      endpoint: t.endpoint,
      container_id: t.containerId,
      container_name: t.containerName,
      image: t.image,
      restart_count_start: t.restartCount,
      restart_count_end: null,
    });
  }
  log.info({ targets: targets.map((t) => `${t.node}=${t.endpoint}`), model }, 'run started');

  // ---- detection
  const faultWindows = new FaultWindows(plan.detection.fault_grace, new Set(service ? [service.node] : []));
  const detectors = new Map<string, NodeDetector>();
  const probers = new Map<string, NodeProber>();
  const episodesSeen = new Set<string>();
  let lastServingAgainAt: number | null = null;
  /** Evidence being fetched (log tails, restart counts): awaited before the run ends. */
  const evidenceTasks = new Set<Promise<unknown>>();
  let finished = false;
  const track = (p: Promise<unknown>): void => {
    evidenceTasks.add(p);
    void p.finally(() => evidenceTasks.delete(p)).catch(() => undefined);
  };
  // Anything that throws inside a callback (a full disk, a bug) fails the run through the
  // normal path below — faults reverted, report written — instead of killing the process.
  const failure = new AbortController();
  let runError: string | null = null;
  const fail = (where: string, err: unknown): void => {
    runError ??= `${where}: ${errorMessage(err)}`;
    log.error({ err: errorMessage(err), where }, 'run failing');
    failure.abort(err);
  };
  const guarded =
    <A extends unknown[]>(where: string, fn: (...args: A) => void) =>
    (...args: A): void => {
      try {
        fn(...args);
      } catch (err) {
        fail(where, err);
      }
    };
  const faults = new FaultSupervisor(store, runId, faultCtx, faultWindows, log);
  // A write that fails (a full disk, an I/O error) fails the run through the same path.
  store.onError = (err, what) => fail(`store (writing ${what})`, err);
  /** Where the run is (runs.phase): what a daemon restarted after a crash reads to take it up. */
  const noteRun = (fields: Partial<RunRow>): void => {
    try {
      store.updateRun(runId, fields);
    } catch (err) {
      fail(`recording the run's progress (${Object.keys(fields).join(', ')})`, err);
    }
  };
  const phase = (p: RunPhase, extra: Partial<RunRow> = {}): void => noteRun({ phase: p, phase_at: clock.now(), ...extra });

  // ---- telemetry
  const telemetry =
    plan.telemetry.interval > 0
      ? new TelemetryCollector(
          targets.map((t) => ({ node: t.node, containerId: t.containerId, endpoint: t.endpoint })),
          { intervalMs: plan.telemetry.interval, metricsPath: plan.telemetry.metrics_path, metrics: plan.telemetry.metrics, timeoutMs: Math.min(plan.telemetry.interval, 5000) },
          docker,
          clock,
          log,
          guarded('telemetry sample', (x) => store.addTelemetry({ run_id: runId, ...x })),
          probes,
        )
      : null;

  const onEpisode = (e: Episode): void => {
    if (finished) {
      log.debug({ episode: e.id }, 'episode update after the run ended: dropped');
      return;
    }
    // The service's detector gives its live state; its outages are measured per fault from the
    // requests (report), and only the nodes' own episodes are failures or end a fault.
    if (service && e.node === service.node) return;
    // What the node looked like just before: its latest telemetry, taken once, at the opening.
    if (!episodesSeen.has(e.id) && telemetry && e.evidence.telemetry === undefined) e.evidence.telemetry = telemetry.snapshot(e.node);
    store.upsertEpisode(episodeRow(runId, e));
    episodesSeen.add(e.id);
    if (e.servingAgainAt !== null) lastServingAgainAt = Math.max(lastServingAgainAt ?? 0, e.servingAgainAt);
    faults.onEpisode(e);
  };
  const observe = (node: string, o: Observation): void => {
    (detectors.get(node) as NodeDetector).observe(o);
  };
  const onState = (c: StateChange): void => {
    if (finished) return;
    store.addNodeState({ run_id: runId, node: c.node, at: c.at, detected_at: c.detectedAt, state: c.state, reason: c.reason });
    // degraded comes and goes with single slow or failed requests: not worth the info log
    (c.state === 'degraded' ? log.debug.bind(log) : log.info.bind(log))({ node: c.node, state: c.state, reason: c.reason }, `${c.node} is ${c.state}`);
    // The probes' pace follows the state: fast while busy, down or recovering.
    probers.get(c.node)?.hurry();
  };
  // The service's detector: any failed request there opens an outage (what a client saw).
  const views = [...targets.map((t) => ({ node: t.node, endpoint: t.endpoint, errorBurst: plan.detection.error_burst })), ...(service ? [{ ...service, errorBurst: 1 }] : [])];
  for (const t of views) {
    detectors.set(
      t.node,
      new NodeDetector(
        t.node,
        { probeFailures: plan.probes.failures, errorBurst: t.errorBurst, recoveryLimitMs: plan.recovery_limit },
        faultWindows,
        () => clock.now(),
        onEpisode,
        `${runId}-${t.node}`,
        guarded('node state', onState),
      ),
    );
  }

  // ---- faults
  const schedule = faultSchedule(plan);
  let faultsDone = 0;
  const stopFaults = new AbortController();
  let halted: string | null = null;
  const journal = (kind: string, message: string, detail?: unknown): void => {
    store.addRunEvent({ run_id: runId, at: clock.now(), kind, message, detail: detail === undefined ? null : JSON.stringify(detail) });
  };
  const skip = (id: string, occ: Occurrence, t: ResolvedTarget, reason: string): void => {
    recordSkipped(store, runId, id, occ.kind, { node: t.node, containerId: t.containerId, containerName: t.containerName }, occ.params, clock.now(), reason);
    journal('fault_skipped', `${occ.kind} on ${t.node} skipped: ${reason}`, { fault: id });
    log.warn({ fault: id, kind: occ.kind, node: t.node, reason }, 'fault skipped');
    faultsDone++;
    noteRun({ faults_done: faultsDone });
  };
  /** Why this injection must not happen now (blast radius, halt, host), or null. */
  const skipReason = async (occ: Occurrence, t: ResolvedTarget): Promise<string | null> => {
    if (halted) return `halted: ${halted}`;
    const injector = FAULTS[occ.kind] as FaultInjector<unknown>;
    const unsupported = await injector.unsupported?.(faultCtx);
    if (unsupported) return `not supported on this host: ${unsupported}`;
    // The plan's own limit first: it is the reason a user set, whatever else also applies.
    const max = plan.safety.max_concurrent_faults;
    if (max !== undefined && faults.activeCount >= max) return `blast radius: ${faults.activeCount} fault(s) already active (safety.max_concurrent_faults: ${max})`;
    const own = detectors.get(t.node);
    // busy and degraded nodes serve: faults go ahead (a slow node under test is still a node under test)
    if (own?.openEpisode) {
      // Its failure is already being measured; a fault on top would blur what caused what.
      return `${t.node} is ${own.state} (episode open since ${new Date(own.openEpisode?.startedAt ?? clock.now()).toISOString()}): a fault on a failing node measures nothing and would blur attribution`;
    }
    const healthyOthers = [...detectors.values()].filter((d) => d.node !== t.node && d.node !== service?.node && d.openEpisode === null).length;
    if (healthyOthers < plan.safety.min_healthy_nodes) {
      return `blast radius: only ${healthyOthers} other node(s) healthy (safety.min_healthy_nodes: ${plan.safety.min_healthy_nodes})`;
    }
    return null;
  };
  const faultLoop = async (began: Promise<number>, stop: AbortSignal): Promise<void> => {
    // Fault times count from the load's first arrival, not from when the engine was launched.
    const loadStart = await new Promise<number | null>((resolve) => {
      if (stop.aborted) return resolve(null);
      stop.addEventListener('abort', () => resolve(null), { once: true });
      void began.then(resolve);
    });
    for (const [i, occ] of schedule.entries()) {
      try {
        if (loadStart === null) throw new Error('stopped before the load began');
        await clock.sleep(loadStart + occ.offsetMs - clock.now(), stop);
      } catch {
        // Stopped. After a halt, what was still to come is recorded as skipped.
        if (halted) for (const [k, rest] of schedule.entries()) if (k >= i) skip(`${runId}-f${k + 1}`, rest, targets.find((x) => x.node === rest.node) as ResolvedTarget, `halted: ${halted}`);
        return;
      }
      // The baseline is the run before any fault.
      degraded.close(clock.now());
      const injector = FAULTS[occ.kind];
      const t = targets.find((x) => x.node === occ.node);
      if (!injector || !t) continue; // validated with the plan; cannot happen
      const id = `${runId}-f${i + 1}`;
      const why = await skipReason(occ, t);
      if (why) {
        skip(id, occ, t, why);
        continue;
      }
      const holdMs = isInstant(injector, occ.params) ? plan.recovery_limit : (injector.holdMs?.(occ.params) ?? plan.recovery_limit);
      const quietMs = Math.max(10_000, plan.probes.interval * (plan.probes.failures + 2));
      const injection = faults.inject(id, injector, { node: t.node, containerId: t.containerId, containerName: t.containerName }, occ.params, holdMs, quietMs);
      // The fault's window is open now: the node's probes go to the fast pace from the injection.
      probers.get(t.node)?.hurry();
      if (service) probers.get(service.node)?.hurry();
      const ok = await injection;
      if (ok) log.info({ fault: id, kind: occ.kind, node: t.node }, `fault ${i + 1}/${schedule.length} injected`);
      faultsDone++;
      noteRun({ faults_done: faultsDone });
    }
  };

  // ---- the halt condition: error rate outside fault windows over a sliding span
  const haltCfg = plan.safety.halt;
  const outside = new Map<number, { n: number; failed: number }>();
  const noteOutcome = (r: RequestRecord): void => {
    if (!haltCfg || r.outcome === 'cancelled') return;
    if (faultWindows.find(r.node, r.sentAt, r.endAt) !== null) return;
    const sec = Math.floor(r.endAt / 1000);
    const b = outside.get(sec) ?? { n: 0, failed: 0 };
    b.n++;
    if (!isSuccess(r.outcome)) b.failed++;
    outside.set(sec, b);
  };
  const checkHalt = (now: number, loadStart: number): void => {
    if (!haltCfg || halted || now - loadStart < haltCfg.for) return;
    const from = Math.floor((now - haltCfg.for) / 1000);
    let n = 0;
    let failed = 0;
    for (const [sec, b] of outside) {
      if (sec < from) outside.delete(sec);
      else {
        n += b.n;
        failed += b.failed;
      }
    }
    if (n < haltCfg.min_requests || failed / n <= haltCfg.error_rate) return;
    halted = `error rate outside fault windows ${((failed / n) * 100).toFixed(1)} % (${failed}/${n}) over the last ${formatDuration(haltCfg.for)}, above safety.halt.error_rate ${(haltCfg.error_rate * 100).toFixed(1)} %`;
    journal('halt', `halted: ${halted}; no further faults, reverting the active ones`, { failed, requests: n });
    log.error({ reason: halted }, 'halt condition met: no further faults; reverting');
    stopFaults.abort();
    faults.halt();
  };

  // ---- Docker events and probes
  let watch: EventWatch | null = null;
  /** Spans during which the Docker engine was lost (orchestrator blindness), per the container nodes. */
  const blind: { from: number; to: number | null; nodes: string[] }[] = [];
  const byContainer = new Map(targets.filter((t) => t.containerId).map((t) => [t.containerId as string, t]));
  if (docker && byContainer.size > 0) {
    watch = watchContainerEvents(
      docker,
      [...byContainer.keys()],
      guarded('docker event', (e: ContainerEvent) => {
        const t = byContainer.get(e.containerId);
        if (!t) return;
        store.addDockerEvent({ run_id: runId, node: t.node, container_id: e.containerId, at: e.at, action: e.rawAction, exit_code: e.exitCode ?? null, attributes: JSON.stringify(e.attributes) });
        observe(t.node, { type: 'docker', action: e.action, at: e.at, exitCode: e.exitCode, signal: e.signal });
        const d = detectors.get(t.node) as NodeDetector;
        if (e.action === 'die') {
          track(
            tailLogs(docker, e.containerId, 20).then(
              (logs) => d.annotate({ logs }),
              (err: unknown) => log.debug({ err: errorMessage(err) }, 'cannot read container logs'),
            ),
          );
        }
        if (e.action === 'start' || e.action === 'die') {
          track(
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
      log,
      {
        sinceMs: started,
        now: () => clock.now(),
        epoch: clock,
        onConnection: guarded('docker connection', (state: 'lost' | 'restored', at: number, why: string) => {
          const nodes = [...byContainer.values()].map((t) => t.node);
          if (state === 'lost') {
            faultWindows.blindStart(nodes, at);
            blind.push({ from: at, to: null, nodes });
            journal('orchestrator_blind', `lost the Docker engine (${why}): failures seen until it answers again are orchestrator blindness, not node failures, and the time is left out of exposure`);
            log.error({ why }, 'lost the Docker engine: Gauntlet cannot see its containers');
          } else {
            faultWindows.blindEnd(at);
            const span = blind.at(-1);
            if (span && span.to === null) span.to = at;
            journal('orchestrator_restored', `the Docker engine answers again${span ? ` after ${formatDuration(at - span.from)}` : ''}`);
            log.warn('the Docker engine answers again');
          }
        }),
      },
    );
    // Bounded: an engine that does not open its event stream is said (and counted as blind
    // time by the watch itself), not waited for forever; the stream keeps trying meanwhile.
    const opened = await Promise.race([watch.ready.then(() => true), clock.sleep(EVENTS_READY_WAIT_MS, signal).then(() => false, () => false)]);
    if (!opened) log.warn(`the Docker engine has not opened its event stream within ${formatDuration(EVENTS_READY_WAIT_MS)}: the run goes on, container events are seen once it does`);
  }
  const faultedAnywhere = (): boolean => targets.some((t) => faultWindows.openOn(t.node));
  for (const t of views) {
    const prober = new NodeProber(
      {
        endpoint: t.endpoint,
        healthPath: plan.probes.path,
        intervalMs: plan.probes.interval,
        timeoutMs: plan.probes.timeout,
        fastIntervalMs: plan.probes.fast_interval,
        canaryIntervalMs: plan.probes.canary_interval,
        canaryTimeoutMs: plan.probes.canary_timeout ?? plan.probes.timeout,
        api: (workload.mix[0] as MixItem).api,
        model: (workload.mix[0] as MixItem).model ?? model,
      },
      clock,
      probes,
      guarded('probe result', (r: ProbeResult) => {
        store.addProbe({ run_id: runId, node: t.node, kind: r.kind, sent_at: r.sentAt, response_at: r.respondedAt, latency_ms: r.latencyMs, ok: r.ok, status: r.status, error: r.error });
        observe(t.node, { type: 'probe', kind: r.kind, sentAt: r.sentAt, respondedAt: r.respondedAt, endAt: r.sentAt + r.latencyMs, ok: r.ok, timedOut: r.timedOut, status: r.status, error: r.error });
      }),
      (): ProbePace => {
        const state = (detectors.get(t.node) as NodeDetector).state;
        if (state === 'down' || state === 'recovering') return 'down';
        // the service is watched closely while any of its nodes is faulted
        return state === 'busy' || faultWindows.openOn(t.node) || (t.node === service?.node && faultedAnywhere()) ? 'watch' : 'normal';
      },
    );
    probers.set(t.node, prober);
    prober.start();
  }


  telemetry?.start();

  // ---- load
  // The load's clock starts when the engine's first arrival is due (sink.started): at once for
  // the builtin engine, a moment after launch for k6. Until then loadStart is the launch time.
  const launchedAt = clock.now();
  let loadStart = launchedAt;
  let loadBegan = false;
  let loadEndedAt: number | null = null;
  let markBegan: (at: number) => void = () => undefined;
  const began = new Promise<number>((resolve) => (markBegan = resolve));
  const degraded = new DegradedJudge(Number.POSITIVE_INFINITY);
  const windows = new WindowAggregator(
    plan.load.window,
    loadStart,
    (closed) => store.addWindow(runId, closed),
    engine.capabilities.queueDelay,
  );
  let windowTtft: number[] = [];
  const begin = (at: number): void => {
    if (loadBegan) return;
    loadBegan = true;
    // (never before the launch: a replayed or skewed first time must not stretch the load back)
    at = Math.max(at, launchedAt);
    loadStart = at;
    windows.rebase(at);
    degraded.close(at + plan.detection.baseline);
    phase('steady', { load_started_at: at, planned_end_at: at + plan.duration });
    const lag = at - launchedAt;
    // Said when the engine took a while to begin (k6: VU start-up); the builtin engine begins at once.
    if (lag >= 100) journal(
      'load_started',
      `${engine.name} began the load ${formatDuration(Math.max(0, lag))} after Gauntlet launched it: fault times, windows and exposure count from its first arrival`,
      { launched_at: launchedAt, began_at: at, lag_ms: lag },
    );
    markBegan(at);
  };
  const sink = {
    started: guarded('load start', (at: number): void => begin(at)),
    ended: guarded('load end', (at: number): void => {
      loadEndedAt = at;
    }),
    record: guarded('request record', (raw: RequestRecord): void => {
      begin(raw.scheduledAt);
      const outcome = degraded.judge(raw);
      const r = outcome === raw.outcome ? raw : { ...raw, outcome };
      windows.record(r);
      noteOutcome(r);
      if (plan.load.raw_requests) {
        store.addRequest({
        run_id: runId,
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
      if (r.outcome !== 'cancelled') observe(r.node, { type: 'request', sentAt: r.sentAt, respondedAt: r.respondedAt, firstTokenAt: r.firstTokenAt, endAt: r.endAt, outcome: r.outcome, status: r.status, error: r.error });
      if (r.ttftMs !== null && isSuccess(r.outcome) && windowTtft.length < 100_000) windowTtft.push(r.ttftMs);
    }),
    scheduleMiss: guarded('schedule miss', (node: string, at: number, count: number): void => {
      begin(at);
      windows.scheduleMiss(node, at, count);
    }),
    planned: guarded('planned arrival', (node: string, at: number, count: number): void => {
      begin(at);
      windows.planned(node, at, count);
    }),
    sample: guarded('latency sample', (node: string, metric: 'ttft' | 'itl' | 'tpot', at: number, ms: number): void => windows.sample(node, metric, at, ms)),
    tokens: guarded('token count', (node: string, at: number, count: number, source: 'usage' | 'chunks'): void => windows.tokens(node, at, count, source)),
    alive: guarded('sign of life', (node: string, at: number): void => observe(node, { type: 'alive', at })),
  };
  const curve = new RateCurve(workload.profile);

  let status: RunStatus = 'completed';
  const finish = new AbortController();
  const runSignal = AbortSignal.any([signal, failure.signal, finish.signal]);
  const untilTimer = ctx.until
    ? every(
        clock,
        250,
        guarded('until', () => {
          const now = clock.now();
          for (const d of detectors.values()) d.tick(now);
          const view: RunView = {
            elapsedMs: Math.max(0, now - loadStart),
            faultsDone,
            faultsTotal: schedule.length,
            activeFaults: faults.activeCount,
            allUp: [...detectors.values()].every((d) => d.openEpisode === null),
            lastServingAgainAt,
            now,
          };
          if (ctx.until?.(view)) finish.abort(new Error('done'));
        }),
      )
    : null;
  store.updateRun(runId, { load_started_at: loadStart });
  let lastProgress = { at: loadStart, scheduled: 0 };
  const progressTimer = every(clock, ctx.progressIntervalMs ?? 5000, guarded('progress', () => {
    const now = clock.now();
    for (const d of detectors.values()) d.tick(now);
    windows.tick(now);
    checkHalt(now, loadStart);
    if (!ctx.onProgress) return;
    const sorted = windowTtft.sort((a, b) => a - b);
    const p = engine.progress;
    ctx.onProgress({
      runId,
      elapsedMs: Math.max(0, now - loadStart),
      durationMs: plan.duration,
      plannedRate: loadBegan ? curve.rate(now - loadStart) : 0,
      achievedRate: ((p.scheduled - lastProgress.scheduled) * 1000) / Math.max(1, now - lastProgress.at),
      inFlight: p.inFlight,
      ok: p.ok,
      failed: p.failed,
      ttftP50: percentileSorted(sorted, 50),
      ttftP99: percentileSorted(sorted, 99),
      nodes: [...detectors.values()].map((d) => ({ node: d.node, state: d.state, since: d.openEpisode?.startedAt ?? null })),
      faultsDone,
      faultsTotal: schedule.length,
      episodes: episodesSeen.size,
    });
    windowTtft = [];
    lastProgress = { at: now, scheduled: p.scheduled };
  }));

  // Once per plan-hour (the rollup span): the write-ahead log folded in and truncated, and this
  // process's memory and the database's size recorded, so every run says how both grew.
  const housekeeping = every(
    clock,
    windows.rollupMs,
    guarded('housekeeping', () => {
      const at = clock.now();
      const cp = store.checkpoint();
      if (!cp.ok) log.warn({ walPages: cp.walPages }, 'the database checkpoint did not complete; SQLite retries it as the log grows');
      const size = store.sizeBytes();
      if (size !== null) store.addTelemetry({ run_id: runId, node: GENERATOR_NODE, at, metric: 'db_bytes', value: size });
      store.addTelemetry({ run_id: runId, node: GENERATOR_NODE, at, metric: 'rss_bytes', value: process.memoryUsage.rss() });
    }),
  );
  const scheduled = faultLoop(began, AbortSignal.any([stopFaults.signal, runSignal]));
  // Whether the generator keeps up: this process's event-loop lag and k6's CPU, every second.
  const generator = new GeneratorMonitor(
    guarded('generator sample', (x) => store.addTelemetry({ run_id: runId, ...x })),
    () => clock.now(),
    () => ('processId' in engine && typeof engine.processId === 'function' ? engine.processId() : null),
  );
  generator.start();
  try {
    await engine.run(workload, runSignal, sink);
  } catch (err) {
    fail('load engine', err);
  } finally {
    phase('stop');
    stopFaults.abort();
    generator.stop();
    progressTimer();
    untilTimer?.();
    housekeeping();
    // The load ended with its last request (k6 takes a moment to exit after it); a load that
    // never began has no length.
    const loadEnd = loadBegan ? Math.max(loadStart, Math.min(clock.now(), loadEndedAt ?? clock.now())) : loadStart;
    if (failure.signal.aborted) status = 'failed';
    else if (signal.aborted) status = 'aborted';
    // An injection under way lands before the reverts start; nothing is injected after.
    await scheduled.catch((err: unknown) => fail('fault schedule', err));
    phase('finalize');
    await faults.revertAll();
    try {
      windows.flush();
    } catch (err) {
      fail('writing the last windows', err);
      status = 'failed';
    }
    await Promise.all([...probers.values()].map((p) => p.stop()));
    await telemetry?.stop();
    watch?.stop();
    await Promise.allSettled([...evidenceTasks]);
    for (const d of detectors.values()) d.tick(clock.now());
    if (docker) {
      for (const t of targets) {
        if (!t.containerId) continue;
        try {
          const info = await docker.getContainer(t.containerId).inspect();
          store.updateNode(runId, t.node, { restart_count_end: info.RestartCount });
        } catch {
          // container gone: leave the end count empty
        }
      }
    }
    for (const span of blind) {
      journal('orchestrator_blind_span', `blind from ${new Date(span.from).toISOString()} for ${formatDuration((span.to ?? loadEnd) - span.from)}${span.to === null ? ' (until the end of the load)' : ''}`, { from: span.from, to: span.to ?? loadEnd, nodes: span.nodes });
    }
    const baselines = degraded.baselines();
    journal(
      'baseline',
      baselines.length > 0
        ? `baseline (until ${new Date(degraded.endsAt).toISOString()}): ${baselines.map((x) => `${x.mix} e2e p50 ${x.p50Ms.toFixed(1)} ms over ${x.samples} requests, degraded above ${x.thresholdMs.toFixed(1)} ms`).join('; ')}`
        : 'no baseline: too few successful requests before the first fault; nothing judged degraded',
      baselines,
    );
    // The run's status is decided last: a failure found while finishing (the store, a revert) counts.
    if (failure.signal.aborted) status = 'failed';
    if (!store.flush()) log.error({ pending: store.pendingRows }, 'some rows could not be written');
    try {
      store.updateRun(runId, { status, load_ended_at: loadEnd, ended_at: clock.now(), error: runError, phase: 'done', phase_at: clock.now() });
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'the run\'s end could not be recorded in the database');
    }
    store.onError = null;
    if (store.lostRows > 0) log.error({ lost: store.lostRows }, 'rows lost to failed database writes');
    finished = true;
  }
  let reportDir = join(ctx.reportsDir, runId);
  try {
    reportDir = writeReports(store, runId, ctx.reportsDir);
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'the report could not be written');
    runError ??= `writing the report: ${errorMessage(err)}`;
    status = 'failed';
  }
  log.info({ status, reportDir }, 'run ended');
  return { runId, status, reportDir, error: runError };
}
