// A target unreachable for hours is recorded, not fatal: on the virtual clock, the network to
// node-a is cut (packets dropped: nothing answers, every request and probe waits for its own
// deadline) for three hours of an eight-hour run while its container keeps running, and node-b
// is crashed by the plan at 6 h. The run must go on to its planned end and complete; node-a's
// outage is one episode from the cut to when it answers again, measured to the probes'
// precision; its probes keep going (and failing) the whole time; node-b's crash is injected,
// detected and recovered as if nothing else had happened; availability says what was lost.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { buildReport } from '../../src/report/build.js';
import { runPlan } from '../../src/run/runner.js';
import { openStore } from '../../src/store/store.js';
import { VirtualClock } from '../../src/util/clock.js';
import { seededRandom } from '../../src/util/random.js';
import { tempDir } from '../helpers/tmp.js';
import { driveVirtual, VirtualCluster } from '../helpers/virtual-cluster.js';

const HOUR = 3_600_000;
const dir = tempDir();

it('a node unreachable for 3 h of an 8 h run: one episode for the outage, the run goes on, its other fault runs, and it completes', async () => {
  const plan = parsePlanText(`
name: unreachable-for-hours
duration: 8h
seed: 7
targets:
  - { name: node-a, label: node-a }
  - { name: node-b, label: node-b }
load: { rate: 0.2, arrival: poisson, api: chat, prompt_tokens: 64, max_tokens: 16, stream: true, timeout: 60s }
faults:
  - { kind: node-kill, target: node-b, at: 6h }
probes: { interval: 10s, timeout: 2s, failures: 2, fast_interval: 1s }
recovery_limit: 5m
ready_timeout: 1m
`);
  const start = Date.UTC(2026, 11, 1);
  const clock = new VirtualClock(start);
  const cluster = new VirtualCluster(clock);
  cluster.add({ name: 'virtual-a', label: 'node-a', port: 18_011 });
  cluster.add({ name: 'virtual-b', label: 'node-b', port: 18_012 });
  const store = openStore(join(dir, 'unreachable.db'));
  let cutAt = 0;
  let mendedAt = 0;
  const run = runPlan(plan, null, {
    store,
    clock,
    log: silentLogger,
    ...cluster.stands,
    reportsDir: join(dir, 'reports'),
    signal: new AbortController().signal,
    random: seededRandom(plan.seed),
  });
  // the cut and the mend, in plan time from the load's start (the run's row says when that was)
  let scheduled = false;
  const result = await driveVirtual(clock, run, () => {
    if (scheduled) return;
    const loadStart = store.listRuns(1)[0]?.load_started_at;
    if (loadStart === null || loadStart === undefined) return;
    scheduled = true;
    clock.after(loadStart + HOUR - clock.now(), () => {
      cutAt = clock.now();
      cluster.partition('virtual-a', 'blackhole');
    });
    clock.after(loadStart + 4 * HOUR - clock.now(), () => {
      mendedAt = clock.now();
      cluster.partition('virtual-a', null);
    });
  });
  expect(result.status, result.error ?? '').toBe('completed');
  expect(cutAt).toBeGreaterThan(0);
  expect(mendedAt).toBeGreaterThan(0);
  const { report } = buildReport(store, result.runId);
  const a = report.episodes.filter((e) => e.node === 'node-a');
  const b = report.episodes.filter((e) => e.node === 'node-b');
  const episodes = store.episodes(result.runId);
  const lines = [
    `cut at ${cutAt - start} ms, mended at ${mendedAt - start} ms`,
    `episodes ${episodes.map((e) => `${e.node} ${e.cause}/${e.status} ${e.started_at - start}..${e.serving_again_at === null ? '-' : e.serving_again_at - start}: ${e.first_evidence}`).join('; ')}`,
    `availability ${report.availability.value}`,
  ].join(' | ');
  process.stderr.write(`unreachable: ${lines}\n`);
  // the load lasted the plan
  const loadMs = Date.parse(report.run.load_ended_at as string) - Date.parse(report.run.load_started_at as string);
  expect(loadMs, lines).toBeGreaterThanOrEqual(plan.duration - 1);
  // node-a: one episode, opened within a probe interval and the failures it takes of the cut,
  // serving again within a fast interval (plus a probe's own time) of the mend
  expect(a, lines).toHaveLength(1);
  const ea = episodes.find((e) => e.node === 'node-a') as (typeof episodes)[number];
  expect(ea.started_at - cutAt, lines).toBeGreaterThanOrEqual(-plan.probes.interval);
  expect(ea.detected_at - cutAt, lines).toBeLessThanOrEqual(plan.probes.interval * plan.probes.failures + plan.probes.timeout * 2);
  expect(ea.serving_again_at, lines).not.toBeNull();
  expect((ea.serving_again_at as number) - mendedAt, lines).toBeGreaterThanOrEqual(0);
  expect((ea.serving_again_at as number) - mendedAt, lines).toBeLessThanOrEqual(plan.probes.fast_interval + 1000);
  // a node that does not answer for 3 h did not recover within the recovery limit: counted so
  expect(ea.status, lines).toBe('recovery_failed');
  // its probes went on the whole time, every one of them failing
  const during = store.db.prepare('SELECT COUNT(*) AS n, SUM(ok) AS ok FROM probes WHERE run_id = ? AND node = ? AND sent_at >= ? AND sent_at + latency_ms <= ?').get(result.runId, 'node-a', cutAt, mendedAt) as { n: number; ok: number };
  expect(during.n, lines).toBeGreaterThan((3 * HOUR) / plan.probes.interval);
  expect(during.ok, lines).toBe(0);
  // node-b: its crash at 6 h ran and recovered
  expect(report.faults.map((f) => `${f.kind}:${f.state}`), lines).toEqual(['node-kill:reverted']);
  expect(b, lines).toHaveLength(1);
  expect(b[0]?.status, lines).toBe('recovered');
  // availability: node-a lost 3 of 8 hours, node-b a few seconds (two nodes, time-weighted)
  expect(report.availability.value, lines).toBeGreaterThan(1 - 3 / 16 - 0.005);
  expect(report.availability.value, lines).toBeLessThan(1 - 3 / 16 + 0.005);
  store.close();
}, 300_000);
