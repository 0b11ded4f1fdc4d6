// k6 on Kubernetes driven by a run (load.k6_operator): Gauntlet applies its k6-operator TestRun
// with kubectl and reads each runner's pod log back into the run. There is no Kubernetes here:
// test/helpers/fake-kubectl.mjs stands in for kubectl and k6-operator, running the real k6 with
// the command k6-operator builds from the TestRun (its segment, the TestRun's arguments, the
// mounted ConfigMap's files, paused, then resumed together) and serving its stdout and stderr as
// the pod log. What this shows: the manifest runs as k6-operator would run it, and the logs —
// JSON mixed with k6's own messages — come back into one load, split exactly, numbered once;
// a stop deletes the TestRun; a kubectl that fails is a clear error. What it cannot show: a real
// cluster's scheduling, image pulls and API server.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateK6, probeK6 } from '../../src/load/k6/binary.js';
import { K6Engine } from '../../src/load/k6/engine.js';
import { K6OperatorEngine } from '../../src/load/k6/operator-engine.js';
import type { RequestRecord } from '../../src/load/types.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { runPlan } from '../../src/run/runner.js';
import { openStore } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { startSimProcess, type SimProcess } from '../helpers/sim-process.js';
import { tempDir } from '../helpers/tmp.js';
import { twoNodeK6Workload } from '../helpers/workload.js';

const k6 = locateK6();
const probe = k6 ? await probeK6(k6) : null;
const realK6 = k6 !== null && probe !== null && probe.version.indexOf('fake') === -1 && !k6.includes('fake-k6');
if (process.env.CI === 'true' && !realK6) throw new Error('k6-operator.test.ts: CI=true but no real k6 (set K6_BIN)');
if (!realK6) process.stderr.write('\n*** SKIPPED k6-operator.test.ts: no real k6 binary (set K6_BIN). ***\n\n');

const FAKE = fileURLToPath(new URL('../helpers/fake-kubectl.mjs', import.meta.url));

describe.runIf(realK6)('k6-operator runners read back into the run (real k6, a stand-in for kubectl and the operator)', () => {
  const dir = tempDir();
  const state = join(dir, 'kube');
  let sim: SimProcess;
  beforeAll(async () => {
    chmodSync(FAKE, 0o755);
    process.env.FAKE_KUBE_DIR = state;
    sim = await startSimProcess(['--gpus', '8', '--load-ms', '0', '--ttft-ms', '30', '--itl-ms', '5']);
  });
  afterAll(() => {
    sim?.kill();
    delete process.env.FAKE_KUBE_DIR;
  });

  const workload = (durationMs: number) => twoNodeK6Workload(sim.endpoint, durationMs);
  const operator = (over: Partial<ConstructorParameters<typeof K6OperatorEngine>[0]> = {}) =>
    new K6OperatorEngine({ script: null, instances: 3, namespace: 'load', context: null, kubectl: FAKE, image: 'example/k6-sse:0.49', sse: probe?.sse === true, log: silentLogger, startTimeoutMs: 30_000, ...over });
  /** k6 processes the stand-in started (their script is in its state folder). */
  const running = (): string[] => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(state) && !l.includes('fake-kubectl'));

  it('three runners send what one k6 sends; every record comes back from the pod logs, numbered once; the TestRun and ConfigMap are deleted', async () => {
    const run = async (engine: { run: K6Engine['run'] }) => {
      const recs: RequestRecord[] = [];
      let planned = 0;
      const late = new Set<string>();
      let started = 0;
      await engine.run(workload(4000), new AbortController().signal, {
        record: (r) => recs.push(r),
        planned: (_n, _a, c) => (planned += c),
        started: () => started++,
        generator: (name, _at, metric) => metric === 'late_ms_max' && late.add(name),
      });
      return { recs, planned, late, started };
    };
    const one = await run(await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger }));
    const engine = operator();
    expect(engine.generators().map((g) => g.host)).toEqual([1, 2, 3].map((i) => `k8s load/job/${engine.testRun}-${i}`));
    const three = await run(engine);
    process.stderr.write(`k6-operator: planned ${one.planned} vs ${three.planned}, records ${one.recs.length} vs ${three.recs.length}; lateness from ${[...three.late].join(', ')}\n`);
    expect(three.planned).toBe(one.planned);
    expect(three.planned).toBe(120);
    expect(three.recs.length).toBe(one.recs.length);
    expect(new Set(three.recs.map((r) => r.seq)).size).toBe(three.recs.length);
    expect(three.recs.filter((r) => r.outcome !== 'ok').map((r) => r.error)).toEqual([]);
    expect(three.recs.every((r) => r.ttftMs !== null && r.ttftMs > 0)).toBe(true);
    expect(three.started).toBe(1);
    expect(three.late).toEqual(new Set(['k6-1', 'k6-2', 'k6-3']));
    // the runners ran as k6-operator runs them: each its own segment (tagged with its instance)
    expect(readdirSync(join(state, 'load', 'jobs')).filter((f) => f.endsWith('.log')).sort()).toEqual([1, 2, 3].map((i) => `${engine.testRun}-${i}.log`));
    // cleaned up: the TestRun and the ConfigMap deleted, nothing running
    expect(existsSync(join(state, 'load', 'testruns', `${engine.testRun}.json`))).toBe(false);
    expect(existsSync(join(state, 'load', 'configmaps', `${engine.testRun}-scenario`))).toBe(false);
    expect(running()).toEqual([]);
  }, 120_000);

  it('a run with load.k6_operator: the runners’ records in its windows, each runner named in the report with where it ran', async () => {
    const store = openStore(join(dir, 'run.db'));
    const plan = parsePlanText(`
name: on-k8s
duration: 5s
targets:
  - { name: a, endpoint: "${sim.endpoint}" }
load:
  engine: k6
  rate: 12
  arrival: constant
  parallelism: 2
  model: sim-llama
  max_tokens: 8
  prompt_tokens: 16
  k6_operator: { namespace: load, kubectl: "${FAKE}", sse: ${probe?.sse === true}, start_timeout: 30s }
probes: { interval: 1s, timeout: 1s }
`);
    const result = await runPlan(plan, null, { store, clock: new RealClock(), log: silentLogger, docker: null, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });
    expect(result.status, result.error ?? '').toBe('completed');
    const requests = (store.db.prepare("SELECT COUNT(*) AS n FROM requests WHERE run_id = ? AND outcome = 'ok'").get(result.runId) as { n: number }).n;
    const windowed = (store.db.prepare('SELECT SUM(ok) AS n FROM load_windows WHERE run_id = ?').get(result.runId) as { n: number }).n;
    const report = JSON.parse(readFileSync(join(dir, 'reports', result.runId, 'report.json'), 'utf8')) as { generator: { generators: { name: string; host: string }[] } };
    process.stderr.write(`k6-operator run: ${requests} ok requests, ${windowed} in the load windows; generators ${JSON.stringify(report.generator.generators)}\n`);
    expect(requests).toBe(60);
    expect(windowed).toBe(60);
    expect(report.generator.generators.map((g) => g.name)).toEqual(['gauntlet', 'k6-1', 'k6-2']);
    for (const g of report.generator.generators.slice(1)) expect(g.host).toMatch(/^k8s load\/job\/gauntlet-[0-9a-f]{8}-[12]$/);
    store.close();
  }, 120_000);

  it('a stop deletes the TestRun: the runners end, the run returns, nothing is left running', async () => {
    const engine = operator({ instances: 2 });
    const ac = new AbortController();
    let records = 0;
    const started = Date.now();
    await engine.run(workload(60_000), ac.signal, {
      record: () => {
        if (++records === 20) ac.abort();
      },
    });
    expect(records).toBeGreaterThanOrEqual(20);
    expect(Date.now() - started).toBeLessThan(45_000);
    expect(running()).toEqual([]);
    expect(existsSync(join(state, 'load', 'testruns', `${engine.testRun}.json`))).toBe(false);
  }, 90_000);

  it('kubectl that cannot apply the TestRun, a runner that never starts, runners never resumed, a runner that fails: clear errors, nothing left running', async () => {
    const missing = operator({ kubectl: join(dir, 'no-such-kubectl') });
    await expect(missing.run(workload(2000), new AbortController().signal, { record: () => undefined })).rejects.toThrow(/\(k6-operator\) the TestRun could not be applied: kubectl apply -f: .*ENOENT/);
    // a runner that never starts (the stand-in's operator stalls, as with an image that cannot be pulled)
    process.env.FAKE_KUBE_STALL = '1';
    try {
      const never = operator({ instances: 1, startTimeoutMs: 2000 });
      await expect(never.run(workload(2000), new AbortController().signal, { record: () => undefined })).rejects.toThrow(/\(k6-operator\) k6-1 \(job gauntlet-[0-9a-f]{8}-1\) did not start within 2 s: error: timed out waiting for the condition/);
      expect(existsSync(join(state, 'load', 'testruns', `${never.testRun}.json`))).toBe(false);
    } finally {
      delete process.env.FAKE_KUBE_STALL;
    }
    // runners started but never resumed (the starter cannot run): silent logs fail the load by start_timeout
    process.env.FAKE_KUBE_NO_STARTER = '1';
    try {
      const silent = operator({ instances: 2, startTimeoutMs: 3000 });
      await expect(silent.run(workload(2000), new AbortController().signal, { record: () => undefined })).rejects.toThrow(/\(k6-operator\) no runner wrote any output within 3 s \(TestRun stage: started\); see kubectl describe testrun gauntlet-[0-9a-f]{8} -n load/);
      expect(running()).toEqual([]);
    } finally {
      delete process.env.FAKE_KUBE_NO_STARTER;
    }
    // a runner whose k6 exits with an error: named, with its last output; the others stopped
    process.env.FAKE_KUBE_BREAK_RUNNER = '2';
    try {
      const broken = operator({ instances: 2 });
      await expect(broken.run(workload(20_000), new AbortController().signal, { record: () => undefined })).rejects.toThrow(/\(k6-operator\) k6-2 \(job gauntlet-[0-9a-f]{8}-2\) failed; its last output:\n[^]*no-such-flag/);
      expect(running()).toEqual([]);
    } finally {
      delete process.env.FAKE_KUBE_BREAK_RUNNER;
    }
  }, 120_000);
});
