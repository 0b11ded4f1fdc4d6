// Report build for a long run: writes the rows a 72 h × 8-node certification leaves behind
// (windows and hourly rollups through the real aggregator, health probes, canaries, container
// telemetry, the generator's own telemetry, a node-kill every 12 h per node with its episode,
// node states and Docker events), then builds the report in a fresh process and measures its
// wall time and peak RSS there. The database is kept (--db) so the build can be re-measured.
//
//   npm run bench:report [-- --hours 72 --nodes 8 --db /tmp/gauntlet-bench-report.db]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WindowAggregator } from '../src/load/windows.js';
import { parsePlanText } from '../src/plan/load.js';
import { buildReport } from '../src/report/build.js';
import { writeReports } from '../src/report/write.js';
import { openStore } from '../src/store/store.js';
import { seededRandom } from '../src/util/random.js';

const HOUR = 3_600_000;
const { values: args } = parseArgs({
  options: {
    hours: { type: 'string', default: '72' },
    nodes: { type: 'string', default: '8' },
    db: { type: 'string', default: join(tmpdir(), 'gauntlet-bench-report.db') },
    measure: { type: 'boolean', default: false },
    fresh: { type: 'boolean', default: false },
  },
});
const hours = Number(args.hours);
const nodes = Number(args.nodes);
const dbPath = args.db as string;
const RUN = 'bench-report';

function generate(): void {
  rmSync(dbPath, { force: true });
  rmSync(`${dbPath}-wal`, { force: true });
  rmSync(`${dbPath}-shm`, { force: true });
  rmSync(`${dbPath}.reserve`, { force: true });
  const names = Array.from({ length: nodes }, (_, i) => `node-${i}`);
  const planText = `
name: bench-report
duration: ${hours}h
targets: [${names.map((n) => `{ name: ${n}, label: ${n} }`).join(', ')}]
load: { rate: ${nodes * 10}, arrival: poisson, api: chat, prompt_tokens: 512, max_tokens: 128, stream: true, timeout: 60s }
faults: [${names.map((n, i) => `{ kind: node-kill, target: ${n}, every: 12h, start: ${1 + i}h }`).join(', ')}]
probes: { interval: 10s, timeout: 2s, failures: 2, fast_interval: 200ms }
`;
  const plan = parsePlanText(planText);
  const store = openStore(dbPath);
  const t0 = Date.UTC(2026, 11, 1);
  const t1 = t0 + hours * HOUR;
  store.createRun({ id: RUN, plan_name: plan.name, plan_json: JSON.stringify(plan), plan_source: planText, status: 'completed', started_at: t0 - 5000, load_started_at: t0, load_ended_at: t1, ended_at: t1 + 2000, time_scale: 1, seed: 1, error: null, host: 'bench', gauntlet_version: 'bench', engine: null });
  for (const n of names) store.addNode({ run_id: RUN, name: n, endpoint: `http://127.0.0.1:1/${n}`, container_id: `c-${n}`, container_name: n, image: 'gauntlet-sim', restart_count_start: 0, restart_count_end: 0 });
  const rng = seededRandom(7);
  const agg = new WindowAggregator(plan.load.window, t0, (c) => store.addWindow(RUN, c));
  // the episodes: a node-kill every 12 h per node, 8 s to serve again
  const kills: { node: string; at: number }[] = [];
  for (const [i, n] of names.entries()) for (let at = t0 + (1 + i) * HOUR; at < t1; at += 12 * HOUR) kills.push({ node: n, at });
  for (const [k, f] of kills.entries()) {
    const id = `f${k}`;
    store.insertFault({ id, run_id: RUN, kind: 'node-kill', node: f.node, params: '{}', undo: '{}', state: 'reverted', planned_at: f.at, injected_at: f.at, reverted_at: f.at + 3000, detail: null, revert_action: 'start', error: null, owner: 'bench' });
    store.upsertEpisode({ id: `e${k}`, run_id: RUN, node: f.node, status: 'recovered', cause: `injected:${id}`, fault_id: id, started_at: f.at, detected_at: f.at + 150, running_again_at: f.at + 3000, ready_at: f.at + 7000, serving_again_at: f.at + 8000, first_evidence: 'docker die', evidence: '{}', requests_affected: 80 });
    for (const [dt, state] of [[0, 'down'], [3000, 'recovering'], [8000, 'up']] as const) store.addNodeState({ run_id: RUN, node: f.node, at: f.at + dt, detected_at: f.at + dt + 100, state, reason: 'bench' });
    for (const [dt, action] of [[0, 'die'], [2900, 'start']] as const) store.addDockerEvent({ run_id: RUN, node: f.node, container_id: `c-${f.node}`, at: f.at + dt, action, exit_code: action === 'die' ? 137 : null, attributes: '{}' });
  }
  const down = (node: string, t: number): boolean => kills.some((k) => k.node === node && t >= k.at && t < k.at + 8000);
  // 20 requests per window per node (the rows, not the requests, decide the report's cost)
  const perWindow = 20;
  let seq = 0;
  for (let w = t0; w < t1; w += plan.load.window) {
    for (const n of names) {
      for (let i = 0; i < perWindow; i++) {
        const sentAt = w + (i + rng.next()) * (plan.load.window / perWindow);
        const ok = !down(n, sentAt);
        const ttft = 40 + rng.next() * rng.next() * 400;
        const gaps = Array.from({ length: 8 }, () => 8 + rng.next() * 6);
        const e2e = ttft + gaps.reduce((a, b) => a + b, 0);
        agg.record({ node: n, seq: seq++, attempt: 1, final: true, mix: 'default', scheduledAt: sentAt - 0.2, sentAt, respondedAt: ok ? sentAt + 2 : null, firstTokenAt: ok ? sentAt + ttft : null, endAt: sentAt + (ok ? e2e : 5), ttftMs: ok ? ttft : null, e2eMs: ok ? e2e : 5, queueDelayMs: 0.2 + rng.next(), outcome: ok ? 'ok' : 'conn_error', status: ok ? 200 : null, outputTokens: ok ? 9 : null, tokensSource: ok ? 'usage' : null, chunks: ok ? 9 : 0, itlMaxMs: ok ? Math.max(...gaps) : null, error: ok ? null : 'connect ECONNREFUSED', promptTokens: 512, maxTokens: 128, gaps: ok ? gaps : [] });
      }
      agg.planned(n, w, perWindow);
    }
    agg.tick(w + plan.load.window + 1001);
    // probes every 10 s, canaries every 30 s, container telemetry every 5 s
    for (const n of names) {
      for (let p = w; p < w + plan.load.window; p += plan.probes.interval) {
        const ok = !down(n, p);
        store.addProbe({ run_id: RUN, node: n, kind: 'health', sent_at: p, response_at: ok ? p + 1.5 : null, latency_ms: ok ? 1.5 : 2000, ok, status: ok ? 200 : null, error: ok ? null : 'connect ECONNREFUSED' });
        if ((p - t0) % 30_000 === 0) store.addProbe({ run_id: RUN, node: n, kind: 'inference', sent_at: p, response_at: ok ? p + 60 : null, latency_ms: ok ? 60 : 2000, ok, status: ok ? 200 : null, error: null });
      }
      for (let p = w; p < w + plan.load.window; p += 5000) {
        store.addTelemetry({ run_id: RUN, node: n, at: p, metric: 'container_memory_bytes', value: 2e9 + (p - t0) * 0.01 + rng.next() * 1e6 });
        store.addTelemetry({ run_id: RUN, node: n, at: p, metric: 'container_memory_limit_bytes', value: 16e9 });
        store.addTelemetry({ run_id: RUN, node: n, at: p, metric: 'container_cpu_cores', value: 0.5 + rng.next() * 0.2 });
      }
    }
    for (let p = w; p < w + plan.load.window; p += 1000) {
      store.addTelemetry({ run_id: RUN, node: '_gauntlet', at: p, metric: 'loop_lag_p99_ms', value: 1 + rng.next() * 3 });
      store.addTelemetry({ run_id: RUN, node: '_gauntlet', at: p, metric: 'loop_lag_max_ms', value: 2 + rng.next() * 5 });
    }
  }
  agg.flush();
  store.close();
}

async function measure(): Promise<void> {
  const store = openStore(dbPath, { mustExist: true });
  const out = mkdtempSync(join(tmpdir(), 'gauntlet-bench-report-'));
  const startCpu = process.cpuUsage();
  const a = performance.now();
  const built = buildReport(store, RUN);
  const b = performance.now();
  await writeReports(store, RUN, out); // builds it again, and writes every report file (HTML with its charts too)
  const c = performance.now();
  const cpu = process.cpuUsage(startCpu);
  const r = process.resourceUsage();
  process.stdout.write(
    `${JSON.stringify({ build_ms: b - a, build_and_write_ms: c - b, cpu_s: (cpu.user + cpu.system) / 1e6, peak_rss_mb: r.maxRSS / 1024, exposure_node_hours: built.report.exposure_node_hours, requests: built.report.requests.total, episodes: built.report.episodes.length, ttft_p50_ms: built.report.latency.ttft_p50_ms })}\n`,
  );
  rmSync(out, { recursive: true, force: true });
  store.close();
}

if (args.measure) await measure();
else {
  if (args.fresh || !existsSync(dbPath)) {
    const a = performance.now();
    generate();
    process.stderr.write(`report bench: wrote ${hours} h × ${nodes} nodes to ${dbPath} in ${((performance.now() - a) / 1000).toFixed(0)} s\n`);
  }
  const size = statSync(dbPath).size;
  const counter = openStore(dbPath, { mustExist: true });
  const counts = Object.fromEntries(['load_windows', 'latency_windows', 'load_rollups', 'latency_rollups', 'probes', 'telemetry'].map((t) => [t, (counter.db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n]));
  counter.close();
  const self = fileURLToPath(import.meta.url);
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const r = spawnSync(process.execPath, [self, '--measure', '--db', dbPath, '--hours', String(hours), '--nodes', String(nodes)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`report build failed: ${r.stderr}`);
    runs.push(JSON.parse(r.stdout.trim().split('\n').at(-1) as string));
  }
  process.stdout.write(`${JSON.stringify({ hours, nodes, db_mb: size / 1e6, db_mb_per_hour: size / 1e6 / hours, rows: counts, runs }, null, 1)}\n`);
}
