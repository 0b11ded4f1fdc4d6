// The daemon: its data folder (database, API token), the run manager, the schedules, the API.
// At start it reverts whatever an earlier, killed Gauntlet left behind (the ledger, then
// Gauntlet's marks), before it arms a schedule or takes a request. close() is the graceful end
// (SIGTERM, Ctrl-C): schedules disarmed, the queue emptied, the run under way stopped — load
// stopped, faults reverted, the run finished as aborted, its report written — the store closed.
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Dispatcher } from 'undici';
import type { Docker } from '../docker/engine.js';
import { GauntletError, errorMessage, isGauntletError } from '../errors.js';
import { revertLeftovers } from '../fault/ledger.js';
import type { LoadEngine } from '../load/types.js';
import type { Logger } from '../log.js';
import { loadPlanFile } from '../plan/load.js';
import { openStore, type RunRow, type Store } from '../store/store.js';
import type { Plan } from '../plan/schema.js';
import { endCutOffRun } from '../run/runner.js';
import { ownerAlive } from '../util/proc.js';
import { RealClock, type Clock } from '../util/clock.js';
import { ensureDir } from '../util/fs.js';
import type { ProcessHost } from '../util/proc.js';
import type { Random } from '../util/random.js';
import { buildApi } from './api.js';
import type { DaemonConfig } from './config.js';
import { CronScheduler, type CronEntry } from './cron.js';
import { RunManager } from './runs.js';
import { ensureToken } from './token.js';
import { liveDaemonInfo, removeDaemonInfo, writeDaemonInfo } from './client.js';
import { DaemonMetrics } from './metrics.js';
import { readFileSync } from 'node:fs';

export interface DaemonOptions {
  config: DaemonConfig;
  log: Logger;
  docker: Docker | null;
  clock?: Clock;
  /** The wall clock schedules follow (default: the given clock's now, else Date.now). */
  wall?: () => number;
  /** Where relative plan paths in API requests start (default: the process's working folder). */
  cwd?: string;
  random?: Random;
  http?: { load: Dispatcher; probes: Dispatcher };
  processes?: ProcessHost;
  engine?: () => LoadEngine;
  /** Listen (default true); tests that use app.inject() need no socket. */
  listen?: boolean;
}

export interface Daemon {
  store: Store;
  runs: RunManager;
  scheduler: CronScheduler;
  metrics: DaemonMetrics;
  app: FastifyInstance;
  token: string;
  tokenPath: string;
  /** The address it listens on (null when not listening). */
  address: string | null;
  close(why?: string): Promise<void>;
}

/**
 * Runs a killed Gauntlet left mid-way (owner gone): the one whose plan allows it and whose
 * planned end is still ahead is taken up until then, the gap recorded as orchestrator downtime;
 * the others are ended as aborted with the reason, their reports written. Their faults were
 * reverted just before.
 */
async function takeUpCutOffRuns(store: Store, runs: RunManager, clock: Clock, log: Logger, reportsDir: string): Promise<void> {
  let rows: RunRow[];
  try {
    rows = store.cutOffRuns((owner) => ownerAlive(owner));
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'could not read the runs a killed Gauntlet left');
    return;
  }
  for (const row of rows) {
    try {
      const lastAt = store.lastActivity(row.id) ?? row.phase_at ?? row.started_at;
      const plan = JSON.parse(row.plan_json) as Plan;
      const now = clock.now();
      const why =
        plan.resume === false
          ? 'its plan says resume: false'
          : row.phase !== 'steady'
            ? `it was cut off in its ${row.phase ?? 'unknown'} phase, not under load`
            : row.time_scale !== 1
              ? `it ran time-scaled (×${row.time_scale}): its clock ended with the process`
              : (row.planned_end_at ?? 0) <= now
                ? `its planned end ${new Date(row.planned_end_at ?? 0).toISOString()} has passed`
                : runs.running
                  ? `run ${runs.running.id} is taken up already; one run at a time`
                  : null;
      if (why === null && runs.resume(row, lastAt)) {
        log.warn({ run: row.id, lastAt: new Date(lastAt).toISOString(), plannedEnd: new Date(row.planned_end_at ?? 0).toISOString() }, `taking up run ${row.id}, cut off when Gauntlet was killed, until its planned end`);
        continue;
      }
      const dir = await endCutOffRun(store, row, lastAt, why ?? 'a run is under way', reportsDir, now);
      log.warn({ run: row.id, reason: why, report: dir }, `run ${row.id} was cut off when Gauntlet was killed: ended as aborted (${why})`);
    } catch (err) {
      log.error({ run: row.id, err: errorMessage(err) }, 'could not take up or end a run a killed Gauntlet left');
    }
  }
}

export async function startDaemon(o: DaemonOptions): Promise<Daemon> {
  const { config, log } = o;
  const clock = o.clock ?? new RealClock();
  ensureDir(config.data_dir, 'data folder');
  ensureDir(config.reports_dir, 'reports folder');
  const other = liveDaemonInfo(config.data_dir);
  if (other && other.pid !== process.pid) throw new GauntletError('GAUNTLET_DAEMON_RUNNING', [config.data_dir, `pid ${other.pid} at ${other.address} keeps this data folder; one daemon per database`]);
  const { token, path: tokenPath, created } = ensureToken(config.data_dir);
  if (created) log.info({ path: tokenPath }, 'API token created (mode 0600)');
  const store = openStore(join(config.data_dir, 'gauntlet.db'));
  try {
    // Before anything else touches a target: what a killed Gauntlet left behind.
    for (const line of await revertLeftovers(store, { docker: o.docker, log, clock })) log.warn(`reverted a leftover fault: ${line}`);
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'could not revert every leftover fault; `gauntlet revert` retries');
  }
  const metrics = new DaemonMetrics();
  const runs = new RunManager({
    onRunStart: () => {
      metrics.runStarted();
      return metrics.observer();
    },
    onRunEnd: (run) => {
      let mtbf: { plan: string; confidence: number; lowerBoundHours: number } | null = null;
      if (run.result) {
        try {
          const r = JSON.parse(readFileSync(join(run.result.reportDir, 'report.json'), 'utf8')) as { mtbf?: { lower_bound_hours?: number; confidence?: number } };
          if (typeof r.mtbf?.lower_bound_hours === 'number' && typeof r.mtbf.confidence === 'number') mtbf = { plan: run.plan, confidence: r.mtbf.confidence, lowerBoundHours: r.mtbf.lower_bound_hours };
        } catch {
          // no report: the bound is left as it was
        }
      }
      metrics.runEnded(run.result?.status ?? 'not_started', mtbf);
    },
    store,
    clock,
    log,
    docker: o.docker,
    reportsDir: config.reports_dir,
    ...(o.random ? { random: o.random } : {}),
    ...(o.http ? { http: o.http } : {}),
    ...(o.processes ? { processes: o.processes } : {}),
    ...(o.engine ? { engine: o.engine } : {}),
  });
  await takeUpCutOffRuns(store, runs, clock, log, config.reports_dir);
  const fire = (entry: CronEntry, dueAt: number): void => {
    const s = config.schedules.find((x) => x.name === entry.name);
    if (!s) return;
    const firedAt = clock.now();
    let outcome: 'started' | 'queued' | 'skipped' = 'skipped';
    let runId: string | null = null;
    let reason: string | null = null;
    try {
      // read at each fire: an edited plan is taken up the next night, a broken one said
      const plan = loadPlanFile(s.plan);
      const a = runs.submit({ plan, planSource: s.plan, origin: { kind: 'schedule', name: s.name }, whenBusy: s.when_busy });
      outcome = a.state === 'running' ? 'started' : a.state;
      runId = a.id;
      reason = a.reason ?? null;
    } catch (err) {
      reason = isGauntletError(err) ? err.message.replace(/\s+/g, ' ') : errorMessage(err);
    }
    try {
      store.addScheduleFire({ schedule: s.name, due_at: dueAt, fired_at: firedAt, outcome, run_id: runId, reason });
    } catch (err) {
      // bookkeeping: a failed write is said, and never fails the run under way
      log.error({ schedule: s.name, err: errorMessage(err) }, 'could not record a schedule fire');
    }
    (outcome === 'skipped' ? log.warn.bind(log) : log.info.bind(log))({ schedule: s.name, outcome, runId, reason }, `schedule ${s.name}: ${outcome}${reason ? ` (${reason})` : ''}`);
  };
  // fire times on the wall clock (a real clock's now() is monotonic from its start)
  const wall = o.wall ?? (o.clock ? () => clock.now() : () => Date.now());
  const scheduler = new CronScheduler(clock, fire, (entry, err) => log.error({ schedule: entry.name, err: errorMessage(err) }, 'schedule fire failed'), wall);
  const app = buildApi({ config, token, store, runs, scheduler, metrics, docker: o.docker, cwd: o.cwd ?? process.cwd(), startedAt: clock.now(), now: () => clock.now() });
  let address: string | null = null;
  if (o.listen !== false) {
    try {
      address = await app.listen({ host: config.listen.host, port: config.listen.port });
    } catch (err) {
      store.close();
      throw new GauntletError('GAUNTLET_DAEMON_LISTEN', [`${config.listen.host}:${config.listen.port}`, errorMessage(err)]);
    }
    if (!['127.0.0.1', '::1', 'localhost'].includes(config.listen.host)) log.warn({ host: config.listen.host }, 'the API listens beyond this machine: the token is all that guards it');
    log.info({ address }, 'daemon listening');
    // where the CLI finds it (removed when it stops; a stale one is told by its dead pid)
    writeDaemonInfo(config.data_dir, { pid: process.pid, address, started_at: new Date().toISOString() });
  }
  for (const s of config.schedules) if (s.enabled) scheduler.add({ name: s.name, cron: s.cron, timezone: s.timezone });
  let closed: Promise<void> | null = null;
  return {
    store,
    runs,
    scheduler,
    metrics,
    app,
    token,
    tokenPath,
    get address() {
      return address;
    },
    close(why = 'the daemon is shutting down') {
      closed ??= (async () => {
        scheduler.stop();
        await runs.close(why);
        await app.close();
        if (address !== null) removeDaemonInfo(config.data_dir, process.pid);
        store.close();
        log.info('daemon stopped');
      })();
      return closed;
    },
  };
}
