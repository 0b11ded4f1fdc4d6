// The CLI without Docker: plan checks, run listing, report rewriting, clear errors.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useStandInServer } from '../helpers/servers.js';
import { reportSchemaErrors } from '../helpers/report-schema.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
const db = join(dir, 'g.db');
const reports = join(dir, 'reports');
const fixture = (n: string): string => new URL(`../fixtures/plans/${n}`, import.meta.url).pathname;

describe('gauntlet check', () => {
  it('accepts a good plan', async () => {
    const r = await runCli(['check', 'scenarios/demo.yaml']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('plan demo is valid (2m50s, 2 targets, 10 fault entries)');
  });

  it('refuses a bad plan with exit code 2, naming line, field, value and expectation', async () => {
    const r = await runCli(['check', fixture('fault-target-missing.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error GAUNTLET_PLAN_INVALID');
    expect(r.stderr).toContain('fault-target-missing.yaml:10: faults[0].target: got "node-c"');
  });

  it('refuses a GAUNTLET_LOG_LEVEL it does not know, naming the levels it does', async () => {
    const r = await runCli(['check', 'scenarios/demo.yaml'], { GAUNTLET_LOG_LEVEL: 'bogus' });
    expect([r.code, r.stderr.trim()]).toEqual([2, 'error GAUNTLET_ENV_INVALID: environment variable GAUNTLET_LOG_LEVEL: got "bogus"; expected one of fatal, error, warn, info, debug, trace, silent']);
  });

  it('k6-operator: the plan as a ConfigMap and a TestRun of N runners; targets the cluster cannot reach are refused', async () => {
    const plan = join(dir, 'operator.yaml');
    writeFileSync(plan, 'name: Nightly_Soak\nduration: 6h\ntargets:\n  - { name: a, endpoint: "http://vllm-a.inference.svc:8000" }\n  - { name: b, endpoint: "http://vllm-b.inference.svc:8000" }\nload: { engine: k6, rate: 40, model: llama }\n');
    const manifest = join(dir, 'operator-out.yaml');
    const r = await runCli(['k6-operator', plan, '--parallelism', '3', '--namespace', 'load', '--out', manifest]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('ConfigMap nightly-soak-scenario');
    expect(r.stderr).toContain('kubectl logs job/nightly-soak-<1…3> -n load');
    const text = readFileSync(manifest, 'utf8');
    expect(text).toContain('kind: TestRun');
    expect(text).toContain('parallelism: 3');
    expect(text).toContain('GAUNTLET_CONFIG=/test/config.json');
    const container = join(dir, 'operator-container.yaml');
    writeFileSync(container, 'name: c\nduration: 1h\ntargets: [{ name: a, container: gpu-a }]\nload: { engine: k6, rate: 4, model: llama }\n');
    const refused = await runCli(['k6-operator', container]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('targets a: give each an endpoint the cluster can reach');
    const badFlag = await runCli(['k6-operator', plan, '--parallelism', 'many']);
    expect([badFlag.code, badFlag.stderr.trim()]).toEqual([2, 'error GAUNTLET_CLI_FLAG: --parallelism: got "many"; expected a whole number of runners from 1 to 1000']);
  });

  it('plan-test: the node-hours to show 1000 h at 90 % on 8 nodes, what 72 h shows, the sequential plan; JSON; a bad flag named', async () => {
    const r = await runCli(['plan-test', '--mtbf', '1000h', '--confidence', '0.9', '--nodes', '8', '--hours', '72h', '--mil-plan', 'III-D']);
    expect(r.code).toBe(0);
    // 2.303·1000 node-hours with no failure: 288 h on 8 nodes; 72 h × 8 with none shows ≥ 576/2.303 = 250 h
    expect(r.stdout).toMatch(/^  0 +2303 +288 h \(12\.0 days\)$/m);
    expect(r.stdout).toContain('0 failures: MTBF ≥ 250 h');
    expect(r.stdout).toContain('not 1000 h, even with no failure');
    expect(r.stdout).toMatch(/MIL-HDBK-781 PRST plan III-D/);
    expect(r.stdout).toMatch(/true risks of the truncated test: α′ = \d+\.\d %, β′ = \d+\.\d %/);
    const j = await runCli(['plan-test', '--mtbf', '1000h', '--nodes', '8', '--json']);
    const parsed = JSON.parse(j.stdout) as { time_terminated: { confidence: number; byFailures: { nodeHours: number }[]; run?: { hours: number } }[]; sequential: { trueRisks: { alpha: number; beta: number } } };
    expect(parsed.time_terminated.map((a) => a.confidence)).toEqual([0.8, 0.9]);
    // without --hours: what the longest run Gauntlet plans (72 h) shows
    expect(parsed.time_terminated.map((a) => a.run?.hours)).toEqual([72, 72]);
    expect(parsed.time_terminated[0]?.byFailures[0]?.nodeHours).toBeCloseTo(1609.4, 1);
    expect(parsed.sequential.trueRisks.beta).toBeGreaterThan(0.1);
    const bad = await runCli(['plan-test', '--mtbf', '1000h', '--alpha', '0.7']);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, 'error GAUNTLET_CLI_FLAG: --alpha: got "0.7"; expected the producer\'s risk, between 0 and 0.5']);
  });

  it('refuses an unknown command or option with exit code 2', async () => {
    expect((await runCli(['explode'])).code).toBe(2);
    expect((await runCli(['runs', '--colour'])).code).toBe(2);
  });
});

describe('gauntlet run against a bare endpoint (no Docker), runs, report', () => {
  let server: Server;
  let endpoint: string;

  beforeAll(async () => {
    // A tiny stand-in server: healthy, lists a model, answers streamed chat with the real llama.cpp bytes.
    const body = readFileSync(new URL('../fixtures/real/sse/llamacpp-chat-stream.txt', import.meta.url));
    server = createServer((req, res) => {
      req.resume();
      if (req.url === '/health') return void res.end('{"status":"ok"}');
      if (req.url === '/v1/models') return void res.end('{"data":[{"id":"tiny-llama"}]}');
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      setTimeout(() => res.end(body), 20);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('runs a short plan, lists it, and rewrites its report from the database', async () => {
    const plan = join(dir, 'bare.yaml');
    // a 2 s run cannot show an MTBF, one late probe on a busy machine is 20 % of its probe time,
    // and a starved CI machine's latency is its own: those gates are off here (the next test
    // keeps the MTBF gate)
    writeFileSync(plan, `name: bare\nduration: 2s\ntargets: [{ name: ext, endpoint: "${endpoint}" }]\nload: { rate: 20, arrival: constant }\nprobes: { interval: 500ms }\ngates: { mtbf_lower_bound: false, availability: false, ttft: false, tpot: false }\n`);
    const run = await runCli(['run', plan, '--db', db, '--reports', reports]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/VERDICT PASS: \d+ gates pass, 0 conditional, 0 fail/);
    const id = /^run (\S+): completed/m.exec(run.stdout)?.[1];
    expect(id).toBeDefined();
    const report = JSON.parse(readFileSync(join(reports, id as string, 'report.json'), 'utf8'));
    expect(report.run).toMatchObject({ id, plan: 'bare', status: 'completed', time_scale: 1 });
    expect(reportSchemaErrors(report)).toEqual([]);
    expect(report.requests.total).toBeGreaterThanOrEqual(38);
    expect(report.requests.error_rate).toBe(0);
    expect(report.latency.ttft_p50_ms).toBeGreaterThanOrEqual(19);
    expect(report.failures).toEqual({ spontaneous: 0, injected: 0, orchestrator: 0, recovery_failed: 0, counted_for_mtbf: 0 });
    expect(report.mtbf.point_hours).toBeNull();
    expect(report.mtbf.lower_bound_hours).toBeGreaterThan(0);

    const runs = await runCli(['runs', '--db', db]);
    expect(runs.stdout).toMatch(new RegExp(`${id}\\s+bare\\s+completed`));
    const json = JSON.parse((await runCli(['runs', '--db', db, '--json'])).stdout);
    expect(json[0]).toMatchObject({ id, status: 'completed' });

    const rewritten = await runCli(['report', id as string, '--db', db, '--reports', join(dir, 'again')]);
    expect(rewritten.code).toBe(0);
    const again = JSON.parse(readFileSync(join(dir, 'again', id as string, 'report.json'), 'utf8'));
    expect(again).toEqual(report);
  }, 30_000);

  it('a failed release gate fails the run: exit 4, the gate and its reason printed, the verdict in every report', async () => {
    // default gates: 2 s of load cannot show an MTBF lower bound of 100 h (the fail line)
    const plan = join(dir, 'gated.yaml');
    writeFileSync(plan, `name: gated\nduration: 2s\ntargets: [{ name: ext, endpoint: "${endpoint}" }]\nload: { rate: 10, arrival: constant }\nprobes: { interval: 500ms }\n`);
    const run = await runCli(['run', plan, '--db', db, '--reports', reports]);
    expect(run.code, run.stderr).toBe(4);
    expect(run.stdout).toMatch(/VERDICT FAIL: \d+ gates pass, \d+ conditional, [1-9]\d* fail/);
    expect(run.stdout).toMatch(/FAIL MTBF lower bound \(80 %\): 0\.\d+ h at 80 % confidence against 1000 h: under the fail line 100 h/);
    const id = /^run (\S+): completed/m.exec(run.stdout)?.[1] as string;
    const report = JSON.parse(readFileSync(join(reports, id, 'report.json'), 'utf8'));
    expect(report).toMatchObject({ schema_version: 1, verdict: 'fail', verdict_fails_run: true });
    expect(report.gates.find((g: { id: string }) => g.id === 'error_rate')).toMatchObject({ verdict: 'pass', value: 0 });
    expect(report.requests.goodput).toMatchObject({ slo_ttft_ms: 150, slo_tpot_ms: 50, total: report.requests.total });
    const md = readFileSync(join(reports, id, 'report.md'), 'utf8');
    expect(md).toMatch(/## Verdict: ❌ fail/);
  }, 30_000);

  it('compare: the two runs above side by side, each change with its test, gates then and now; JSON; HTML; an unknown run named', async () => {
    const ids = (JSON.parse((await runCli(['runs', '--db', db, '--json'])).stdout) as { id: string; plan_name: string }[]).filter((r) => r.plan_name === 'bare' || r.plan_name === 'gated');
    const a = ids.find((r) => r.plan_name === 'bare')?.id as string;
    const b = ids.find((r) => r.plan_name === 'gated')?.id as string;
    const r = await runCli(['compare', a, b, '--db', db, '--reports', reports]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/different plans/);
    expect(r.stdout).toMatch(/^error rate\s+0\.000 %\s+0\.000 %\s+.*no significant change — two-proportion z-test: 0\/\d+ vs 0\/\d+, p = 1/m);
    expect(r.stdout).toMatch(/^ttft p50\s+\d+\.\d ms\s+\d+\.\d ms/m);
    expect(r.stdout).toMatch(/^failures per node-hour .* no failure in either run/m);
    // the MTBF gate was off in A and failed in B
    expect(r.stdout).toMatch(/gates that changed: .*MTBF lower bound \(80 %\) — → fail/);
    const html = readFileSync(join(reports, `compare-${a}-vs-${b}.html`), 'utf8');
    expect(html).toMatch(/<h1>Run against run<\/h1>/);
    const json = JSON.parse((await runCli(['compare', a, b, '--db', db, '--json'])).stdout);
    expect(json.a.id).toBe(a);
    expect(json.comparisons.map((c: { measure: string }) => c.measure)).toEqual(expect.arrayContaining(['failures per node-hour (MTBF counts)', 'error rate', 'ttft p50', 'ttft p99', 'e2e p99']));
    const bad = await runCli(['compare', a, 'nope', '--db', db]);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, `error GAUNTLET_RUN_NOT_FOUND: no run with id nope in ${db}`]);
  }, 30_000);

  it('a time-scaled run: plan time N times faster against a simulator scaled the same way, and the report says so', async () => {
    const { startSimProcess } = await import('../helpers/sim-process.js');
    const sim = await startSimProcess(['--time-scale', '20', '--ttft-ms', '200', '--itl-ms', '40', '--load-ms', '0']);
    try {
      const plan = join(dir, 'scaled.yaml');
      writeFileSync(plan, `name: scaled\nduration: 60s\ntargets: [{ name: sim, endpoint: "${sim.endpoint}" }]\nload: { rate: 1, arrival: constant, max_tokens: 4 }\nprobes: { interval: 5s }\ngates: { mtbf_lower_bound: false, availability: false, ttft: false, tpot: false }\n`);
      const started = performance.now();
      const run = await runCli(['run', plan, '--time-scale', '20', '--db', db, '--reports', reports]);
      const realS = (performance.now() - started) / 1000;
      // 0, or 3 when the generator's own jitter, magnified 20 times in plan time, put it behind
      expect([0, 3], run.stderr).toContain(run.code);
      expect(run.stderr).toMatch(/time-scaled ×20: the plan runs in 3(\.0+)?s of real time/);
      const id = /^run (\S+): completed/m.exec(run.stdout)?.[1] as string;
      const report = JSON.parse(readFileSync(join(reports, id, 'report.json'), 'utf8'));
      expect(report.run.time_scale).toBe(20);
      // 60 s of plan time: 60 arrivals, exposure counted in plan time, and a twentieth of it real
      const span = Date.parse(report.run.load_ended_at) - Date.parse(report.run.load_started_at);
      expect(span).toBeGreaterThanOrEqual(59_999); // (report times are whole ms)
      expect(report.requests.accounting.planned).toBe(60);
      expect(report.exposure_real_node_hours).toBeCloseTo(report.exposure_node_hours / 20, 3);
      expect(realS).toBeLessThan(60); // it did not take the plan's minute of real time
      // the scaled simulator's ttft (10 ms real) reads as its unscaled 200 ms in plan time
      expect(report.latency.ttft_p50_ms).toBeGreaterThanOrEqual(190);
      const md = readFileSync(join(reports, id, 'report.md'), 'utf8');
      expect(md).toMatch(/Time-scaled ×20/);
      expect(md).toMatch(/node-hours \(plan time, scaled ×20: /);
    } finally {
      sim.kill();
    }
  }, 60_000);

  it('refuses a time scale it cannot honour, naming why', async () => {
    const plan = join(dir, 'scaled-bad.yaml');
    writeFileSync(plan, `name: bad\nduration: 2s\ntargets: [{ name: ext, endpoint: "http://127.0.0.1:9" }]\nload: { rate: 1 }\n`);
    const zero = await runCli(['run', plan, '--time-scale', '0', '--db', db, '--reports', reports]);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--time-scale: got "0"; expected a number from 1/);
    const k6 = join(dir, 'scaled-k6.yaml');
    writeFileSync(k6, `name: bad\nduration: 2s\ntargets: [{ name: ext, endpoint: "http://127.0.0.1:9" }]\nload: { rate: 1, engine: k6 }\n`);
    const refused = await runCli(['run', k6, '--time-scale', '10', '--db', db, '--reports', reports]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/k6 times its requests in real time/);
  });

  it('says so when a run id does not exist', async () => {
    const r = await runCli(['report', 'no-such-run', '--db', db]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error GAUNTLET_RUN_NOT_FOUND: no run with id no-such-run in ${db}`);
  });

  it('says which target is not ready and why', async () => {
    const plan = join(dir, 'dead.yaml');
    writeFileSync(plan, `name: dead\nduration: 2s\nready_timeout: 1s\ntargets: [{ name: gone, endpoint: "http://127.0.0.1:9" }]\nload: { rate: 1, model: m }\n`);
    const r = await runCli(['run', plan, '--db', db, '--reports', reports]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error GAUNTLET_TARGET_NOT_READY: target gone did not become ready: http:\/\/127\.0\.0\.1:9\/health still answers "connect ECONNREFUSED 127\.0\.0\.1:9" after 1\.00s \(ready_timeout\)/);
  });
});

describe('gauntlet run with engine: k6 (stand-in k6 binary replaying recorded output)', () => {
  const stand = useStandInServer();

  it("the report says which engine measured what, and counts k6's schedule misses", async () => {
    const plan = join(dir, 'k6.yaml');
    writeFileSync(plan, `name: k6-plan\nduration: 5s\ntargets: [{ name: node-a, endpoint: "${stand.endpoint}" }]\nload: { engine: k6, rate: 2, arrival: poisson }\nprobes: { interval: 500ms }\n`);
    const fake = new URL('../fixtures/fake-k6/k6', import.meta.url).pathname;
    const replay = new URL('../fixtures/k6/gauntlet-scenario.out.jsonl', import.meta.url).pathname;
    const run = await runCli(['run', plan, '--db', db, '--reports', reports], { K6_BIN: fake, FAKE_K6_REPLAY: replay, FAKE_K6_PACE_MS: '20' });
    // The recording has 2 dropped arrivals in its ~2 s: the generator was behind (exit 3).
    expect(run.code, run.stderr).toBe(3);
    expect(run.stdout).toMatch(/LOAD GENERATOR SATURATED: /);
    const id = /^run (\S+): completed/m.exec(run.stdout)?.[1] as string;
    const report = JSON.parse(readFileSync(join(reports, id, 'report.json'), 'utf8'));
    // the terminal names the first reason; on a busy machine that can be Gauntlet's own event
    // loop, and the dropped arrivals are among the reasons all the same
    const why = (report.generator.behind_windows as { why: string[] }[]).flatMap((w) => w.why);
    expect(why.some((w) => /2 arrivals not started/.test(w)), JSON.stringify(why)).toBe(true);
    expect(report.run.engine.name).toBe('k6');
    expect(report.run.engine.capabilities).toMatchObject({ ttft: 'time_to_first_byte', itl: false, queueDelay: true });
    expect(report.requests).toMatchObject({ total: 10, ok: 9, schedule_misses: 2, output_tokens: 144 });
    expect(report.requests.outcomes).toEqual({ ok: 9, truncated: 1 });
    expect(report.latency.ttft_p50_ms).toBeGreaterThan(40);
    expect(report.latency.itl_samples).toBe(30);
    // The replayed output is an older scenario's: no request says how late it started.
    expect(report.latency.queue_delay_p50_ms).toBeNull();
    expect(report.latency.ttft_source).toBe('time_to_first_byte');
    const md = readFileSync(join(reports, id, 'report.md'), 'utf8');
    expect(md).toContain('the first byte of the body (approximation: no SSE support)');
    expect(md).toContain('2 arrivals could not be started on time');
  }, 30_000);
});

describe('paths a user mistypes: a clear error, exit 2, nothing created', () => {
  const base = tempDir();
  const aFile = join(base, 'a-file');
  writeFileSync(aFile, 'not a folder\n');

  it('a reports folder the file system refuses (/proc) fails at once, before the run starts', async () => {
    // Node's recursive mkdir spun for minutes on /proc/nope; one mkdir per level fails at once.
    const r = await runCli(['run', 'scenarios/demo.yaml', '--db', join(base, 'g.db'), '--reports', '/proc/nope']);
    expect([r.code, r.stderr.trim()]).toEqual([2, 'error GAUNTLET_PATH_UNUSABLE: reports folder /proc/nope: cannot create /proc/nope: the file system does not let a folder be created there']);
    expect(existsSync(join(base, 'g.db'))).toBe(false);
    const rep = await runCli(['report', 'x', '--db', db, '--reports', join(aFile, 'reports')]);
    expect([rep.code, rep.stderr.trim()]).toEqual([2, `error GAUNTLET_PATH_UNUSABLE: reports folder ${join(aFile, 'reports')}: ${aFile} is a file, not a folder`]);
  });

  it('a database path under a file, or at a folder, is named as such (not EEXIST)', async () => {
    const r = await runCli(['run', 'scenarios/demo.yaml', '--db', join(aFile, 'x.db'), '--reports', join(base, 'r')]);
    expect([r.code, r.stderr.trim()]).toEqual([2, `error GAUNTLET_PATH_UNUSABLE: database folder ${aFile}: is a file, not a folder`]);
    const f = await runCli(['runs', '--db', base]);
    expect([f.code, f.stderr.trim()]).toEqual([2, `error GAUNTLET_PATH_UNUSABLE: database ${base}: is a folder; give the database file, e.g. .gauntlet/gauntlet.db`]);
  });

  it('read-only commands never create a database: a mistyped path, an empty file and a foreign file are refused and left as they were', async () => {
    const typo = join(base, 'typo', 'g.db');
    for (const args of [['runs', '--db', typo], ['report', 'some-run', '--db', typo, '--reports', join(base, 'r2')]]) {
      const r = await runCli(args);
      expect([r.code, r.stderr.trim()]).toEqual([2, `error GAUNTLET_STORE_MISSING: no database at ${typo}: nothing has been recorded there (a mistyped --db or GAUNTLET_DB?); nothing was created`]);
    }
    expect(existsSync(join(base, 'typo'))).toBe(false);
    expect(existsSync(join(base, 'r2'))).toBe(false);
    const empty = join(base, 'empty.db');
    writeFileSync(empty, '');
    const e = await runCli(['runs', '--db', empty]);
    expect([e.code, e.stderr.trim()]).toEqual([2, `error GAUNTLET_STORE_FOREIGN: database ${empty}: the file is empty, not a Gauntlet database; nothing was changed`]);
    expect(statSync(empty).size).toBe(0);
    const text = join(base, 'notes.db');
    writeFileSync(text, 'hello\n');
    expect((await runCli(['runs', '--db', text])).stderr).toContain('not a SQLite database');
    expect(readFileSync(text, 'utf8')).toBe('hello\n');
    expect(readdirSync(base).sort()).toEqual(['a-file', 'empty.db', 'notes.db']);
  });
});
