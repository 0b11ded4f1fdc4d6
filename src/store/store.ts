// The only writer of the SQLite database. WAL mode; high-volume rows (requests, probes) are
// buffered and written in one transaction per flush (every 250 ms or 500 rows); the fault
// ledger, runs and episodes are written at once, so a crash loses at most a quarter-second
// of samples and never a fault's undo record.
import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { GauntletError, errorMessage } from '../errors.js';
import { ensureDir, pathProblem } from '../util/fs.js';
import type { ProbeSlots } from '../analysis/run-summary.js';
import type { Closed, LatencyWindow, LoadWindow } from '../load/windows.js';
import { MIGRATIONS } from './migrations.js';
import type { DockerEventRow, EpisodeRow, FaultRow, RunEventRow, ScheduleFireRow, LatencyWindowRow, LoadWindowRow, NodeRow, NodeStateRow, ProbeRow, RequestRow, RunRow, TelemetryRollupRow, TelemetryRow } from './types.js';

export * from './types.js';

type Db = Database.Database;

/** Rows a failing writer keeps for its next try, at most; older ones beyond are counted as lost. */
const MAX_PENDING = 100_000;
/** Load windows a failing store keeps for its next try (a window per node every 10 s: over a day). */
const MAX_PENDING_WINDOWS = 20_000;

class BatchWriter<T> {
  private rows: T[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Db,
    private readonly insert: (row: T) => void,
    /** A failed flush: the rows stay for the next one (bounded), and the store is told. */
    private readonly onError: (err: unknown, lost: number) => void,
    private readonly maxRows = 500,
    private readonly maxDelayMs = 250,
  ) {}

  push(row: T): void {
    this.rows.push(row);
    if (this.rows.length >= this.maxRows && this.rows.length % this.maxRows === 0) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.maxDelayMs);
  }

  get pending(): number {
    return this.rows.length;
  }

  /** Writes what is buffered in one transaction. Never throws: a failure goes to onError and the rows are kept. */
  flush(): boolean {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.rows.length === 0) return true;
    const rows = this.rows;
    try {
      this.db.transaction(() => {
        for (const r of rows) this.insert(r);
      })();
      // Only once they are on disk (rows pushed meanwhile stay).
      this.rows = this.rows.slice(rows.length);
      return true;
    } catch (err) {
      // A disk problem: kept for the next try (bounded). Anything else would fail again: dropped.
      const lost = transient(err) ? Math.max(0, this.rows.length - MAX_PENDING) : rows.length;
      if (lost > 0) this.rows = this.rows.slice(lost);
      this.onError(err, lost);
      return false;
    }
  }
}

/**
 * Errors of the disk or the file system (full, I/O, locked, read-only): rows are kept for a
 * later try. Anything else (a constraint broken: a bug) is told and thrown to the caller.
 */
function transient(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? '');
  return /^SQLITE_(FULL|IOERR|BUSY|LOCKED|READONLY|CANTOPEN|PROTOCOL)/.test(code);
}

/** Space kept in reserve next to a database file: released when the disk fills, so the run can still record how it ended. */
const RESERVE_BYTES = 4 * 1024 * 1024;

export class Store {
  readonly db: Db;
  private readonly requestWriter: BatchWriter<RequestRow>;
  private readonly probeWriter: BatchWriter<ProbeRow>;
  private readonly telemetryWriter: BatchWriter<TelemetryRow>;
  private closed = false;
  private readonly statements = new Map<string, Database.Statement>();
  /**
   * Told of every failed write (a full disk, an I/O error): the run fails through its normal
   * path. Sample writes do not throw (batched rows are kept and tried again); the fault ledger
   * and the run's own row do, after telling.
   */
  onError: ((err: unknown, what: string) => void) | null = null;
  /** Rows given up on after failed writes (kept rows beyond MAX_PENDING, samples written while failing). */
  lostRows = 0;
  private readonly reservePath: string | null;
  private reserveReleased = false;
  private readonly pendingWindows: { runId: string; closed: Closed }[] = [];
  private readonly pendingEpisodes = new Map<string, EpisodeRow>();
  /** Each node's metric's rollup of its current span, and finished ones waiting for a write. */
  private readonly telemetryRollups = new Map<string, TelemetryRollupRow>();
  private pendingTelemetryRollups: TelemetryRollupRow[] = [];
  /** The span of the telemetry rollups: an hour of plan time (the run sets it for a scaled clock). */
  rollupMs = 3_600_000;
  /** What was last written of each episode (its state and times), to tell a count-only change. */
  private readonly episodeKeys = new Map<string, string>();
  private episodeTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly path: string,
    /** For commands that only read (runs, report): never create a database, and refuse a file that is not one. */
    opts: { mustExist?: boolean } = {},
  ) {
    if (path !== ':memory:') {
      if (opts.mustExist) checkExisting(path);
      else {
        ensureDir(dirname(path), 'database folder');
        if (isDirectory(path)) throw new GauntletError('GAUNTLET_PATH_UNUSABLE', ['database', path, 'is a folder; give a file path, e.g. .gauntlet/gauntlet.db']);
      }
    }
    try {
      this.db = new Database(path, opts.mustExist ? { fileMustExist: true } : {});
      if (opts.mustExist) {
        const known = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
        if (!known) throw new GauntletError('GAUNTLET_STORE_FOREIGN', [path, "a SQLite database, but not Gauntlet's (it has no schema_migrations table); nothing was changed"]);
      }
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
    } catch (err) {
      (this as { db?: Db }).db?.close();
      if (err instanceof GauntletError) throw err;
      throw new GauntletError('GAUNTLET_STORE_SCHEMA', [path, (err as Error).message], { cause: err });
    }
    const insReq = this.db.prepare(
      `INSERT INTO requests (run_id,node,seq,attempt,final,mix,prompt_tokens,max_tokens,scheduled_at,sent_at,response_at,first_token_at,end_at,ttft_ms,e2e_ms,queue_delay_ms,outcome,status,output_tokens,tokens_source,chunks,itl_max_ms,error)
       VALUES (@run_id,@node,@seq,@attempt,@final,@mix,@prompt_tokens,@max_tokens,@scheduled_at,@sent_at,@response_at,@first_token_at,@end_at,@ttft_ms,@e2e_ms,@queue_delay_ms,@outcome,@status,@output_tokens,@tokens_source,@chunks,@itl_max_ms,@error)`,
    );
    const insProbe = this.db.prepare(
      `INSERT INTO probes (run_id,node,kind,sent_at,response_at,latency_ms,ok,status,error) VALUES (@run_id,@node,@kind,@sent_at,@response_at,@latency_ms,@ok,@status,@error)`,
    );
    const batchError = (what: string) => (err: unknown, lost: number): void => {
      this.lostRows += lost;
      this.failed(what, err);
    };
    this.requestWriter = new BatchWriter(this.db, (r) => insReq.run({ ...r, final: r.final ? 1 : 0 }), batchError('request rows'));
    this.probeWriter = new BatchWriter(this.db, (r) => insProbe.run({ ...r, ok: r.ok ? 1 : 0 }), batchError('probe rows'));
    const insTelemetry = this.db.prepare('INSERT INTO telemetry (run_id, node, at, metric, value) VALUES (@run_id, @node, @at, @metric, @value)');
    this.telemetryWriter = new BatchWriter(this.db, (r) => insTelemetry.run(r), batchError('telemetry rows'));
    this.reservePath = path !== ':memory:' && !opts.mustExist ? `${path}.reserve` : null;
    this.keepReserve();
  }

  /** A prepared statement, prepared once. */
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  /** Makes sure the reserve file is there (best effort: a disk already full just has none). */
  private keepReserve(): void {
    if (!this.reservePath) return;
    try {
      if (existsSync(this.reservePath) && statSync(this.reservePath).size >= RESERVE_BYTES) return;
      writeFileSync(this.reservePath, Buffer.alloc(RESERVE_BYTES));
    } catch {
      try {
        rmSync(this.reservePath, { force: true });
      } catch {
        // nothing to keep
      }
    }
  }

  /** A write failed: on a full disk the reserve is released (the run's end still gets written), and the listener told. */
  private failed(what: string, err: unknown): void {
    const code = (err as { code?: unknown }).code;
    if (code === 'SQLITE_FULL' && this.reservePath && !this.reserveReleased) {
      this.reserveReleased = true;
      try {
        rmSync(this.reservePath, { force: true });
      } catch {
        // could not free it: the next writes fail too, and say so
      }
    }
    this.onError?.(err, what);
  }

  /** A write that must not be lost quietly (the run's row, the fault ledger): told, then thrown. */
  private critical<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      this.failed(what, err);
      throw new GauntletError('GAUNTLET_STORE_WRITE', [what, errorMessage(err)], { cause: err });
    }
  }

  /** A sample written at once (a state change, a journal line): on failure told and counted, not thrown. */
  private sample(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.lostRows++;
      this.failed(what, err);
      if (!transient(err)) throw err;
    }
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)');
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
    const current = row.v ?? 0;
    if (current > MIGRATIONS.length) {
      throw new GauntletError('GAUNTLET_STORE_SCHEMA', [this.path, `schema version ${current} is newer than this Gauntlet knows (${MIGRATIONS.length}); upgrade Gauntlet`]);
    }
    for (let v = current + 1; v <= MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v - 1] as string);
        this.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, Date.now());
      })();
    }
  }

  // ---- runs and nodes
  createRun(run: RunRow): void {
    this.critical('the run', () => this.stmt(
        `INSERT INTO runs (id,plan_name,plan_json,plan_source,status,started_at,load_started_at,load_ended_at,ended_at,time_scale,seed,error,host,gauntlet_version,engine,phase,phase_at,planned_end_at,faults_done,owner,model,resumes)
         VALUES (@id,@plan_name,@plan_json,@plan_source,@status,@started_at,@load_started_at,@load_ended_at,@ended_at,@time_scale,@seed,@error,@host,@gauntlet_version,@engine,@phase,@phase_at,@planned_end_at,@faults_done,@owner,@model,@resumes)`,
      ).run({ phase: 'done', phase_at: null, planned_end_at: null, faults_done: 0, owner: null, model: null, resumes: 0, ...run }));
  }

  /** UPDATE table SET <the given columns> WHERE id = ?. Column names come from our own types. */
  private updateById(table: 'runs' | 'faults', id: string, fields: Record<string, unknown>): void {
    const keys = Object.keys(fields);
    if (keys.length === 0) return;
    this.critical(table === 'runs' ? 'the run' : 'the fault ledger', () => this.stmt(`UPDATE ${table} SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`).run({ ...fields, id }));
  }

  updateRun(id: string, fields: Partial<Omit<RunRow, 'id'>>): void {
    this.updateById('runs', id, fields);
  }

  /** Runs left mid-way by a Gauntlet that is gone (killed, or the machine lost power): status running, phase not done, owner not alive. */
  cutOffRuns(alive: (owner: string | null) => boolean): RunRow[] {
    const rows = this.db.prepare("SELECT * FROM runs WHERE status = 'running' AND phase != 'done' ORDER BY started_at").all() as RunRow[];
    return rows.filter((r) => !alive(r.owner ?? null));
  }

  /**
   * The time of the run's last row written (a window's end, a probe, a state, an event, a
   * sample, a fault, an episode, a phase): where a killed Gauntlet's record stops.
   */
  lastActivity(runId: string): number | null {
    this.flush();
    const row = this.db
      .prepare(
        `SELECT MAX(t) AS t FROM (
           SELECT MAX(window_start + window_ms) AS t FROM load_windows WHERE run_id = @run
           UNION ALL SELECT MAX(COALESCE(response_at, sent_at)) FROM probes WHERE run_id = @run
           UNION ALL SELECT MAX(at) FROM node_states WHERE run_id = @run
           UNION ALL SELECT MAX(at) FROM run_events WHERE run_id = @run
           UNION ALL SELECT MAX(at) FROM docker_events WHERE run_id = @run
           UNION ALL SELECT MAX(at) FROM telemetry WHERE run_id = @run
           UNION ALL SELECT MAX(MAX(COALESCE(injected_at, 0), COALESCE(planned_at, 0))) FROM faults WHERE run_id = @run
           UNION ALL SELECT MAX(MAX(started_at, COALESCE(serving_again_at, 0), detected_at)) FROM episodes WHERE run_id = @run
           UNION ALL SELECT MAX(COALESCE(phase_at, 0), COALESCE(load_started_at, 0), started_at) FROM runs WHERE id = @run)`,
      )
      .get({ run: runId }) as { t: number | null };
    return row.t;
  }

  /** The run's latest windows, all nodes together (the live page): rate, error rate and ttft p50 (the mean of the nodes' p50s). */
  recentWindows(runId: string, limit: number): { at: number; rate: number; error_rate: number; ttft_p50_ms: number | null }[] {
    const rows = this.db
      .prepare(
        `SELECT w.window_start AS at, SUM(w.attempts) * 1000.0 / MAX(w.window_ms) AS rate, CASE WHEN SUM(w.attempts) > 0 THEN SUM(w.failed) * 1.0 / SUM(w.attempts) ELSE 0 END AS error_rate,
                (SELECT AVG(l.p50_ms) FROM latency_windows l WHERE l.run_id = w.run_id AND l.window_start = w.window_start AND l.metric = 'ttft') AS ttft_p50_ms
           FROM load_windows w WHERE w.run_id = @run GROUP BY w.window_start ORDER BY w.window_start DESC LIMIT @limit`,
      )
      .all({ run: runId, limit }) as { at: number; rate: number; error_rate: number; ttft_p50_ms: number | null }[];
    return rows.reverse();
  }

  getRun(id: string): RunRow | undefined {
    return this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
  }

  listRuns(limit = 50): RunRow[] {
    return this.db.prepare('SELECT * FROM runs ORDER BY started_at DESC LIMIT ?').all(limit) as RunRow[];
  }

  addNode(node: NodeRow): void {
    this.critical('the run', () =>
      this.stmt(
        `INSERT INTO nodes (run_id,name,endpoint,container_id,container_name,image,restart_count_start,restart_count_end,docker_engine)
         VALUES (@run_id,@name,@endpoint,@container_id,@container_name,@image,@restart_count_start,@restart_count_end,@docker_engine)`,
      ).run({ docker_engine: null, ...node }),
    );
  }

  updateNode(runId: string, name: string, fields: Partial<Pick<NodeRow, 'restart_count_end'>>): void {
    this.sample('a node row', () => void this.stmt('UPDATE nodes SET restart_count_end = @restart_count_end WHERE run_id = @run_id AND name = @name').run({ ...fields, run_id: runId, name }));
  }

  nodes(runId: string): NodeRow[] {
    return this.db.prepare('SELECT * FROM nodes WHERE run_id = ? ORDER BY name').all(runId) as NodeRow[];
  }

  // ---- samples (batched)
  addRequest(r: RequestRow): void {
    this.requestWriter.push(r);
  }

  addProbe(p: ProbeRow): void {
    this.probeWriter.push(p);
  }

  addDockerEvent(e: DockerEventRow): void {
    this.sample('a Docker event', () => void this.stmt('INSERT INTO docker_events (run_id,node,container_id,at,action,exit_code,attributes) VALUES (@run_id,@node,@container_id,@at,@action,@exit_code,@attributes)').run(e));
  }

  requests(runId: string): RequestRow[] {
    this.flush();
    return (this.db.prepare('SELECT * FROM requests WHERE run_id = ? ORDER BY sent_at').all(runId) as (Omit<RequestRow, 'final'> & { final: number })[]).map((r) => ({
      ...r,
      final: r.final === 1,
    }));
  }

  /**
   * Attempts (not cancelled) whose lifetime does not overlap an injected failure episode of
   * their node, and how many of them failed; null when the run kept no per-request rows.
   * Counted in SQL: a long run's rows never come into memory.
   */
  countOutsideInjected(runId: string, loadEndedAt: number, service: string | null = null): { total: number; failed: number } | null {
    if (!this.hasRequestRows(runId)) return null;
    // (a service endpoint's requests, under its own name, are touched by an episode of any node behind it)
    const row = this.db
      .prepare(
        `SELECT COUNT(*) AS total, COALESCE(SUM(r.outcome NOT IN ('ok','degraded')), 0) AS failed FROM requests r
         WHERE r.run_id = @run AND r.outcome <> 'cancelled' AND NOT EXISTS (
           SELECT 1 FROM episodes e WHERE e.run_id = r.run_id AND (e.node = r.node OR r.node = @service) AND e.cause <> 'spontaneous'
             AND r.end_at >= e.started_at AND r.sent_at <= COALESCE(e.serving_again_at, @end))`,
      )
      .get({ run: runId, end: loadEndedAt, service }) as { total: number; failed: number };
    return row;
  }

  /**
   * Goodput: of the attempts (not cancelled), how many succeeded within every latency SLO —
   * ttft (when the response streamed) and time per output token ((e2e − ttft) / (tokens − 1),
   * with at least two tokens) — counted per request in SQL; null without per-request rows.
   */
  countGoodput(runId: string, slo: { ttftMs: number | null; tpotMs: number | null }): { total: number; good: number } | null {
    if (!this.hasRequestRows(runId)) return null;
    return this.db
      .prepare(
        `SELECT COUNT(*) AS total, COALESCE(SUM(outcome IN ('ok','degraded')
                  AND (@ttft IS NULL OR ttft_ms IS NULL OR ttft_ms <= @ttft)
                  AND (@tpot IS NULL OR ttft_ms IS NULL OR output_tokens IS NULL OR output_tokens < 2 OR (e2e_ms - ttft_ms) / (output_tokens - 1) <= @tpot)), 0) AS good
           FROM requests WHERE run_id = @run AND outcome <> 'cancelled'`,
      )
      .get({ run: runId, ttft: slo.ttftMs, tpot: slo.tpotMs }) as { total: number; good: number };
  }

  /**
   * The same without per-request rows, from the per-window counters: attempts and failures of
   * the windows (each node's) that do not overlap an injected episode of their node, widened
   * by `leadMs` before its start (requests sent before it that it failed: the plan's timeout).
   * Coarser than the per-request count: a window touched by an episode is left out whole.
   */
  countOutsideInjectedWindows(runId: string, loadEndedAt: number, leadMs: number, service: string | null = null): { total: number; failed: number; windowsLeftOut: number } {
    this.flush();
    // The run's totals (the rollups and the windows no rollup covers, as loadTotals reads them),
    // less the windows an episode touches, each once: read per episode through the primary key
    // (a correlated EXISTS per window scanned every window against every episode: 4 s at 72 h × 8).
    let total = 0;
    let failed = 0;
    for (const w of this.loadTotals(runId)) {
      total += w.attempts;
      failed += w.failed;
    }
    const episodes = (this.db.prepare("SELECT node, started_at, serving_again_at FROM episodes WHERE run_id = ? AND cause <> 'spontaneous'").all(runId) as { node: string; started_at: number; serving_again_at: number | null }[]);
    const touching = this.stmt('SELECT node, window_start, part, attempts, failed FROM load_windows WHERE run_id = ? AND node = ? AND window_start > ? AND window_start <= ?');
    const maxWindow = (this.db.prepare('SELECT COALESCE(MAX(window_ms), 0) AS w FROM load_windows WHERE run_id = ?').get(runId) as { w: number }).w;
    const seen = new Set<string>();
    const windows = new Set<string>();
    const nodes = service === null ? null : [service];
    for (const e of episodes) {
      // a window [start, start + ms) overlaps [from, to] when start > from − ms and start ≤ to
      const from = e.started_at - leadMs;
      const to = e.serving_again_at ?? loadEndedAt;
      for (const node of nodes ? [e.node, ...nodes] : [e.node]) {
        for (const w of touching.all(runId, node, from - maxWindow, to) as { node: string; window_start: number; part: number; attempts: number; failed: number }[]) {
          const key = `${w.node}|${w.window_start}|${w.part}`;
          if (seen.has(key)) continue;
          seen.add(key);
          windows.add(`${w.node}|${w.window_start}`);
          total -= w.attempts;
          failed -= w.failed;
        }
      }
    }
    return { total, failed, windowsLeftOut: windows.size };
  }


  /**
   * The latency windows of `metric` that overlap any of `spans` on their node (each window
   * once): what a fault touched, to take out of the run's totals.
   */
  latencyWindowsTouching(runId: string, metric: string, windowMs: number, spans: readonly { node: string; from: number; to: number }[]): string[] {
    this.flush();
    // (window_start alone on the left: a range on the primary key, not a scan of the node's windows)
    const q = this.stmt('SELECT node, window_start, part, hist FROM latency_windows WHERE run_id = ? AND node = ? AND window_start > ? AND window_start <= ? AND metric = ?');
    const seen = new Map<string, string>();
    for (const sp of spans) for (const r of q.all(runId, sp.node, sp.from - windowMs, sp.to, metric) as { node: string; window_start: number; part: number; hist: string }[]) seen.set(`${r.node}|${r.window_start}|${r.part}`, r.hist);
    return [...seen.values()];
  }

  /** Whether per-request rows were kept for this run (load.raw_requests). */
  hasRequestRows(runId: string): boolean {
    this.flush();
    return this.db.prepare('SELECT 1 FROM requests WHERE run_id = ? LIMIT 1').get(runId) !== undefined;
  }

  /**
   * One closed window (counters and latency histograms) with the rollups it finished, in one
   * transaction: a rollup never exists without the windows it covers, nor they without it.
   */
  addWindow(runId: string, closed: Closed): void {
    if (!this.writeWindow(runId, closed, true)) {
      // Kept for the next flush: a window holds minutes of histograms that nothing else has.
      this.pendingWindows.push({ runId, closed });
      if (this.pendingWindows.length > MAX_PENDING_WINDOWS) {
        this.pendingWindows.shift();
        this.lostRows++;
      }
    }
  }

  /** False when the disk failed it (try again later); a broken constraint is thrown when `raise`, else dropped. */
  private writeWindow(runId: string, closed: Closed, raise = false): boolean {
    try {
      this.db.transaction(() => {
        if (closed.window) {
          this.stmt(
            `INSERT INTO load_windows (run_id,node,window_start,part,window_ms,attempts,ok,failed,cancelled,retries,final_ok,final_failed,outcomes,output_tokens,tokens_from_usage,tokens_from_chunks,schedule_misses,planned)
             VALUES (@run_id,@node,@window_start,@part,@window_ms,@attempts,@ok,@failed,@cancelled,@retries,@final_ok,@final_failed,@outcomes,@output_tokens,@tokens_from_usage,@tokens_from_chunks,@schedule_misses,@planned)`,
          ).run(loadRow(runId, closed.window.load));
          const ins = this.stmt(
            `INSERT INTO latency_windows (run_id,node,window_start,part,metric,count,min_ms,max_ms,mean_ms,p50_ms,p90_ms,p99_ms,hist)
             VALUES (@run_id,@node,@window_start,@part,@metric,@count,@min_ms,@max_ms,@mean_ms,@p50_ms,@p90_ms,@p99_ms,@hist)`,
          );
          for (const l of closed.window.latency) ins.run(latencyRow(runId, l));
        }
        for (const r of closed.rollups) {
          const load = loadRow(runId, r.load);
          this.stmt(
            `INSERT INTO load_rollups (run_id,node,span_start,part,span_ms,windows,last_window,attempts,ok,failed,cancelled,retries,final_ok,final_failed,outcomes,output_tokens,tokens_from_usage,tokens_from_chunks,schedule_misses,planned)
             VALUES (@run_id,@node,@window_start,@part,@window_ms,@windows,@last_window,@attempts,@ok,@failed,@cancelled,@retries,@final_ok,@final_failed,@outcomes,@output_tokens,@tokens_from_usage,@tokens_from_chunks,@schedule_misses,@planned)`,
          ).run({ ...load, windows: r.windows, last_window: r.lastWindow });
          const ins = this.stmt(
            `INSERT INTO latency_rollups (run_id,node,span_start,part,metric,count,min_ms,max_ms,mean_ms,p50_ms,p90_ms,p99_ms,hist)
             VALUES (@run_id,@node,@window_start,@part,@metric,@count,@min_ms,@max_ms,@mean_ms,@p50_ms,@p90_ms,@p99_ms,@hist)`,
          );
          for (const l of r.latency) ins.run(latencyRow(runId, l));
        }
      })();
      return true;
    } catch (err) {
      this.failed('a load window', err);
      if (transient(err)) return false;
      this.lostRows++;
      if (raise) throw err;
      return true;
    }
  }

  /**
   * Per node with windows, the window-start ranges [from, to) no rollup covers — after its last
   * rollup (a run that ended mid-hour), and any hour whose rollup was never written (a write the
   * disk refused): those windows are read one by one.
   */
  private windowTails(runId: string): { node: string; ranges: [number, number][] }[] {
    const spans = this.db.prepare('SELECT node, span_start AS start, MAX(span_ms) AS ms FROM load_rollups WHERE run_id = ? GROUP BY node, span_start').all(runId) as { node: string; start: number; ms: number }[];
    const nodes = this.db.prepare('SELECT DISTINCT node FROM load_windows WHERE run_id = ?').pluck().all(runId) as string[];
    return nodes.map((node) => ({ node, ranges: uncovered(spans.filter((x) => x.node === node).map((x) => [x.start, x.start + x.ms])) }));
  }

  /**
   * The run's counters for a report: its hourly rollups (window_start = the hour's start,
   * window_ms = its length) and, per node, the windows no rollup covers (windowTails) —
   * O(hours × nodes) rows however long the run, and nothing lost when a rollup is missing.
   */
  loadTotals(runId: string): LoadWindowRow[] {
    const out = this.db
      .prepare(
        `SELECT run_id, node, span_start AS window_start, part, span_ms AS window_ms, attempts, ok, failed, cancelled, retries, final_ok, final_failed, outcomes, output_tokens, tokens_from_usage, tokens_from_chunks, schedule_misses, planned
           FROM load_rollups WHERE run_id = ?`,
      )
      .all(runId) as LoadWindowRow[];
    const tail = this.stmt('SELECT * FROM load_windows WHERE run_id = ? AND node = ? AND window_start >= ? AND window_start < ?');
    for (const t of this.windowTails(runId)) for (const [from, to] of t.ranges) out.push(...(tail.all(runId, t.node, from, to) as LoadWindowRow[]));
    return out.sort((a, b) => a.window_start - b.window_start || a.node.localeCompare(b.node) || a.part - b.part);
  }

  /** The run's latency histograms for a report, as loadTotals reads its counters. */
  latencyTotals(runId: string, metric?: string): LatencyWindowRow[] {
    const m = metric === undefined ? '' : 'AND metric = @metric';
    const p = metric === undefined ? { run: runId } : { run: runId, metric };
    const out = this.db
      .prepare(`SELECT run_id, node, span_start AS window_start, part, metric, count, min_ms, max_ms, mean_ms, p50_ms, p90_ms, p99_ms, hist FROM latency_rollups WHERE run_id = @run ${m}`)
      .all(p) as LatencyWindowRow[];
    const tail = this.db.prepare(`SELECT * FROM latency_windows WHERE run_id = @run AND node = @node AND window_start >= @from AND window_start < @to ${m}`);
    for (const t of this.windowTails(runId)) for (const [from, to] of t.ranges) out.push(...(tail.all({ ...p, node: t.node, from, to }) as LatencyWindowRow[]));
    return out.sort((a, b) => a.window_start - b.window_start || a.node.localeCompare(b.node));
  }

  /**
   * Per metric of one node: samples, first, last, min, max, from the telemetry rollups and the
   * samples no rollup holds (after the last one, or in an hour whose rollup was never written).
   */
  telemetrySummary(runId: string, node: string): { metric: string; samples: number; first: number; last: number; min: number; max: number }[] {
    this.flush();
    const out = new Map<string, { metric: string; samples: number; first: number; firstAt: number; last: number; lastAt: number; min: number; max: number }>();
    const add = (metric: string, n: number, min: number, max: number, firstAt: number, first: number, lastAt: number, last: number): void => {
      const t = out.get(metric);
      if (!t) return void out.set(metric, { metric, samples: n, first, firstAt, last, lastAt, min, max });
      t.samples += n;
      t.min = Math.min(t.min, min);
      t.max = Math.max(t.max, max);
      if (firstAt < t.firstAt) [t.firstAt, t.first] = [firstAt, first];
      if (lastAt >= t.lastAt) [t.lastAt, t.last] = [lastAt, last];
    };
    const rolled = this.db.prepare('SELECT * FROM telemetry_rollups WHERE run_id = ? AND node = ?').all(runId, node) as TelemetryRollupRow[];
    for (const r of rolled) add(r.metric, r.count, r.min, r.max, r.first_at, r.first_value, r.last_at, r.last_value);
    const metrics = this.db.prepare('SELECT DISTINCT metric FROM telemetry WHERE run_id = ? AND node = ?').pluck().all(runId, node) as string[];
    const tail = this.stmt('SELECT at, value FROM telemetry WHERE run_id = ? AND node = ? AND metric = ? AND at >= ? AND at < ? ORDER BY at');
    for (const metric of metrics) {
      // the samples no rollup holds: after the last one, or in an hour whose rollup was never written
      for (const [from, to] of uncovered(rolled.filter((r) => r.metric === metric).map((r) => [r.span_start, r.span_start + r.span_ms]))) {
        for (const r of tail.all(runId, node, metric, from, to) as { at: number; value: number }[]) add(metric, 1, r.value, r.value, r.at, r.value, r.at, r.value);
      }
    }
    return [...out.values()].sort((a, b) => a.metric.localeCompare(b.metric)).map((t) => ({ metric: t.metric, samples: t.samples, first: t.first, last: t.last, min: t.min, max: t.max }));
  }

  /** The highest of a telemetry metric (null: no sample), from the rollups and the samples after them. */
  telemetryMax(runId: string, node: string, metric: string): number | null {
    return this.telemetrySummary(runId, node).find((t) => t.metric === metric)?.max ?? null;
  }

  /**
   * Health probes reduced to what availability needs, per node (analysis/run-summary ProbeSlots,
   * which computes the same from rows): SQLite weighs each probe by the time until the next
   * (at most intervalMs; the last until endAt), and only the probes not answered in time come
   * back as rows.
   */
  probeSlots(runId: string, nodes: string[], intervalMs: number, endAt: number): ProbeSlots[] {
    this.flush();
    // One pass: the weighed probes are materialized once, then summed per node and the late ones listed.
    const rows = this.db
      .prepare(
        `WITH q AS MATERIALIZED (
           SELECT node, sent_at, weight, (ok = 1 AND response_at IS NOT NULL AND response_at - sent_at <= MAX(weight, 1)) AS in_time FROM (
             SELECT node, sent_at, response_at, ok,
                    MAX(0, MIN(COALESCE(LEAD(sent_at) OVER (PARTITION BY node ORDER BY sent_at, rowid), @end) - sent_at, @interval)) AS weight
               FROM probes WHERE run_id = @run AND kind = 'health'))
         SELECT 1 AS sum, node, NULL AS sent_at, SUM(weight) AS all_ms, SUM(CASE WHEN in_time THEN weight ELSE 0 END) AS in_time_ms, COUNT(*) AS n, SUM(in_time) AS in_time_n FROM q GROUP BY node
         UNION ALL
         SELECT 0, node, sent_at, weight, NULL, NULL, NULL FROM q WHERE NOT in_time`,
      )
      .all({ run: runId, end: endAt, interval: intervalMs }) as { sum: number; node: string; sent_at: number | null; all_ms: number; in_time_ms: number | null; n: number | null; in_time_n: number | null }[];
    const sums = rows.filter((r) => r.sum === 1) as { node: string; all_ms: number; in_time_ms: number; n: number; in_time_n: number }[];
    const late = rows
      .filter((r) => r.sum === 0)
      .map((r) => ({ node: r.node, sent_at: r.sent_at as number, weight: r.all_ms }))
      .sort((a, b) => a.sent_at - b.sent_at);
    return nodes.map((node) => {
      const x = sums.find((r) => r.node === node);
      return { node, allMs: x?.all_ms ?? 0, inTimeMs: x?.in_time_ms ?? 0, count: x?.n ?? 0, inTime: x?.in_time_n ?? 0, late: late.filter((l) => l.node === node).map((l) => ({ sent_at: l.sent_at, weight: l.weight })) };
    });
  }

  /**
   * What the generator verdict needs, and only the windows where something showed: schedule
   * misses, queue delay p99 over `queueLimitMs`, loop lag over `lagLimitMs`, and k6's CPU share
   * averaged per window (windows at or over `shareLimit`), with the most cores k6 used.
   */
  generatorSignals(
    runId: string,
    o: { node: string; loadStartedAt: number; loadEndedAt: number; windowMs: number; queueLimitMs: number; lagLimitMs: number; shareLimit: number },
  ): { loadWindows: LoadWindowRow[]; queueWindows: LatencyWindowRow[]; telemetry: TelemetryRow[] } {
    this.flush();
    const loadWindows = this.db.prepare('SELECT * FROM load_windows WHERE run_id = ? AND schedule_misses > 0 ORDER BY window_start').all(runId) as LoadWindowRow[];
    const queueWindows = this.db.prepare("SELECT * FROM latency_windows WHERE run_id = ? AND metric = 'queue_delay' AND p99_ms > ? ORDER BY window_start").all(runId, o.queueLimitMs) as LatencyWindowRow[];
    const lag = this.flaggedSpans(runId, o.node, 'loop_lag_p99_ms', o.lagLimitMs).flatMap(([from, to]) =>
      this.stmt("SELECT * FROM telemetry WHERE run_id = ? AND node = ? AND metric = 'loop_lag_p99_ms' AND at >= ? AND at < ? AND value > ? ORDER BY at").all(runId, o.node, from, to, o.lagLimitMs) as TelemetryRow[],
    );
    // One row per window holding its mean share (the verdict averages per window: the same mean),
    // read only in the hours where some sample reached the limit.
    const p = { run: runId, node: o.node, t0: o.loadStartedAt, t1: o.loadEndedAt, w: o.windowMs, limit: o.shareLimit };
    const share = this.flaggedSpans(runId, o.node, 'k6_cpu_share', o.shareLimit, true).flatMap(
      ([from, to]) =>
        this.stmt(
          `SELECT @run AS run_id, @node AS node, @t0 + CAST((MIN(at, @t1 - 1) - @t0) / @w AS INTEGER) * @w AS at, 'k6_cpu_share' AS metric, AVG(value) AS value
             FROM telemetry WHERE run_id = @run AND node = @node AND metric = 'k6_cpu_share' AND at >= MAX(@t0, @from - @w) AND at < @to + @w AND at <= @t1 + 1000
            GROUP BY CAST((MIN(at, @t1 - 1) - @t0) / @w AS INTEGER) HAVING AVG(value) >= @limit`,
        ).all({ ...p, from, to }) as TelemetryRow[],
    );
    // windows straddling two flagged hours are read twice: once is enough
    const seen = new Set<number>();
    const shareOnce = share.filter((r) => !seen.has(r.at) && seen.add(r.at));
    const cores = this.telemetryMax(runId, o.node, 'k6_cpu_cores');
    const coresRow: TelemetryRow[] = cores === null ? [] : [{ run_id: runId, node: o.node, at: o.loadEndedAt, metric: 'k6_cpu_cores', value: cores }];
    return { loadWindows, queueWindows, telemetry: [...lag, ...shareOnce, ...coresRow] };
  }

  /**
   * The time spans [from, to) in which a metric reached a limit (over it, or at least it with
   * `inclusive`): the rollup hours whose max did, and the time no rollup holds.
   */
  private flaggedSpans(runId: string, node: string, metric: string, limit: number, inclusive = false): [number, number][] {
    const rows = this.db.prepare('SELECT span_start, span_ms, max FROM telemetry_rollups WHERE run_id = ? AND node = ? AND metric = ? ORDER BY span_start').all(runId, node, metric) as { span_start: number; span_ms: number; max: number }[];
    const out: [number, number][] = rows.filter((r) => (inclusive ? r.max >= limit : r.max > limit)).map((r) => [r.span_start, r.span_start + r.span_ms]);
    // and the time no rollup holds (after the last one, or an hour never written)
    out.push(...uncovered(rows.map((r) => [r.span_start, r.span_start + r.span_ms])));
    out.sort((a, b) => a[0] - b[0]);
    // adjacent hours as one span: a window read at a span's edge then lies in an hour under the limit
    const merged: [number, number][] = [];
    for (const x of out) {
      const prev = merged.at(-1);
      if (prev && x[0] <= prev[1]) prev[1] = Math.max(prev[1], x[1]);
      else merged.push([x[0], x[1]]);
    }
    return merged;
  }

  loadWindows(runId: string): LoadWindowRow[] {
    return this.db.prepare('SELECT * FROM load_windows WHERE run_id = ? ORDER BY window_start, node, part').all(runId) as LoadWindowRow[];
  }

  latencyWindows(runId: string, metric?: string): LatencyWindowRow[] {
    return (
      metric === undefined
        ? this.db.prepare('SELECT * FROM latency_windows WHERE run_id = ? ORDER BY window_start, node').all(runId)
        : this.db.prepare('SELECT * FROM latency_windows WHERE run_id = ? AND metric = ? ORDER BY window_start, node').all(runId, metric)
    ) as LatencyWindowRow[];
  }

  probes(runId: string): ProbeRow[] {
    this.flush();
    return (this.db.prepare('SELECT * FROM probes WHERE run_id = ? ORDER BY sent_at, rowid').all(runId) as (Omit<ProbeRow, 'ok'> & { ok: number })[]).map((p) => ({ ...p, ok: p.ok === 1 }));
  }

  dockerEvents(runId: string): DockerEventRow[] {
    return this.db.prepare('SELECT * FROM docker_events WHERE run_id = ? ORDER BY at').all(runId) as DockerEventRow[];
  }

  // ---- the fault ledger (synchronous: it must be on disk before the target is touched)
  insertFault(f: FaultRow): void {
    this.critical('the fault ledger', () => this.stmt(
        `INSERT INTO faults (id,run_id,kind,node,params,undo,state,planned_at,injected_at,reverted_at,detail,revert_action,error,owner,driver,result,container_id,engine)
         VALUES (@id,@run_id,@kind,@node,@params,@undo,@state,@planned_at,@injected_at,@reverted_at,@detail,@revert_action,@error,@owner,@driver,@result,@container_id,@engine)`,
      ).run({ driver: null, result: null, container_id: null, engine: null, ...f }));
  }

  updateFault(id: string, fields: Partial<Omit<FaultRow, 'id'>>): void {
    this.updateById('faults', id, fields);
  }

  faults(runId: string): FaultRow[] {
    return this.db.prepare('SELECT * FROM faults WHERE run_id = ? ORDER BY COALESCE(injected_at, planned_at)').all(runId) as FaultRow[];
  }

  /** Faults that were (or may have been) injected and not reverted, in any run. */
  unrevertedFaults(): FaultRow[] {
    return this.db.prepare("SELECT * FROM faults WHERE state IN ('injecting','active') ORDER BY planned_at, rowid").all() as FaultRow[];
  }

  getFault(id: string): FaultRow | undefined {
    return this.db.prepare('SELECT * FROM faults WHERE id = ?').get(id) as FaultRow | undefined;
  }

  // ---- the run's journal
  addRunEvent(e: RunEventRow): void {
    this.sample('a journal line', () => void this.stmt('INSERT INTO run_events (run_id, at, kind, message, detail) VALUES (@run_id, @at, @kind, @message, @detail)').run(e));
  }

  /**
   * A daemon schedule came due: what came of it. Written at once; a failure is thrown to the
   * caller and does not go to onError (which is the run's under way: bookkeeping must not fail it).
   */
  addScheduleFire(f: ScheduleFireRow): void {
    this.stmt('INSERT INTO schedule_fires (schedule, due_at, fired_at, outcome, run_id, reason) VALUES (@schedule, @due_at, @fired_at, @outcome, @run_id, @reason)').run(f);
  }

  /** A schedule's latest fires, newest first. */
  scheduleFires(schedule: string, limit = 20): ScheduleFireRow[] {
    return this.db.prepare('SELECT * FROM schedule_fires WHERE schedule = ? ORDER BY due_at DESC, rowid DESC LIMIT ?').all(schedule, limit) as ScheduleFireRow[];
  }

  runEvents(runId: string): RunEventRow[] {
    return this.db.prepare('SELECT * FROM run_events WHERE run_id = ? ORDER BY at, rowid').all(runId) as RunEventRow[];
  }

  // ---- telemetry
  addTelemetry(r: TelemetryRow): void {
    this.telemetryWriter.push(r);
    this.rollTelemetry(r);
  }

  /** Folds a sample into its node's metric's rollup; a rollup whose span is over is written. */
  private rollTelemetry(r: TelemetryRow): void {
    const span = Math.floor(r.at / this.rollupMs) * this.rollupMs;
    const key = `${r.run_id}\u0000${r.node}\u0000${r.metric}`;
    const acc = this.telemetryRollups.get(key);
    const fresh = (): TelemetryRollupRow => ({ run_id: r.run_id, node: r.node, metric: r.metric, span_start: span, span_ms: this.rollupMs, count: 1, sum: r.value, min: r.value, max: r.value, first_at: r.at, first_value: r.value, last_at: r.at, last_value: r.value });
    if (acc && acc.span_start === span) {
      acc.count++;
      acc.sum += r.value;
      acc.min = Math.min(acc.min, r.value);
      acc.max = Math.max(acc.max, r.value);
      if (r.at < acc.first_at) [acc.first_at, acc.first_value] = [r.at, r.value];
      if (r.at >= acc.last_at) [acc.last_at, acc.last_value] = [r.at, r.value];
      return;
    }
    if (acc && span < acc.span_start) {
      this.pendingTelemetryRollups.push(fresh()); // a late sample: merged into its span's row
    } else {
      if (acc) this.pendingTelemetryRollups.push(acc);
      this.telemetryRollups.set(key, fresh());
    }
    // written when a span is over; one that fails waits for flush(), not for the next sample
    this.writeTelemetryRollups();
  }

  /** Writes finished telemetry rollups (merging into a span's row already there). Never throws. */
  private writeTelemetryRollups(all = false): void {
    if (this.closed) return;
    const rows = all ? [...this.pendingTelemetryRollups, ...this.telemetryRollups.values()] : this.pendingTelemetryRollups;
    if (rows.length === 0) return;
    try {
      this.db.transaction(() => {
        const up = this.stmt(
          `INSERT INTO telemetry_rollups (run_id,node,metric,span_start,span_ms,count,sum,min,max,first_at,first_value,last_at,last_value)
           VALUES (@run_id,@node,@metric,@span_start,@span_ms,@count,@sum,@min,@max,@first_at,@first_value,@last_at,@last_value)
           ON CONFLICT(run_id,node,metric,span_start) DO UPDATE SET count = count + excluded.count, sum = sum + excluded.sum,
             min = MIN(min, excluded.min), max = MAX(max, excluded.max),
             first_value = CASE WHEN excluded.first_at < first_at THEN excluded.first_value ELSE first_value END,
             first_at = MIN(first_at, excluded.first_at),
             last_value = CASE WHEN excluded.last_at >= last_at THEN excluded.last_value ELSE last_value END,
             last_at = MAX(last_at, excluded.last_at)`,
        );
        for (const row of rows) up.run(row);
      })();
      this.pendingTelemetryRollups = [];
      if (all) this.telemetryRollups.clear();
    } catch (err) {
      // kept for the next try (the raw samples stay the report's source for these hours meanwhile)
      this.failed('telemetry rollups', err);
      if (!transient(err)) {
        this.lostRows += this.pendingTelemetryRollups.length;
        this.pendingTelemetryRollups = [];
      }
    }
  }

  /**
   * One node's metric thinned to at most `maxPoints` points: the mean time and value of each
   * equal slice of its span, with the number of samples behind them (a 72 h run's 52 000 samples
   * a node are read in SQL, not brought into memory).
   */
  telemetryMeans(runId: string, node: string, metric: string, maxPoints = 1000): { points: { at: number; value: number }[]; samples: number } {
    this.telemetryWriter.flush();
    const span = this.db.prepare('SELECT MIN(at) AS lo, MAX(at) AS hi, COUNT(*) AS n FROM telemetry WHERE run_id = ? AND node = ? AND metric = ?').get(runId, node, metric) as { lo: number | null; hi: number | null; n: number };
    if (span.n === 0 || span.lo === null || span.hi === null) return { points: [], samples: 0 };
    const bucket = Math.max((span.hi - span.lo) / maxPoints, 1e-9);
    const points = this.db
      .prepare('SELECT AVG(at) AS at, AVG(value) AS value FROM telemetry WHERE run_id = @run AND node = @node AND metric = @metric GROUP BY CAST((at - @lo) / @bucket AS INTEGER) ORDER BY 1')
      .all({ run: runId, node, metric, lo: span.lo, bucket }) as { at: number; value: number }[];
    return { points, samples: span.n };
  }

  /** The latest sample of one node's metric. */
  lastTelemetry(runId: string, node: string, metric: string): number | null {
    this.telemetryWriter.flush();
    const row = this.db.prepare('SELECT value FROM telemetry WHERE run_id = ? AND node = ? AND metric = ? ORDER BY at DESC LIMIT 1').get(runId, node, metric) as { value: number } | undefined;
    return row?.value ?? null;
  }

  telemetry(runId: string, node?: string, metric?: string): TelemetryRow[] {
    this.telemetryWriter.flush();
    return this.db
      .prepare('SELECT run_id, node, at, metric, value FROM telemetry WHERE run_id = @runId AND (@node IS NULL OR node = @node) AND (@metric IS NULL OR metric = @metric) ORDER BY node, metric, at')
      .all({ runId, node: node ?? null, metric: metric ?? null }) as TelemetryRow[];
  }

  // ---- node states
  addNodeState(r: NodeStateRow): void {
    this.sample('a node state', () => void this.stmt('INSERT INTO node_states (run_id, node, at, detected_at, state, reason) VALUES (@run_id, @node, @at, @detected_at, @state, @reason)').run(r));
  }

  nodeStates(runId: string): NodeStateRow[] {
    return this.db.prepare('SELECT * FROM node_states WHERE run_id = ? ORDER BY node, at, rowid').all(runId) as NodeStateRow[];
  }

  // ---- episodes
  /**
   * An episode, new or changed. Its opening and every change of state or timestamp are written
   * at once (what a crash must not lose); a change of only its counts and evidence (each
   * affected request adds one) waits for the next batch, a quarter-second at most, so a burst of
   * failed requests does not make one write each on the event loop that times the load.
   */
  upsertEpisode(e: EpisodeRow): void {
    const key = `${e.status}|${e.cause}|${e.fault_id}|${e.started_at}|${e.detected_at}|${e.running_again_at}|${e.ready_at}|${e.serving_again_at}`;
    if (this.episodeKeys.get(e.id) === key && !this.closed) {
      this.pendingEpisodes.set(e.id, e);
      this.episodeTimer ??= setTimeout(() => {
        this.episodeTimer = null;
        this.flushEpisodes();
      }, 250);
      this.episodeTimer.unref();
      return;
    }
    this.pendingEpisodes.delete(e.id);
    if (this.writeEpisode(e)) this.episodeKeys.set(e.id, key);
    else this.pendingEpisodes.set(e.id, e); // the latest of each, for the next flush
  }

  /** Never throws: a row SQLite refuses for good is dropped (and counted) after the store was told. */
  private flushEpisodes(): void {
    if (this.closed) return;
    for (const [id, e] of [...this.pendingEpisodes]) {
      try {
        if (this.writeEpisode(e)) this.pendingEpisodes.delete(id);
      } catch {
        this.pendingEpisodes.delete(id);
        this.lostRows++;
      }
    }
  }

  private writeEpisode(e: EpisodeRow): boolean {
    try {
      this.stmt(
        `INSERT INTO episodes (id,run_id,node,status,cause,fault_id,started_at,detected_at,running_again_at,ready_at,serving_again_at,first_evidence,evidence,requests_affected)
         VALUES (@id,@run_id,@node,@status,@cause,@fault_id,@started_at,@detected_at,@running_again_at,@ready_at,@serving_again_at,@first_evidence,@evidence,@requests_affected)
         ON CONFLICT(id) DO UPDATE SET status=excluded.status, cause=excluded.cause, fault_id=excluded.fault_id, started_at=excluded.started_at,
           detected_at=excluded.detected_at, running_again_at=excluded.running_again_at, ready_at=excluded.ready_at,
           serving_again_at=excluded.serving_again_at, evidence=excluded.evidence, requests_affected=excluded.requests_affected`,
      ).run(e);
      return true;
    } catch (err) {
      this.failed('an episode', err);
      if (transient(err)) return false;
      throw err;
    }
  }


  episodes(runId: string): EpisodeRow[] {
    this.flushEpisodes();
    return this.db.prepare('SELECT * FROM episodes WHERE run_id = ? ORDER BY started_at').all(runId) as EpisodeRow[];
  }

  /** Writes everything buffered, and what earlier failed writes kept; true when nothing is left. Never throws. */
  flush(): boolean {
    if (this.closed) return true;
    this.flushEpisodes();
    this.writeTelemetryRollups();
    while (this.pendingWindows.length > 0) {
      const w = this.pendingWindows[0] as { runId: string; closed: Closed };
      if (!this.writeWindow(w.runId, w.closed)) break;
      this.pendingWindows.shift();
    }
    const ok = [this.requestWriter.flush(), this.probeWriter.flush(), this.telemetryWriter.flush()].every(Boolean);
    return ok && this.pendingEpisodes.size === 0 && this.pendingWindows.length === 0 && this.pendingTelemetryRollups.length === 0;
  }

  /** Rows still waiting for a write that failed. */
  get pendingRows(): number {
    return this.requestWriter.pending + this.probeWriter.pending + this.telemetryWriter.pending + this.pendingEpisodes.size + this.pendingWindows.length + this.pendingTelemetryRollups.length;
  }

  /**
   * Folds the write-ahead log into the database and truncates it (SQLite checkpoints on its own
   * as the log grows, but never shrinks the file): done once per plan-hour by the run. Never throws.
   */
  checkpoint(): { ok: boolean; walPages: number } {
    if (this.closed) return { ok: false, walPages: 0 };
    try {
      const r = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
      return { ok: (r[0]?.busy ?? 1) === 0, walPages: r[0]?.log ?? 0 };
    } catch {
      // an I/O error here shows in the next write, which fails the run the normal way
      return { ok: false, walPages: 0 };
    }
  }

  /** Bytes on disk: the database and its write-ahead log (null: in memory or unreadable). */
  sizeBytes(): number | null {
    if (this.path === ':memory:') return null;
    let total = 0;
    for (const f of [this.path, `${this.path}-wal`]) {
      try {
        total += statSync(f).size;
      } catch {
        // no log right after a truncating checkpoint
      }
    }
    return total;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.writeTelemetryRollups(true);
    this.lostRows += this.pendingRows;
    if (this.episodeTimer) clearTimeout(this.episodeTimer);
    this.closed = true;
    this.db.close();
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** An existing Gauntlet database, or a clear error; the file is only read. */
function checkExisting(path: string): void {
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new GauntletError('GAUNTLET_PATH_UNUSABLE', ['database', path, 'is a folder; give the database file, e.g. .gauntlet/gauntlet.db']);
    size = st.size;
  } catch (err) {
    if (err instanceof GauntletError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new GauntletError('GAUNTLET_STORE_MISSING', [path, 'nothing has been recorded there (a mistyped --db or GAUNTLET_DB?); nothing was created']);
    throw new GauntletError('GAUNTLET_PATH_UNUSABLE', ['database', path, pathProblem(err)], { cause: err });
  }
  if (size === 0) throw new GauntletError('GAUNTLET_STORE_FOREIGN', [path, 'the file is empty, not a Gauntlet database; nothing was changed']);
  const head = Buffer.alloc(16);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString('latin1') !== 'SQLite format 3\u0000') throw new GauntletError('GAUNTLET_STORE_FOREIGN', [path, 'not a SQLite database (its first bytes say otherwise); nothing was changed']);
}

export function openStore(path: string, opts: { mustExist?: boolean } = {}): Store {
  return new Store(path, opts);
}

/** A window's (or a rollup's) counters as a load_windows row. */
export function loadRow(runId: string, l: LoadWindow): LoadWindowRow {
  return {
    run_id: runId,
    node: l.node,
    window_start: l.windowStart,
    part: l.part,
    window_ms: l.windowMs,
    attempts: l.attempts,
    ok: l.ok,
    failed: l.failed,
    cancelled: l.cancelled,
    retries: l.retries,
    final_ok: l.finalOk,
    final_failed: l.finalFailed,
    outcomes: JSON.stringify(l.outcomes),
    output_tokens: l.outputTokens,
    tokens_from_usage: l.tokensFromUsage,
    tokens_from_chunks: l.tokensFromChunks,
    schedule_misses: l.scheduleMisses,
    planned: l.planned,
  };
}

export function latencyRow(runId: string, x: LatencyWindow): LatencyWindowRow {
  return { run_id: runId, node: x.node, window_start: x.windowStart, part: x.part, metric: x.metric, count: x.count, min_ms: x.minMs, max_ms: x.maxMs, mean_ms: x.meanMs, p50_ms: x.p50Ms, p90_ms: x.p90Ms, p99_ms: x.p99Ms, hist: x.hist };
}

/** The complement of spans [from, to) over the whole line: what they leave uncovered, in order. */
export function uncovered(spans: [number, number][]): [number, number][] {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  let at = Number.NEGATIVE_INFINITY;
  for (const [from, to] of sorted) {
    if (from > at) out.push([at, from]);
    at = Math.max(at, to);
  }
  out.push([at, Number.POSITIVE_INFINITY]);
  return out;
}
