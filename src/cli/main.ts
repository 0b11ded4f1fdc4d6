// The gauntlet command line. Thin: every command calls the same services a daemon would.
// Exit codes: 0 done, 1 run failed or error, 2 bad input, 130 interrupted.
import { Command, CommanderError } from 'commander';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { runDemo } from '../demo.js';
import { doctorPassed, formatCheck, runDoctor, summaryLine } from '../doctor.js';
import { dockerClient, requireDocker } from '../docker/engine.js';
import { ensureSimImage } from '../docker/sim-image.js';
import { dockerTimeoutMs } from '../docker/deadline.js';
import { resolveParallelism } from '../load/parallel.js';
import { bundleScenario } from '../load/k6/bundle.js';
import { k6OperatorManifest, NAMESPACE_NAME, OPERATOR_NAME } from '../load/k6/operator.js';
import { buildWorkload } from '../load/workload.js';
import { packageRoot } from '../util/paths.js';
import { GauntletError, errorMessage } from '../errors.js';
import { revertLeftovers } from '../fault/ledger.js';
import { createDaemonLogger, createLogger, createRunLogger, envLogLevel, type Logger } from '../log.js';
import { loadPlanFile } from '../plan/load.js';
import { runPlan, type RunProgress, type RunResult } from '../run/runner.js';
import { dryRunPlan } from '../run/dry-run.js';
import { drillPlan, drillVerdict, parseParamPairs, runDrill } from '../run/drill.js';
import { faultKinds } from '../../faults/index.js';
import { openStore, type Store } from '../store/store.js';
import { RealClock, ScaledClock } from '../util/clock.js';
import { formatDuration } from '../util/duration.js';
import { writeReports } from '../report/write.js';
import type { ReportJson } from '../report/build.js';
import { VERSION } from '../version.js';
import { defaultDaemonConfig, loadDaemonConfig } from '../daemon/config.js';
import { startDaemon } from '../daemon/daemon.js';
import { findDaemon, type DaemonClient } from '../daemon/client.js';
import { checkDir, ensureDir } from '../util/fs.js';
import { runPlanTest, type PlanTestFlags } from './plan-test.js';
import { compareHtml, compareRuns, compareText } from '../report/compare.js';

interface Common {
  db: string;
  reports: string;
  verbose?: boolean;
}

const out = (s: string): void => void process.stdout.write(`${s}\n`);
const err = (s: string): void => void process.stderr.write(`${s}\n`);

function logger(dbPath: string, verbose: boolean): Logger {
  ensureDir(dirname(dbPath), 'database folder');
  const level = envLogLevel() ?? (verbose ? 'info' : 'warn');
  return createRunLogger(level, join(dirname(dbPath), 'gauntlet.log'));
}

function openDb(path: string): Store {
  return openStore(path);
}

/** Commands that only read: a mistyped path is an error, never a new database. */
function openExistingDb(path: string): Store {
  return openStore(path, { mustExist: true });
}

/**
 * The paths a run writes, checked before any work starts (a run must not find out at its end,
 * hours later, that it cannot write its report): both checked before either is created.
 */
function checkPaths(o: Common): void {
  checkDir(o.reports, 'reports folder');
  checkDir(dirname(resolve(o.db)), 'database folder');
  ensureDir(o.reports, 'reports folder');
}

function checkReportsDir(dir: string): void {
  ensureDir(dir, 'reports folder');
}

/** First Ctrl-C / SIGTERM: stop gracefully (revert, report). Second: exit now. */
function interruptible(): AbortController {
  const ac = new AbortController();
  let count = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++count === 1) {
      err(`\n${sig}: stopping — reverting faults and writing the report (again to exit at once)`);
      ac.abort(new Error(`interrupted by ${sig}`));
    } else {
      err(`${sig} again: exiting now. Active faults stay in the ledger and are reverted at the next start (gauntlet revert).`);
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Last line of defence: a bug that escapes every handler still stops the run the graceful
  // way — faults reverted, report written — instead of killing the process mid-fault.
  process.on('unhandledRejection', (reason) => {
    err(`internal error: ${errorMessage(reason)}; stopping, reverting faults`);
    ac.abort(reason instanceof Error ? reason : new Error(String(reason)));
  });
  return ac;
}

function progressPrinter(): (p: RunProgress) => void {
  const tty = process.stderr.isTTY;
  let last = 0;
  return (p) => {
    const nodes = p.nodes.map((n) => `${n.node} ${n.state}${n.since !== null && n.state !== 'up' ? ` ${formatDuration(Date.now() - n.since)}` : ''}`).join(', ');
    const ttft = p.ttftP50 === null ? '—' : `${p.ttftP50.toFixed(0)}/${(p.ttftP99 ?? 0).toFixed(0)}ms`;
    const line =
      `[${formatDuration(p.elapsedMs)}/${formatDuration(p.durationMs)}] ${p.achievedRate.toFixed(1)}/${p.plannedRate} req/s, ` +
      `in flight ${p.inFlight}, ok ${p.ok}, failed ${p.failed}, ttft p50/p99 ${ttft} | ${nodes} | faults ${p.faultsDone}/${p.faultsTotal}, episodes ${p.episodes}`;
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else if (p.elapsedMs - last >= 10_000 || p.elapsedMs >= p.durationMs) {
      err(line);
      last = p.elapsedMs;
    }
  };
}

function readReport(result: RunResult): ReportJson | null {
  try {
    return JSON.parse(readFileSync(join(result.reportDir, 'report.json'), 'utf8')) as ReportJson;
  } catch {
    return null;
  }
}

/** Hours with the digits a short run needs, never minutes for one figure and hours for another. */
const hours = (x: number): string => (x >= 100 ? `${x.toFixed(0)} h` : x >= 1 ? `${x.toFixed(2)} h` : x >= 0.001 ? `${x.toFixed(4)} h` : `${x.toPrecision(2)} h`);
const millis = (x: number | null): string => (x === null ? '—' : x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(0)} ms`);

function summaryLines(result: RunResult): string[] {
  const r = readReport(result);
  if (!r) return [`run ${result.runId}: ${result.status}${result.error ? ` (${result.error})` : ''}`, `no report: it could not be written to ${result.reportDir} (see the log)`];
  const conf = `${Math.round(r.mtbf.confidence * 100)}%`;
  const rec = r.episodes.filter((e) => e.recovery_ms !== null).map((e) => `${e.node} ${(e.recovery_ms as number).toFixed(0)}ms`);
  return [
    `run ${r.run.id}: ${r.run.status}${r.run.error ? ` (${r.run.error})` : ''}`,
    `  exposure ${r.exposure_node_hours.toFixed(4)} node-hours; failures: ${r.failures.spontaneous} spontaneous, ${r.failures.injected} injected, ${r.failures.recovery_failed} failed recoveries${r.orchestrator_blind_ms > 0 ? `; Gauntlet lost the Docker engine for ${formatDuration(r.orchestrator_blind_ms)} (node-time, left out of exposure; ${r.failures.orchestrator} episodes then are orchestrator blindness, not node failures)` : ''}${r.orchestrator_down_ms > 0 ? `; Gauntlet was down for ${formatDuration(r.orchestrator_down_ms)} of node-time (killed, the run taken up again; left out of exposure)` : ''}`,
    `  MTBF ≥ ${hours(r.mtbf.lower_bound_hours)} at ${conf} (point estimate ${r.mtbf.point_hours === null ? 'none: no failure counted' : hours(r.mtbf.point_hours)}; target ${hours(r.mtbf.target_hours)}${r.mtbf.demonstrated ? ', shown' : ''})`,
    r.recovery.count === 0
      ? '  recovery: no node failed and served again in this run'
      : `  recovery (${r.recovery.count} recovered): p50 ${millis(r.recovery.p50_ms)}, p95 ${millis(r.recovery.p95_ms)}, max ${millis(r.recovery.max_ms)} [${rec.join(', ')}]`,
    `  faults: ${r.faults.filter((f) => f.injected_at !== null).length} injected${r.faults.some((f) => f.driver) ? ` (drivers: ${r.faults.filter((f) => f.driver).map((f) => `${f.kind}=${f.driver}`).join(', ')})` : ''}, ${r.faults.filter((f) => f.state === 'active' || f.state === 'injecting').length} not reverted` +
      (r.faults_not_run.length > 0 ? `; not run: ${r.faults_not_run.map((f) => `${f.kind} on ${f.node} (${f.reason})`).join('; ')}` : ''),
    ...(r.service ? [`  service ${r.service.name}: client-visible outage per fault ${r.service.outages.map((o) => `${o.fault_kind}@${o.node} ${o.started_at === null ? 'none' : o.outage_ms === null ? 'not over' : `${o.outage_ms.toFixed(0)}ms`}`).join(', ') || '—'}; longest ${r.service.max_outage_ms === null ? '—' : `${r.service.max_outage_ms.toFixed(0)} ms`}`] : []),
    `  requests ${r.requests.total}, error rate ${r.requests.error_rate === null ? '—' : `${(r.requests.error_rate * 100).toFixed(2)}%`}; availability ${r.availability.value === null ? '—' : `${(r.availability.value * 100).toFixed(2)}%`}; ttft p50/p99 ${r.latency.ttft_p50_ms ?? '—'}/${r.latency.ttft_p99_ms ?? '—'} ms`,
    r.generator.kept_up
      ? `  load generator kept up (behind ${(r.generator.behind_share * 100).toFixed(1)}% of the load, limit ${(r.generator.limit_share * 100).toFixed(0)}%)`
      : `  LOAD GENERATOR SATURATED: behind ${(r.generator.behind_share * 100).toFixed(1)}% of the load (limit ${(r.generator.limit_share * 100).toFixed(0)}%; first: ${r.generator.behind_windows[0]?.why.join('; ') ?? '—'}): latency there is the generator's, not the server's`,
    ...verdictLines(r),
    `report: ${join(result.reportDir, 'report.html')} (and report.md, report.json, junit.xml)`,
  ];
}

/** The release verdict and every gate that did not pass (older reports have none). */
function verdictLines(r: ReportJson): string[] {
  if (!r.gates) return [];
  const notPassed = r.gates.filter((g) => g.verdict === 'fail' || g.verdict === 'conditional');
  return [
    `  VERDICT ${r.verdict.toUpperCase()}: ${r.gates.filter((g) => g.verdict === 'pass').length} gates pass, ${r.gates.filter((g) => g.verdict === 'conditional').length} conditional, ${r.gates.filter((g) => g.verdict === 'fail').length} fail, ${r.gates.filter((g) => g.verdict === 'not_measured').length} not measured`,
    ...notPassed.map((g) => `    ${g.verdict === 'fail' ? 'FAIL' : 'conditional'} ${g.title}: ${g.reason}`),
  ];
}

/**
 * The run's exit code: 0 completed and its gates passed, 3 completed but the generator fell
 * behind (its numbers are not the server's, so no verdict is trusted), 4 completed and a release
 * gate failed (or was conditional with gates.conditional_fails), 130 stopped, 1 failed.
 */
function runExitCode(result: RunResult): number {
  if (result.status !== 'completed') return result.status === 'aborted' ? 130 : 1;
  const r = readReport(result);
  if (!r) return 1;
  if (!r.generator.kept_up) return 3;
  return r.verdict_fails_run ? 4 : 0;
}

interface OperatorFlags {
  parallelism: string;
  name?: string;
  namespace: string;
  image?: string;
  sse?: boolean;
  model?: string;
  out?: string;
}

/** gauntlet k6-operator: the plan's load as a ConfigMap and a k6-operator TestRun. */
async function cmdK6Operator(planPath: string, o: OperatorFlags): Promise<number> {
  const plan = loadPlanFile(planPath);
  const flag = (name: string, value: string, expected: string): GauntletError => new GauntletError('GAUNTLET_CLI_FLAG', [name, `got ${JSON.stringify(value)}; expected ${expected}`]);
  const n = Number(o.parallelism);
  if (!(Number.isInteger(n) && n >= 1 && n <= 1000)) throw flag('--parallelism', o.parallelism, 'a whole number of runners from 1 to 1000');
  const name = o.name ?? (plan.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 42).replace(/-+$/, '') || 'gauntlet');
  if (!OPERATOR_NAME.test(name)) throw flag('--name', name, "lowercase letters, digits and '-', at most 42 characters");
  if (!NAMESPACE_NAME.test(o.namespace)) throw flag('--namespace', o.namespace, "lowercase letters, digits and '-', at most 63 characters");
  // The runners reach the targets from inside the cluster: every target needs its endpoint.
  const targets = plan.service ? [{ node: plan.service.name, endpoint: plan.service.endpoint }] : plan.targets.map((t) => ({ node: t.name, endpoint: t.endpoint ?? '' }));
  const missing = targets.filter((t) => !t.endpoint).map((t) => t.node);
  if (missing.length > 0) throw new GauntletError('GAUNTLET_PLAN_INVALID', [planPath, `  targets ${missing.join(', ')}: give each an endpoint the cluster can reach (a container is not looked up here)`]);
  const entries = plan.load.mix ?? [plan.load];
  const model = o.model ?? entries.find((e) => e.model !== undefined)?.model;
  if (!model) throw flag('--model', '', 'the model to ask for: the plan names none (it is asked of the server at run time otherwise)');
  const workload = buildWorkload(plan, targets, model, planPath);
  const entry = plan.load.script ? resolve(dirname(planPath), plan.load.script) : join(packageRoot(), 'scenarios', 'load', o.sse ? 'chat-sse.ts' : 'chat.ts');
  const dir = mkdtempSync(join(tmpdir(), 'gauntlet-operator-'));
  try {
    const bundle = readFileSync(await bundleScenario(entry, join(dir, 'scenario.js')), 'utf8');
    let manifest;
    try {
      manifest = k6OperatorManifest(workload, bundle, { name, namespace: o.namespace, parallelism: n, image: o.image ?? null });
    } catch (err) {
      throw new GauntletError('GAUNTLET_CLI_FLAG', ['k6-operator', (err as Error).message]);
    }
    if (o.out) writeFileSync(o.out, manifest.yaml);
    else process.stdout.write(manifest.yaml);
    const say = (line: string): void => void process.stderr.write(`${line}\n`);
    say(`${o.out ? `wrote ${o.out}: ` : ''}ConfigMap ${name}-scenario (${(manifest.configMapBytes / 1024).toFixed(0)} KiB) and TestRun ${name} with ${n} runner${n === 1 ? '' : 's'} in namespace ${o.namespace}.`);
    if (!o.sse && !plan.load.script) say('The scenario is the plain-k6 one (ttft is time to first byte, no inter-token gaps): with a runner image built with xk6-sse, give --image and --sse.');
    say(`Apply with kubectl apply -f; each runner's k6 JSON output is its pod's log: kubectl logs job/${name}-<1…${n}> -n ${o.namespace}.`);
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** --time-scale: plan time per real time (1: real time). */
function timeScaleOption(raw: string | undefined, plan: { load: { engine?: string; parallelism?: number | 'auto' } }): number {
  if (raw === undefined) return 1;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 1 || n > 100_000) throw new GauntletError('GAUNTLET_PLAN_INVALID', ['--time-scale', `  --time-scale: got ${JSON.stringify(raw)}; expected a number from 1 (real time) to 100000`]);
  if (n !== 1 && plan.load.engine === 'k6') throw new GauntletError('GAUNTLET_PLAN_INVALID', ['--time-scale', '  --time-scale: k6 times its requests in real time; a time-scaled run needs the builtin engine (load.engine: builtin)']);
  if (n !== 1 && plan.load.parallelism !== undefined && resolveParallelism(plan.load.parallelism) > 1) throw new GauntletError('GAUNTLET_PLAN_INVALID', ['--time-scale', '  --time-scale: worker threads time their requests in real time; a time-scaled run needs load.parallelism: 1']);
  return n;
}

async function cmdRun(planPath: string, o: Common & { dryRun?: boolean; timeScale?: string; viaDaemon?: boolean; queue?: boolean }): Promise<number> {
  const plan = loadPlanFile(planPath);
  if (o.viaDaemon) {
    if (o.dryRun || o.timeScale !== undefined) throw new GauntletError('GAUNTLET_PLAN_INVALID', ['--via-daemon', '  --via-daemon: not with --dry-run or --time-scale (run those here, without the daemon)']);
    return cmdRunViaDaemon(planPath, o);
  }
  const scale = timeScaleOption(o.timeScale, plan);
  if (o.dryRun) {
    for (const l of await dryRunPlan(plan, { docker: dockerClient(), log: createLogger({ level: 'warn' }), clock: new RealClock(), planSource: planPath })) out(l);
    return 0;
  }
  await refuseBesideDaemon(o, 'send the run to it with --via-daemon (or stop it) rather than race it on the same targets');
  checkPaths(o);
  const log = logger(o.db, o.verbose ?? false);
  const store = openDb(o.db);
  const ac = interruptible();
  try {
    // Always a client (it connects lazily): leftover faults of earlier runs may need Docker.
    const docker = dockerClient();
    err(`gauntlet ${VERSION}: plan ${plan.name} (${formatDuration(plan.duration)}, ${plan.targets.length} targets, ${plan.faults.length} fault entries)`);
    if (scale !== 1) err(`time-scaled ×${scale}: the plan runs in ${formatDuration(plan.duration / scale)} of real time; start the simulator with --time-scale ${scale}; exposure is counted in plan-hours, not real hours`);
    const result = await runPlan(plan, resolve(planPath), {
      store,
      clock: scale === 1 ? new RealClock() : new ScaledClock(scale),
      log,
      docker,
      reportsDir: o.reports,
      signal: ac.signal,
      onProgress: progressPrinter(),
      progressIntervalMs: process.stderr.isTTY ? 1000 : 5000,
    });
    if (process.stderr.isTTY) err('');
    for (const l of summaryLines(result)) out(l);
    return runExitCode(result);
  } finally {
    store.close();
  }
}

/** The daemon keeping this database, if one runs (the database's folder is its data folder). */
function daemonFor(o: Common): Promise<DaemonClient | null> {
  return findDaemon(dirname(resolve(o.db)));
}

/** Refuses to start a second Gauntlet on a database (and so on targets) a running daemon keeps. */
async function refuseBesideDaemon(o: Common, what: string): Promise<void> {
  const d = await daemonFor(o);
  if (d) throw new GauntletError('GAUNTLET_DAEMON_RUNNING', [dirname(resolve(o.db)), `pid ${d.info.pid} at ${d.info.address}; ${what}`]);
}

interface DaemonRunView {
  id: string;
  status: string;
  error: string | null;
  report_dir: string;
  live: { state: string; progress: RunProgress | null } | null;
}

/**
 * Follows a run in the daemon to its end, printing its progress; the first Ctrl-C asks the daemon
 * to stop it. A daemon that stops answering (it is shutting down after the run, or busy writing a
 * long run's report) is asked again for a minute, and meanwhile the shared database says whether
 * the run has ended.
 */
async function followDaemonRun(client: DaemonClient, id: string, state: string, db: string): Promise<RunResult> {
  err(`gauntlet ${VERSION}: sent to the daemon (pid ${client.info.pid}, ${client.info.address}): run ${id}, ${state}`);
  const ac = interruptible();
  ac.signal.addEventListener('abort', () => {
    client.call('POST', `/api/runs/${id}/stop`).then(
      () => err('the daemon is stopping the run: reverting faults, writing the report'),
      (e: unknown) => err(`could not ask the daemon to stop the run: ${errorMessage(e)}`),
    );
  });
  const show = progressPrinter();
  const clock = new RealClock();
  let reportDir = '';
  let silent = 0;
  const ended = (): RunResult | null => {
    let store: Store | null = null;
    try {
      store = openExistingDb(db);
      const row = store.getRun(id);
      // the status is written before the reports, phase 'done' after them: wait while the daemon writes them
      if (row && row.phase !== 'done' && silent < 30) return null;
      return row && row.status !== 'running' ? { runId: id, status: row.status, reportDir, error: row.error } : null;
    } catch {
      return null;
    } finally {
      store?.close();
    }
  };
  for (;;) {
    let v: DaemonRunView;
    try {
      v = await client.call<DaemonRunView>('GET', `/api/runs/${id}`);
      silent = 0;
    } catch (e) {
      const done = ended();
      if (done) return done;
      if (++silent >= 60) throw e;
      await clock.sleep(1000);
      continue;
    }
    reportDir = v.report_dir;
    if (v.live?.progress) show(v.live.progress);
    if (!v.live && !['queued', 'preparing', 'running'].includes(v.status)) {
      if (process.stderr.isTTY) err('');
      const stopped = v.status === 'not_started' && ac.signal.aborted;
      return { runId: id, status: (v.status === 'not_started' ? (stopped ? 'aborted' : 'failed') : v.status) as RunResult['status'], reportDir: v.report_dir, error: v.error };
    }
    if (!v.live && v.status === 'running') {
      // the store says running but the daemon does not run it: cut off (a daemon that was killed)
      return { runId: id, status: 'failed', reportDir: v.report_dir, error: v.error ?? 'cut off: the daemon no longer runs it' };
    }
    await clock.sleep(1000);
  }
}

async function cmdRunViaDaemon(planPath: string, o: Common & { queue?: boolean }): Promise<number> {
  const client = await daemonFor(o);
  if (!client) throw new GauntletError('GAUNTLET_DAEMON_NOT_RUNNING', [dirname(resolve(o.db)), 'no daemon.json there with a live process that answers; start one (gauntlet daemon), or give --db the database it keeps']);
  // the plan as read here (the daemon takes files from its own folder only), with its path
  const a = await client.call<{ id: string; state: string }>('POST', '/api/runs', { plan_text: readFileSync(planPath, 'utf8'), plan_source: resolve(planPath), queue: o.queue ?? false });
  const result = await followDaemonRun(client, a.id, a.state, o.db);
  for (const l of summaryLines(result)) out(l);
  return runExitCode(result);
}

async function cmdDemo(o: Common & { keep?: boolean }): Promise<number> {
  checkPaths(o);
  const log = logger(o.db, o.verbose ?? false);
  const store = openDb(o.db);
  const ac = interruptible();
  const started = Date.now();
  try {
    const result = await runDemo(
      dockerClient(),
      { store, clock: new RealClock(), log, reportsDir: o.reports, signal: ac.signal, onProgress: progressPrinter(), progressIntervalMs: process.stderr.isTTY ? 1000 : 5000 },
      { keep: o.keep ?? false, onStep: (s) => err(`${process.stderr.isTTY ? '\r\x1b[2K' : ''}demo: ${s}`) },
    );
    for (const l of summaryLines(result)) out(l);
    out(`demo wall time ${formatDuration(Date.now() - started)}`);
    return result.status === 'completed' ? 0 : result.status === 'aborted' ? 130 : 1;
  } finally {
    store.close();
  }
}

interface DrillFlags {
  target: string;
  duration?: string;
  param?: string[];
  rate: string;
  recoveryLimit: string;
  endpoint?: string;
  dryRun?: boolean;
}

async function cmdDrill(kind: string, o: Common & DrillFlags): Promise<number> {
  const rate = Number(o.rate);
  if (!Number.isFinite(rate) || rate <= 0 || rate > 10_000) throw new GauntletError('GAUNTLET_PLAN_INVALID', ['drill', `  --rate: got ${JSON.stringify(o.rate)}; expected a number of requests/s above 0`]);
  const docker = dockerClient();
  const options = {
    kind,
    target: o.target,
    ...(o.duration !== undefined ? { duration: o.duration } : {}),
    params: parseParamPairs(o.param ?? []),
    rate,
    baselineMs: 5000,
    settleMs: 3000,
    recoveryLimit: o.recoveryLimit,
    ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
  };
  await requireDocker(docker);
  if (o.dryRun) {
    const plan = await drillPlan(options, docker);
    for (const l of await dryRunPlan(plan, { docker, log: createLogger({ level: 'warn' }), clock: new RealClock() })) out(l);
    out(`the drill ends by itself once the fault is over and the node has served for ${formatDuration(options.settleMs)}`);
    return 0;
  }
  const client = await daemonFor(o);
  if (client) {
    // a daemon keeps this database: the drill is its to run (never two Gauntlets on one target)
    const a = await client.call<{ id: string; state: string }>('POST', '/api/drills', {
      kind,
      target: o.target,
      ...(o.duration !== undefined ? { duration: o.duration } : {}),
      params: options.params,
      rate,
      recovery_limit: o.recoveryLimit,
      ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
    });
    const result = await followDaemonRun(client, a.id, a.state, o.db);
    const store = openExistingDb(o.db);
    try {
      const verdict = drillVerdict(store, result, await drillPlan(options, docker));
      for (const l of verdict.lines) out(l);
      out(`report: ${join(result.reportDir, 'report.html')} (run ${result.runId}, by the daemon)`);
      return result.status === 'aborted' ? 130 : verdict.recovered ? 0 : 1;
    } finally {
      store.close();
    }
  }
  checkPaths(o);
  const log = logger(o.db, o.verbose ?? false);
  const store = openDb(o.db);
  const ac = interruptible();
  try {
    err(`gauntlet ${VERSION}: drill ${kind} on ${o.target}: ${formatDuration(options.baselineMs)} of baseline load at ${rate} req/s, then the fault`);
    const { result, verdict } = await runDrill(options, {
      store,
      clock: new RealClock(),
      log,
      docker,
      reportsDir: o.reports,
      signal: ac.signal,
      onProgress: progressPrinter(),
      progressIntervalMs: process.stderr.isTTY ? 1000 : 2000,
    });
    if (process.stderr.isTTY) err('');
    for (const l of verdict.lines) out(l);
    out(`report: ${join(result.reportDir, 'report.html')} (run ${result.runId}, listed by gauntlet runs)`);
    return result.status === 'aborted' ? 130 : verdict.recovered ? 0 : 1;
  } finally {
    store.close();
  }
}

/** The runs as a table: one line each, newest first. */
function runsTable(rows: { id: string; plan: string; status: string; startedAt: number | null; length: string }[]): void {
  out(['run id'.padEnd(40), 'plan'.padEnd(16), 'status'.padEnd(10), 'started (UTC)'.padEnd(20), 'length'].join(' '));
  for (const r of rows) out([r.id.padEnd(40), r.plan.padEnd(16), r.status.padEnd(10), (r.startedAt === null ? '' : new Date(r.startedAt).toISOString().slice(0, 19)).padEnd(20), r.length].join(' '));
}

async function cmdRuns(o: Common & { json?: boolean }): Promise<number> {
  // the daemon's list has the runs under way and queued too; --json reads the store's rows, the
  // same shape with or without a daemon
  let client: DaemonClient | null = null;
  if (!o.json) {
    try {
      client = await daemonFor(o);
    } catch (e) {
      err(`(the daemon does not answer: ${errorMessage(e)}; reading the database itself)`);
    }
  }
  if (client) {
    const { runs } = await client.call<{ runs: { id: string; plan: string; status: string; started_at: string | null; ended_at: string | null; live: { state: string } | null }[] }>('GET', '/api/runs?limit=100');
    out(`(from the daemon, pid ${client.info.pid}, ${client.info.address})`);
    runsTable(
      runs.map((r) => ({
        id: r.id,
        plan: r.plan,
        status: r.status,
        startedAt: r.started_at ? Date.parse(r.started_at) : null,
        length: r.started_at && r.ended_at ? formatDuration(Date.parse(r.ended_at) - Date.parse(r.started_at)) : r.live ? `(${r.live.state})` : '(killed?)',
      })),
    );
    return 0;
  }
  const store = openExistingDb(o.db);
  try {
    const runs = store.listRuns(100);
    if (o.json) {
      out(JSON.stringify(runs.map(({ plan_json: _p, ...r }) => r), null, 2));
      return 0;
    }
    if (runs.length === 0) {
      out(`no runs in ${o.db}`);
      return 0;
    }
    runsTable(runs.map((r) => ({ id: r.id, plan: r.plan_name, status: r.status, startedAt: r.started_at, length: r.ended_at ? formatDuration(r.ended_at - r.started_at) : '(running or killed)' })));
    return 0;
  } finally {
    store.close();
  }
}

async function cmdReport(runId: string, o: Common): Promise<number> {
  const store = openExistingDb(o.db);
  checkReportsDir(o.reports);
  try {
    const dir = await writeReports(store, runId, o.reports);
    out(`report: ${join(dir, 'report.html')} (and report.md, report.json, junit.xml)`);
    return 0;
  } finally {
    store.close();
  }
}

function cmdCompare(a: string, b: string, o: Common & { json?: boolean; out?: string }): number {
  const store = openExistingDb(o.db);
  try {
    const c = compareRuns(store, a, b);
    if (o.json) {
      out(JSON.stringify(c, null, 2));
      return 0;
    }
    for (const l of compareText(c)) out(l);
    const file = o.out ?? join(o.reports, `compare-${a}-vs-${b}.html`);
    ensureDir(dirname(resolve(file)), 'comparison folder');
    writeFileSync(file, compareHtml(c));
    out(`comparison: ${file}`);
    return 0;
  } finally {
    store.close();
  }
}

async function cmdRevert(o: Common & { force?: boolean }): Promise<number> {
  const log = logger(o.db, o.verbose ?? false);
  const store = openDb(o.db);
  try {
    const leftovers = store.unrevertedFaults();
    if (leftovers.length === 0) out('no active faults in the ledger');
    const docker = dockerClient();
    const lines = await revertLeftovers(store, { docker, log, clock: new RealClock() }, { force: o.force ?? false });
    for (const l of lines) out(l);
    if (lines.some((l) => l.startsWith('sweep: '))) out('(sweep: things still carrying a gauntlet label, rule comment or qdisc handle)');
    return lines.some((l) => l.includes('FAILED')) ? 1 : 0;
  } finally {
    store.close();
  }
}

async function cmdDoctor(o: { json?: boolean }): Promise<number> {
  const checks = await runDoctor();
  const passed = doctorPassed(checks);
  if (o.json) out(JSON.stringify({ ok: passed, checks }, null, 2));
  else {
    for (const c of checks) out(formatCheck(c));
    out(summaryLine(checks));
  }
  return passed ? 0 : 1;
}

async function cmdDaemon(o: { config?: string; host?: string; port?: string; timeScale?: string }): Promise<number> {
  let config = o.config ? loadDaemonConfig(o.config) : defaultDaemonConfig(process.cwd());
  if (o.host !== undefined || o.port !== undefined) {
    const port = o.port === undefined ? config.listen.port : Number(o.port);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new GauntletError('GAUNTLET_CONFIG_INVALID', ['--port', `  --port: got ${JSON.stringify(o.port)}; expected a port number 0–65535`]);
    config = { ...config, listen: { host: o.host ?? config.listen.host, port } };
  }
  ensureDir(config.data_dir, 'data folder');
  const log = createDaemonLogger({ level: envLogLevel() ?? 'info', file: join(config.data_dir, config.log.file), maxBytes: config.log.max_bytes, keep: config.log.keep });
  const scale = timeScaleOption(o.timeScale, { load: {} });
  // ×N: every run's plan time goes N times faster (compressed soaks, benchmarks); schedules keep the wall clock
  const d = await startDaemon({ config, log, docker: dockerClient(), ...(scale !== 1 ? { clock: new ScaledClock(scale), wall: () => Date.now() } : {}) });
  if (scale !== 1) err(`time-scaled ×${scale}: every run's plan goes ${scale} times faster than real time (simulator nodes started with the same --time-scale)`);
  err(`gauntlet daemon listening on ${d.address} (token: ${d.tokenPath}); ${config.schedules.filter((s) => s.enabled).length} schedule(s)`);
  for (const s of config.schedules) {
    const next = d.scheduler.next(s.name);
    err(`  ${s.name}: ${s.cron} (${s.timezone}) → ${s.plan}${next === null ? ' (disabled)' : `, next ${new Date(next).toISOString()}`}`);
  }
  // SIGTERM or Ctrl-C: the run under way stopped, its faults reverted, its report written; again: at once
  const ac = interruptible();
  await new Promise<void>((resolve) => ac.signal.addEventListener('abort', () => resolve(), { once: true }));
  try {
    await d.close(errorMessage(ac.signal.reason));
    return 0;
  } catch (e) {
    err(`error while stopping: ${errorMessage(e)}`);
    return 1;
  }
}

export function buildCli(): Command {
  const program = new Command('gauntlet')
    .description('Certifies LLM inference fleets: long OpenAI-API load, Docker fault injection, MTBF and recovery reports.')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  const common = (c: Command): Command =>
    c
      .option('--db <path>', 'SQLite database', process.env.GAUNTLET_DB ?? '.gauntlet/gauntlet.db')
      .option('--reports <dir>', 'where reports are written', process.env.GAUNTLET_REPORTS ?? 'reports')
      .option('-v, --verbose', 'log progress details to stderr');

  common(program.command('run').argument('<plan>', 'plan file (YAML)').description('run a plan: load, faults, detection, report'))
    .option('--dry-run', 'print every action the run would take, touching nothing')
    .option('--time-scale <n>', 'run the plan n times faster than real time (simulator nodes started with the same --time-scale; reports say so)')
    .option('--via-daemon', 'send the run to the daemon that keeps --db and follow it (Ctrl-C asks the daemon to stop it)')
    .option('--queue', 'with --via-daemon: wait behind a run under way instead of refusing')
    .action(async (plan: string, o: Common & { dryRun?: boolean; timeScale?: string; viaDaemon?: boolean; queue?: boolean }) => {
      process.exitCode = await cmdRun(plan, o);
    });
  common(
    program
      .command('drill')
      .argument('<kind>', `fault kind: ${faultKinds().join(', ')}`)
      .requiredOption('--target <container>', 'a container name, or the value of its gauntlet.target label')
      .description('inject one fault now into a running container, measure detection and recovery, print a verdict (exit 0 only if the node recovered within the limit)'),
  )
    .option('--duration <d>', 'how long the fault lasts (e.g. 20s); node-kill: the stop mode held this long')
    .option('--param <k=v...>', 'fault parameter (repeatable), e.g. --param share=0.3 --param mode=pressure')
    .option('--rate <n>', 'requests/s of background load during the drill', '2')
    .option('--recovery-limit <d>', 'longer than this to serve again: not recovered', '60s')
    .option('--endpoint <url>', "the node's HTTP endpoint (default: the container's first published port)")
    .option('--dry-run', 'print every action the drill would take, touching nothing')
    .action(async (kind: string, o: Common & DrillFlags) => {
      process.exitCode = await cmdDrill(kind, o);
    });
  common(program.command('demo').description('start two simulated 4-GPU nodes in Docker, run scenarios/demo.yaml against them, report, clean up'))
    .option('--keep', 'keep the demo containers afterwards')
    .action(async (o: Common & { keep?: boolean }) => {
      process.exitCode = await cmdDemo(o);
    });
  common(program.command('runs').description('list runs in the database (through the daemon when one keeps it)')).option('--json', 'as JSON').action(async (o: Common & { json?: boolean }) => {
    process.exitCode = await cmdRuns(o);
  });
  common(program.command('report').argument('<run-id>', 'a run id (see gauntlet runs)').description("rewrite a run's reports (JSON, JUnit, Markdown, HTML) from the database")).action(async (id: string, o: Common) => {
    process.exitCode = await cmdReport(id, o);
  });
  common(
    program
      .command('compare')
      .argument('<run-a>', 'the earlier run (see gauntlet runs)')
      .argument('<run-b>', 'the later run')
      .description('what got better or worse from run A to run B, each with its significance test; also written as HTML')
      .option('--json', 'the comparison as JSON')
      .option('--out <file>', 'where to write the HTML (default: <reports>/compare-<a>-vs-<b>.html)'),
  ).action(async (a: string, b: string, o: Common & { json?: boolean; out?: string }) => {
    process.exitCode = cmdCompare(a, b, o);
  });
  program
    .command('check')
    .argument('<plan>', 'plan file (YAML)')
    .description('validate a plan without running it')
    .action((planPath: string) => {
      const plan = loadPlanFile(planPath);
      out(`${planPath}: plan ${plan.name} is valid (${formatDuration(plan.duration)}, ${plan.targets.length} targets, ${plan.faults.length} fault entries)`);
    });
  common(program.command('revert').description('revert every fault the ledger still holds as active (left by a killed Gauntlet)'))
    .option('--force', 'also revert faults owned by a Gauntlet process that is still running')
    .action(async (o: Common & { force?: boolean }) => {
    process.exitCode = await cmdRevert(o);
  });
  program
    .command('k6-operator')
    .argument('<plan>', 'plan file (YAML)')
    .description("the plan's load as a k6-operator TestRun for Kubernetes: a ConfigMap with the bundled scenario, its config and prompts, and the TestRun with --parallelism runners")
    .option('--parallelism <n>', 'k6 runners (each its execution segment)', '4')
    .option('--name <name>', 'the TestRun name (default: from the plan name)')
    .option('--namespace <ns>', 'Kubernetes namespace', 'default')
    .option('--image <image>', 'the runner image (default: k6-operator\'s grafana/k6)')
    .option('--sse', 'the runner image has the xk6-sse extension: time every stream event (ttft, inter-token gaps)')
    .option('--model <model>', 'the model to ask for where the plan names none')
    .option('--out <file>', 'write the manifest here instead of to stdout')
    .action(async (planPath: string, o: OperatorFlags) => {
      process.exitCode = await cmdK6Operator(planPath, o);
    });
  program
    .command('plan-test')
    .description('how long a certification must run to show an MTBF target (time-terminated and sequential), and what a run of --hours can show')
    .requiredOption('--mtbf <duration>', 'the MTBF to demonstrate (θ0 of the sequential test), e.g. 1000h')
    .option('--confidence <c,...>', 'confidence levels', '0.8,0.9')
    .option('--nodes <n>', 'nodes under test (their hours pool)', '1')
    .option('--hours <duration>', 'a run of this length: what it can show (the longest run Gauntlet plans, by default)', '72h')
    .option('--failures <n>', 'show test lengths allowing 0 … n failures', '2')
    .option('--discrimination <d>', 'sequential test: θ0/θ1, the unacceptable MTBF being target/d', '2')
    .option('--alpha <p>', "sequential test: producer's risk (a fleet at the target rejected)", '0.1')
    .option('--beta <p>', "sequential test: consumer's risk (a fleet at target/d accepted)", '0.1')
    .option('--mil-plan <name>', 'sequential test: a MIL-HDBK-781 PRST plan (I-D … VIII-D) instead of --discrimination/--alpha/--beta')
    .option('--json', 'as JSON')
    .action((o: PlanTestFlags) => {
      const r = runPlanTest(o);
      out(o.json ? JSON.stringify(r.json, null, 2) : r.text.join('\n'));
    });
  program
    .command('doctor')
    .description('check what this host lets Gauntlet do (Docker, cgroups, netem, iptables, namespaces, k6) and how to fix what is missing')
    .option('--json', 'as JSON')
    .action(async (o: { json?: boolean }) => {
      process.exitCode = await cmdDoctor(o);
    });
  program
    .command('image')
    .description('build the simulator image (gauntlet-sim) if it is missing or stale')
    .action(async () => {
      const docker = dockerClient();
      await requireDocker(docker);
      out(await ensureSimImage(docker, createLogger({ level: 'info' })));
    });
  program
    .command('daemon')
    .description('run the daemon: schedules from --config, runs and drills over an authenticated HTTP API (127.0.0.1:7878 by default)')
    .option('--config <file>', 'daemon config (YAML): listen, data_dir, reports_dir, schedules; without it, no schedules')
    .option('--host <address>', 'listen address (overrides the config)')
    .option('--port <n>', 'listen port (overrides the config)')
    .option('--time-scale <n>', 'run every plan n times faster than real time (compressed soaks against simulators started with the same --time-scale)')
    .action(async (o: { config?: string; host?: string; port?: string; timeScale?: string }) => {
      process.exitCode = await cmdDaemon(o);
    });
  return program;
}


export async function main(argv: string[]): Promise<number> {
  try {
    envLogLevel(); // a bad GAUNTLET_LOG_LEVEL is refused by every command, before anything starts
    dockerTimeoutMs();
    await buildCli().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof GauntletError) {
      err(`error ${e.code}: ${e.message}`);
      return e.status >= 400 && e.status < 500 ? 2 : 1;
    }
    err(`error: ${errorMessage(e)}`);
    if (process.env.GAUNTLET_DEBUG) err((e as Error).stack ?? '');
    return 1;
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is written and reverted by now; a socket some library left open must not keep a
// finished command alive for minutes. (unref: a clean exit does not wait for this.)
setTimeout(() => {
  err('gauntlet: exiting with a handle still open (a bug worth reporting; nothing was lost)');
  process.exit(code);
}, 5000).unref();
