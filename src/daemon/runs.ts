// The daemon's runs: started from the API, a drill or a schedule, one at a time. A request that
// comes while a run is under way is skipped with the reason (recorded) or queued, as the caller
// (a schedule's when_busy, the API's `queue`) asks. Each run keeps its live progress here; its
// record is the store's, as for a run from the CLI. Stopping a run is the CLI's Ctrl-C: load
// stopped, every fault reverted, the run finished as aborted, the report written.
import { resolveParallelism } from '../load/parallel.js';
import type { Dispatcher } from 'undici';
import type { Docker } from '../docker/engine.js';
import { errorMessage } from '../errors.js';
import type { LoadEngine } from '../load/types.js';
import type { Logger } from '../log.js';
import type { Plan } from '../plan/schema.js';
import { newRunId, osRandom, Run, runPlan, type RunContext, type RunObserver, type RunProgress, type RunResult, type RunView } from '../run/runner.js';
import type { RunRow, Store } from '../store/store.js';
import type { Clock } from '../util/clock.js';
import { ownerAlive, type ProcessHost } from '../util/proc.js';
import type { Random } from '../util/random.js';

export interface RunRequest {
  plan: Plan;
  planSource: string | null;
  /** Who asked: the API, a drill, or the schedule of that name. */
  origin: { kind: 'api' | 'drill' | 'schedule' | 'resume'; name?: string };
  /** While another run is under way: wait for it (queue) or not (skip). */
  whenBusy: 'skip' | 'queue';
  /** Ends the run early, as completed, once true (a drill: its fault over and the node serving). */
  until?: (v: RunView) => boolean;
}

export type RunState = 'queued' | 'running' | 'done';

export interface ManagedRun {
  id: string;
  plan: string;
  origin: RunRequest['origin'];
  state: RunState;
  requestedAt: number;
  progress: RunProgress | null;
  result: RunResult | null;
  error: string | null;
}

export interface Accepted {
  id: string | null;
  state: 'running' | 'queued' | 'skipped';
  reason?: string;
}

export interface RunManagerContext {
  store: Store;
  clock: Clock;
  log: Logger;
  docker: Docker | null;
  reportsDir: string;
  random?: Random;
  http?: { load: Dispatcher; probes: Dispatcher };
  processes?: ProcessHost;
  /** An engine for every run (tests); default: the plan's. */
  engine?: () => LoadEngine;
  progressIntervalMs?: number;
  /** A run begins: what should watch it (the daemon's metrics). */
  onRunStart?: (run: ManagedRun) => RunObserver | undefined;
  /** A run ended (or could not start). */
  onRunEnd?: (run: ManagedRun) => void;
}

interface Entry {
  run: ManagedRun;
  req: RunRequest;
  /** A run cut off by a killed Gauntlet, taken up (its row, and where its record stops). */
  resume?: { row: RunRow; gapFrom: number };
  stop: AbortController;
  done: Promise<void>;
  settle: () => void;
}

export class RunManager {
  private current: Entry | null = null;
  private readonly queue: Entry[] = [];
  private readonly recent: ManagedRun[] = [];
  private closing = false;

  constructor(private readonly ctx: RunManagerContext) {}

  /** Starts the run now, queues it, or skips it with the reason (another run is under way). */
  submit(req: RunRequest): Accepted {
    if (this.closing) return { id: null, state: 'skipped', reason: 'the daemon is shutting down' };
    const scale = this.ctx.clock.timeScale;
    if (!this.ctx.engine && req.plan.load.engine === 'k6' && Number.isFinite(scale) && scale !== 1) {
      return { id: null, state: 'skipped', reason: `k6 times its requests in real time; this daemon runs plans ×${scale} (--time-scale), which needs the builtin engine (load.engine: builtin)` };
    }
    // A plan sent over the API does not get to log in elsewhere with this daemon's keys: k6 on
    // SSH hosts runs from the CLI or from a schedule in the daemon's own config.
    if (req.origin.kind === 'api' && req.plan.load.k6_operator) {
      return { id: null, state: 'skipped', reason: "plans sent over the API may not drive k6-operator (load.k6_operator: the daemon's kubeconfig): run them with gauntlet run, or schedule them in the daemon config" };
    }
    if (req.origin.kind === 'api' && req.plan.load.k6_hosts?.some((h) => h.host !== 'local')) {
      return { id: null, state: 'skipped', reason: 'plans sent over the API may not run k6 on SSH hosts (load.k6_hosts): run them with gauntlet run, or schedule them in the daemon config' };
    }
    // The same for other Docker engines: their certificates and keys are files on this machine,
    // and faults there run as root on that host.
    if (req.origin.kind === 'api' && req.plan.engines.length > 0) {
      return { id: null, state: 'skipped', reason: 'plans sent over the API may not name Docker engines (engines): run them with gauntlet run, or schedule them in the daemon config' };
    }
    if (!this.ctx.engine && req.plan.load.engine === 'builtin' && Number.isFinite(scale) && scale !== 1 && resolveParallelism(req.plan.load.parallelism) > 1) {
      return { id: null, state: 'skipped', reason: `worker threads time their requests in real time; this daemon runs plans ×${scale} (--time-scale), which needs load.parallelism: 1` };
    }
    // a Gauntlet outside this daemon (a CLI run) running on the same database: not raced, not waited for
    const outside = this.ctx.store.listRuns(20).find((r) => r.status === 'running' && r.id !== this.current?.run.id && ownerAlive(r.owner ?? null));
    if (outside) {
      const reason = `run ${outside.id} (${outside.plan_name}) is under way in another Gauntlet on this database (${outside.owner?.split('|').slice(0, 2).join(' pid ')}); it is not raced`;
      this.ctx.log.warn({ plan: req.plan.name, origin: req.origin, other: outside.id }, `not started: ${reason}`);
      return { id: null, state: 'skipped', reason };
    }
    const busy = this.current;
    if (busy && req.whenBusy === 'skip') {
      const reason = `run ${busy.run.id} (${busy.run.plan}) is under way; one run at a time`;
      this.ctx.log.warn({ plan: req.plan.name, origin: req.origin, busy: busy.run.id }, `not started: ${reason}`);
      return { id: null, state: 'skipped', reason };
    }
    // one waiting per schedule: a schedule that keeps firing during a long run does not pile up
    const same = req.origin.kind === 'schedule' ? this.queue.find((e) => e.req.origin.kind === 'schedule' && e.req.origin.name === req.origin.name) : undefined;
    if (busy && same) {
      const reason = `run ${same.run.id} of this schedule is already queued behind ${busy.run.id}`;
      this.ctx.log.warn({ plan: req.plan.name, origin: req.origin }, `not queued: ${reason}`);
      return { id: null, state: 'skipped', reason };
    }
    const id = newRunId(req.plan, this.ctx.clock.now(), this.ctx.random ?? osRandom());
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    const entry: Entry = {
      run: { id, plan: req.plan.name, origin: req.origin, state: 'queued', requestedAt: this.ctx.clock.now(), progress: null, result: null, error: null },
      req,
      stop: new AbortController(),
      done,
      settle,
    };
    if (busy) {
      this.queue.push(entry);
      this.ctx.log.info({ id, plan: req.plan.name, behind: busy.run.id }, 'run queued');
      return { id, state: 'queued', reason: `behind run ${busy.run.id}` };
    }
    this.launch(entry);
    return { id, state: 'running' };
  }

  /**
   * Takes up a run a killed Gauntlet left mid-way, as the run under way (at the daemon's start,
   * before any request; false when a run is under way already).
   */
  resume(row: RunRow, gapFrom: number): boolean {
    if (this.current || this.closing) return false;
    const plan = JSON.parse(row.plan_json) as Plan;
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    this.launch({
      run: { id: row.id, plan: row.plan_name, origin: { kind: 'resume' }, state: 'queued', requestedAt: this.ctx.clock.now(), progress: null, result: null, error: null },
      req: { plan, planSource: row.plan_source, origin: { kind: 'resume' }, whenBusy: 'skip' },
      resume: { row, gapFrom },
      stop: new AbortController(),
      done,
      settle,
    });
    return true;
  }

  /** Stops a run under way (or takes a queued one off the queue). False: no such live run. */
  stop(id: string, why = 'stopped through the API'): boolean {
    if (this.current?.run.id === id) {
      this.current.stop.abort(new Error(why));
      return true;
    }
    const i = this.queue.findIndex((e) => e.run.id === id);
    if (i < 0) return false;
    const [e] = this.queue.splice(i, 1) as [Entry];
    e.run.state = 'done';
    e.run.error = `taken off the queue: ${why}`;
    this.remember(e.run);
    e.settle();
    return true;
  }

  /** A live or recently ended run this daemon ran (the store has every run). */
  get(id: string): ManagedRun | undefined {
    if (this.current?.run.id === id) return this.current.run;
    return this.queue.find((e) => e.run.id === id)?.run ?? this.recent.find((r) => r.id === id);
  }

  get running(): ManagedRun | null {
    return this.current?.run ?? null;
  }

  get queued(): ManagedRun[] {
    return this.queue.map((e) => e.run);
  }

  /** Resolves when the run has ended (immediately for one that is not live). */
  async wait(id: string): Promise<ManagedRun | undefined> {
    const e = this.current?.run.id === id ? this.current : this.queue.find((x) => x.run.id === id);
    if (e) await e.done;
    return this.get(id);
  }

  /** Stops everything: the queue emptied, the run under way stopped (faults reverted) and awaited. */
  async close(why = 'the daemon is shutting down'): Promise<void> {
    this.closing = true;
    for (const e of this.queue.splice(0)) {
      e.run.state = 'done';
      e.run.error = `not started: ${why}`;
      this.remember(e.run);
      e.settle();
    }
    const cur = this.current;
    if (cur) {
      cur.stop.abort(new Error(why));
      await cur.done;
    }
  }

  private launch(entry: Entry): void {
    this.current = entry;
    entry.run.state = 'running';
    const { ctx } = this;
    this.ctx.log.info({ id: entry.run.id, plan: entry.run.plan, origin: entry.req.origin }, 'run starting');
    let observer: RunObserver | undefined;
    let engine: LoadEngine | undefined;
    try {
      observer = ctx.onRunStart?.(entry.run);
      engine = ctx.engine?.();
    } catch (err) {
      // a hook or engine factory that throws: this run does not start, the queue goes on
      entry.run.error = `not started: ${errorMessage(err)}`;
      this.ctx.log.error({ id: entry.run.id, err: errorMessage(err) }, 'run could not start');
      void Promise.resolve().then(() => this.finished(entry));
      return;
    }
    const runCtx: RunContext = {
      store: ctx.store,
      clock: ctx.clock,
      log: ctx.log,
      docker: ctx.docker,
      reportsDir: ctx.reportsDir,
      signal: entry.stop.signal,
      runId: entry.run.id,
      onProgress: (p) => {
        entry.run.progress = p;
      },
      ...(ctx.progressIntervalMs !== undefined ? { progressIntervalMs: ctx.progressIntervalMs } : {}),
      ...(engine ? { engine } : {}),
      ...(ctx.http ? { http: ctx.http } : {}),
      ...(ctx.processes ? { processes: ctx.processes } : {}),
      ...(entry.req.until ? { until: entry.req.until } : {}),
      ...(observer ? { observer } : {}),
    };
    void (entry.resume ? Run.resume(entry.resume.row, entry.resume.gapFrom, runCtx) : runPlan(entry.req.plan, entry.req.planSource, runCtx))
      .then(
        (result) => {
          entry.run.result = result;
          entry.run.error = result.error;
        },
        (err: unknown) => {
          // prepare failed (a target not ready, Docker away): the run never existed
          entry.run.error = errorMessage(err);
          this.ctx.log.error({ id: entry.run.id, err: errorMessage(err) }, 'run could not start');
        },
      )
      .finally(() => this.finished(entry));
  }

  private finished(entry: Entry): void {
    entry.run.state = 'done';
    try {
      this.ctx.onRunEnd?.(entry.run);
    } catch (err) {
      this.ctx.log.warn({ err: errorMessage(err) }, 'run end hook failed');
    }
    this.remember(entry.run);
    this.current = null;
    entry.settle();
    const next = this.queue.shift();
    if (next && !this.closing) this.launch(next);
  }

  private remember(run: ManagedRun): void {
    this.recent.unshift(run);
    this.recent.length = Math.min(this.recent.length, 50);
  }
}
