// sequential.stop_early on the virtual clock: a plan whose MTBF target is small enough to be
// shown in hours (θ0 = 2 h, θ1 = 1 h, α = β = 0.1: with no failure Wald's accept line is crossed
// at ln(9)/0.5 = 4.394 pooled node-hours, 2.2 h into a two-node run) stops when the test
// accepts instead of running its 8 h: completed, the decision journalled, the report's
// sequential state the same as the runner's.
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

it('a run whose sequential test accepts stops there, completed, with the decision in the journal and the report', async () => {
  const plan = parsePlanText(`
name: sequential
duration: 8h
seed: 3
targets:
  - { name: node-a, label: node-a }
  - { name: node-b, label: node-b }
load: { rate: 0.2, arrival: poisson, api: chat, prompt_tokens: 32, max_tokens: 8, stream: true, timeout: 60s }
probes: { interval: 10s, timeout: 2s, failures: 2, fast_interval: 1s }
telemetry: { interval: 0s }
mtbf_target: 2h
sequential: { discrimination: 2, alpha: 0.1, beta: 0.1, stop_early: true }
`);
  const clock = new VirtualClock(Date.UTC(2026, 11, 1));
  const cluster = new VirtualCluster(clock);
  cluster.add({ name: 'virtual-a', label: 'node-a', port: 18_031 });
  cluster.add({ name: 'virtual-b', label: 'node-b', port: 18_032 });
  const store = openStore(join(dir, 'seq.db'));
  const result = await driveVirtual(clock, runPlan(plan, null, { store, clock, log: silentLogger, ...cluster.stands, reportsDir: join(dir, 'reports'), signal: new AbortController().signal, random: seededRandom(plan.seed) }), () => {});
  expect(result.status, result.error ?? '').toBe('completed');
  const { report } = buildReport(store, result.runId);
  const acceptAt = Math.log(9) / 0.5; // node-hours
  const spanH = (Date.parse(report.run.load_ended_at as string) - Date.parse(report.run.load_started_at as string)) / HOUR;
  // checked every plan-minute: it stops within a minute (two nodes: 1/30 node-hour) of the line
  expect(report.exposure_node_hours).toBeGreaterThanOrEqual(acceptAt - 1e-3);
  expect(report.exposure_node_hours).toBeLessThan(acceptAt + 2 / 60 + 0.01);
  expect(spanH).toBeLessThan(2.3);
  const decision = report.journal.filter((j) => j.kind === 'sequential_decision');
  expect(decision).toHaveLength(1);
  expect(decision[0]?.message).toMatch(/^the sequential test accepts MTBF θ0 = 2 h after 4\.\d node-hours with 0 failure\(s\) \(at Wald's line\); the run stops early/);
  expect(report.reliability.sequential).toMatchObject({ decision: 'accept', by: 'line', failures: 0, stop_early: true });
  expect(report.reliability.sequential.decided_at_node_hours).toBeCloseTo(acceptAt, 3);
  store.close();
}, 120_000);
