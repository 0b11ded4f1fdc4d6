// The 72 h certification plan (scenarios/certify-72h.yaml: two nodes, a crash of each every
// 12 h) run end to end on the virtual clock against in-process stand-ins — a fake Docker engine
// and simulated nodes answering through an undici Dispatcher — so the whole lifecycle of a
// long run (load, probes, faults, detection, recovery, rollups, report) is checked in minutes.
// Its wall time is measured in bench/RESULTS.md, not asserted here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { buildReport } from '../../src/report/build.js';
import { faultSchedule, runPlan } from '../../src/run/runner.js';
import { openStore } from '../../src/store/store.js';
import { VirtualClock } from '../../src/util/clock.js';
import { seededRandom } from '../../src/util/random.js';
import { tempDir } from '../helpers/tmp.js';
import { driveVirtual, VirtualCluster } from '../helpers/virtual-cluster.js';

const HOUR = 3_600_000;
const dir = tempDir();
/**
 * The plan as it is, except its rate: 0.2 requests/s instead of 20 keeps the test to a couple of
 * minutes (its work is then mostly the plan's own: windows, probes, telemetry, faults); the
 * benchmark runs it at 20/s (bench/RESULTS.md). GAUNTLET_VIRTUAL_HOURS and _RATE change them.
 */
const HOURS = Number(process.env.GAUNTLET_VIRTUAL_HOURS ?? 72);
const RATE = process.env.GAUNTLET_VIRTUAL_RATE ?? '0.2';

it(`runs scenarios/certify-72h.yaml for ${HOURS} h of plan time on the virtual clock: exposure, episodes and windows as planned`, async () => {
  let text = readFileSync(new URL('../../scenarios/certify-72h.yaml', import.meta.url), 'utf8');
  if (HOURS !== 72) text = text.replace(/^duration: 72h$/m, `duration: ${HOURS}h`);
  text = text.replace(/^ {2}rate: 20\b/m, `  rate: ${RATE}`);
  const plan = parsePlanText(text);
  const start = Date.UTC(2026, 11, 1);
  const clock = new VirtualClock(start);
  const cluster = new VirtualCluster(clock);
  cluster.add({ name: 'virtual-a', label: 'node-a', port: 18_001 });
  cluster.add({ name: 'virtual-b', label: 'node-b', port: 18_002 });
  const store = openStore(join(dir, 'virtual.db'));
  const wallStart = performance.now();
  const run = runPlan(plan, null, {
    store,
    clock,
    log: process.env.GAUNTLET_VIRTUAL_LOG ? createLogger({ level: 'debug', destination: pino.destination({ fd: 2, sync: true }) }) : silentLogger,
    ...cluster.stands,
    reportsDir: join(dir, 'reports'),
    signal: new AbortController().signal,
    random: seededRandom(plan.seed),
  });
  let shown = performance.now();
  // the run's phase and progress as the store has them (what a restarted daemon would read), hourly
  const seen: { hour: number; phase: string | undefined; faultsDone: number | undefined }[] = [];
  const result = await driveVirtual(clock, run, () => {
    const hour = Math.floor((clock.now() - start) / HOUR);
    if (hour > (seen.at(-1)?.hour ?? -1)) {
      const row = store.listRuns(1)[0];
      seen.push({ hour, phase: row?.phase, faultsDone: row?.faults_done });
    }
    if (process.env.GAUNTLET_VIRTUAL_PROGRESS && performance.now() - shown > 5000) {
      shown = performance.now();
      process.stderr.write(`virtual: ${((clock.now() - start) / HOUR).toFixed(2)} h after ${((shown - wallStart) / 1000).toFixed(0)} s, ${clock.pending} timers\n`);
    }
  });
  const wallS = (performance.now() - wallStart) / 1000;
  expect(result.status, result.error ?? '').toBe('completed');
  const { report } = buildReport(store, result.runId);
  const planned = plan.duration;
  process.stderr.write(`certify-72h virtual: ${HOURS} h of plan time in ${wallS.toFixed(1)} s wall; ${report.requests.total} requests, ${report.episodes.length} episodes, exposure ${report.exposure_node_hours} node-hours, recovery p50 ${report.recovery.p50_ms} ms\n`);
  // the load ran for the plan's duration, and its last requests to their end (at most a timeout)
  const loadMs = Date.parse(report.run.load_ended_at as string) - Date.parse(report.run.load_started_at as string);
  expect(loadMs).toBeGreaterThanOrEqual(planned - 1);
  expect(loadMs).toBeLessThanOrEqual(planned + plan.load.timeout);
  // every planned crash ran, was reverted, and opened one recovered episode
  const kills = faultSchedule(plan).length; // node-a at 6 h, 18 h …, node-b at 12 h, 24 h … (before the end)
  expect(kills).toBe(HOURS === 72 ? 11 : kills);
  expect(report.faults.length).toBe(kills);
  expect(report.faults.every((f) => f.state === 'reverted')).toBe(true);
  expect(report.episodes.length).toBe(kills);
  expect(report.episodes.every((e) => e.status === 'recovered' && e.cause.startsWith('injected:'))).toBe(true);
  expect(report.failures.spontaneous).toBe(0);
  // exposure: both nodes for the whole load, less each episode
  const lost = report.episodes.reduce((a, e) => a + (e.recovery_ms ?? 0), 0) / HOUR;
  expect(report.exposure_node_hours).toBeCloseTo((2 * loadMs) / HOUR - lost, 3);
  // windows: at most one per node every 10 s (one with anything in it), together every request,
  // rolled up per hour of plan time
  const windows = store.db.prepare('SELECT node, COUNT(*) AS n, SUM(attempts) AS attempts FROM load_windows WHERE run_id = ? AND part = 0 GROUP BY node').all(result.runId) as { node: string; n: number; attempts: number }[];
  expect(windows.map((w) => w.node).sort()).toEqual(['node-a', 'node-b']);
  for (const w of windows) expect(w.n).toBeLessThanOrEqual(Math.ceil(planned / plan.load.window) + 1);
  expect(windows.reduce((a, w) => a + w.attempts, 0)).toBe(report.requests.total);
  const rollups = store.db.prepare('SELECT node, COUNT(DISTINCT span_start) AS n FROM load_rollups WHERE run_id = ? GROUP BY node').all(result.runId) as { node: string; n: number }[];
  for (const r of rollups) expect(Math.abs(r.n - HOURS)).toBeLessThanOrEqual(1);
  // every planned arrival accounted for; errors only around the crashes
  expect(report.requests.accounting?.planned).toBe((report.requests.accounting?.sent ?? 0) + (report.requests.accounting?.missed ?? 0) + (report.requests.accounting?.interrupted ?? 0) + (report.requests.accounting?.cancelled ?? 0));
  expect(report.requests.error_rate_outside_injected ?? 0).toBe(0);
  expect(report.availability.value).toBeGreaterThan(0.99);
  // the run's life in the store: steady under load, each fault counted as it ran, done at the end
  const row = store.getRun(result.runId);
  expect(row).toMatchObject({ phase: 'done', faults_done: kills, planned_end_at: (row?.load_started_at as number) + planned });
  expect(row?.owner).toMatch(/\|\d+\|/);
  const at = (h: number) => seen.find((x) => x.hour === h);
  expect(at(1)).toMatchObject({ phase: 'steady', faultsDone: 0 });
  if (HOURS >= 14) {
    expect(at(7)).toMatchObject({ phase: 'steady', faultsDone: 1 }); // node-a's crash at 6 h
    expect(at(13)).toMatchObject({ phase: 'steady', faultsDone: 2 }); // node-b's at 12 h
  }
  store.close();
}, 1_800_000);
