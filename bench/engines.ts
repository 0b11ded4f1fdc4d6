// The load engines side by side in one run on the same simulator (npm run bench:engines):
// builtin and k6 on one core, and each spread over every core (worker threads; k6 execution
// segments, one per core). The simulator runs pinned to core 1; a one-core engine run is pinned
// to core 0, an every-core run to all cores (taskset; k6 children inherit it, and Go sizes
// GOMAXPROCS from it), so "one core" is one core for the whole engine: for k6, k6 itself and the
// Gauntlet process reading its output. On a 2-core machine the every-core runs share core 1 with
// the simulator: its CPU is in every row, so a step it may have limited shows.
//
// Each configuration steps its rate up until it no longer holds it:
//   builtin — queue delay (actual − scheduled send) p99 < 5 ms after the warm-up, nothing failed;
//   k6      — no missed arrivals (dropped_iterations), nothing failed or interrupted.
// A step where the simulator used over 90 % of its core is flagged: past that the server, not
// the engine, may be the limit. Writes bench/out/engines-<time>.json and prints the table.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { simBundlePath } from '../src/docker/sim-image.js';
import { locateK6, probeK6 } from '../src/load/k6/binary.js';
import { packageRoot } from '../src/util/paths.js';

const run = promisify(execFile);
const root = packageRoot();
const PORT = Number(process.env.BENCH_PORT ?? 18932);
const url = `http://127.0.0.1:${PORT}`;
const seconds = Number(process.env.BENCH_SECONDS ?? 12);
const tokens = 8;
const rates = (env: string | undefined, fallback: string): number[] => (env ?? fallback).split(',').map(Number);
/** Generators for the "every core" runs: worker threads or k6 segments, one per core. */
const spread = Number(process.env.BENCH_PARALLEL ?? cpus().length);
const allCores = Array.from({ length: cpus().length }, (_, i) => i).join(',');
/** Each configuration: an engine, how many generators, and the cores it is pinned to. */
const configs: { key: string; engine: 'builtin' | 'k6'; parallelism: number; cpus: string; ladder: number[] }[] = [
  { key: 'builtin', engine: 'builtin', parallelism: 1, cpus: '0', ladder: rates(process.env.BENCH_BUILTIN_RATES, '200,400,600,800,900,1000,1100,1200,1400,1600,2000') },
  { key: `builtin×${spread}`, engine: 'builtin', parallelism: spread, cpus: allCores, ladder: rates(process.env.BENCH_BUILTIN_ALL_RATES, '400,800,1000,1200,1400,1600,1800,2000,2400,2800,3200,4000') },
  { key: 'k6', engine: 'k6', parallelism: 1, cpus: '0', ladder: rates(process.env.BENCH_K6_RATES, '50,100,150,200,250,300,350,400,500,600') },
  { key: `k6×${spread}`, engine: 'k6', parallelism: spread, cpus: allCores, ladder: rates(process.env.BENCH_K6_ALL_RATES, '100,200,300,400,500,600,700,800,1000') },
];

type Result = Record<string, number | string | null>;

async function client(c: (typeof configs)[number], rate: number, simPid: number): Promise<Result> {
  const argv = ['-c', c.cpus, process.execPath, join(root, 'dist/bench/engine-client.js'), '--engine', c.engine, '--parallelism', String(c.parallelism), '--url', url, '--rate', String(rate), '--seconds', String(seconds), '--tokens', String(tokens), '--sim-pid', String(simPid)];
  const { stdout } = await run('taskset', argv, { maxBuffer: 1 << 20, timeout: 300_000, env: process.env });
  const r = { key: c.key, cpus: c.cpus, ...(JSON.parse(stdout.trim().split('\n').at(-1) as string) as Result) };
  process.stderr.write(`${JSON.stringify(r)}\n`);
  return r;
}

function holds(r: Result): boolean {
  const n = (k: string): number => Number(r[k] ?? Number.NaN);
  if (n('failed') !== 0 || n('sent') < 0.97 * Number(r.rate) * seconds) return false;
  if (r.engine === 'builtin') return n('queue_delay_p99_ms') < 5 && n('missed') === 0;
  return n('missed') === 0 && n('interrupted') === 0;
}

const sim = spawn('taskset', ['-c', '1', process.execPath, simBundlePath(), '--port', String(PORT), '--gpus', '1', '--load-ms', '0', '--ttft-ms', '50', '--itl-ms', '10', '--jitter', '0', '--max-batch', '100000'], { stdio: 'ignore' });
const simPid = sim.pid as number; // taskset execs the simulator: the same pid
try {
  let up = false;
  for (let i = 0; i < 200 && !up; i++) {
    up = await request(`${url}/health`).then((r) => (r.body.dump(), r.statusCode === 200), () => false);
    if (!up) await new Promise((r) => setTimeout(r, 50));
  }
  if (!up) throw new Error(`the simulator did not answer ${url}/health within 10 s`);
  const k6 = locateK6();
  const results: Record<string, unknown> = {
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, k6: k6 ? (await probeK6(k6)).version : null },
    seconds,
    workload: `streamed chat, 64 prompt tokens, ${tokens} output tokens; simulator ttft 50 ms, ITL 10 ms, no jitter`,
  };
  const summary: Record<string, { capacity: number; at: Result | null; steps: Result[] }> = {};
  // Whether the numbers still hold: ttft p50 within 5 % and ITL p50 within 10 % of what the
  // builtin engine measured at its lowest rate on the same simulator (the simulator's timings are
  // fixed, so that is the truth the same run can give; builtin runs first).
  let truth: Result | null = null;
  const accurate = (r: Result): boolean =>
    truth !== null &&
    Math.abs(Number(r.ttft_p50_ms) - Number(truth.ttft_p50_ms)) <= 0.05 * Number(truth.ttft_p50_ms) &&
    Math.abs(Number(r.itl_p50_ms) - Number(truth.itl_p50_ms)) <= 0.1 * Number(truth.itl_p50_ms);
  /** The criterion every configuration is held to alike: nothing missed or failed, and ttft and ITL still right. */
  const sound = (r: Result): boolean => Number(r.failed) === 0 && Number(r.missed) === 0 && Number(r.interrupted ?? 0) === 0 && Number(r.sent) >= 0.97 * Number(r.rate) * seconds && r.numbers_hold === 'yes';
  for (const c of configs) {
    if (c.engine === 'k6' && !k6) {
      results[c.key] = 'not measured: no k6 binary (K6_BIN or PATH)';
      continue;
    }
    const steps: Result[] = [];
    let capacity = 0;
    let at: Result | null = null;
    let held = true;
    for (const rate of c.ladder) {
      const r = await client(c, rate, simPid);
      truth ??= r;
      r.holds = holds(r) ? 'yes' : 'no';
      r.numbers_hold = accurate(r) ? 'yes' : 'no';
      r.sim_limited = Number(r.sim_cpu_cores ?? 0) > 0.9 ? 'yes' : 'no';
      steps.push(r);
      held &&= r.holds === 'yes';
      if (held) {
        capacity = rate;
        at = r;
      }
      // on up the ladder while either criterion still holds
      if (!held && !sound(r)) break;
    }
    summary[c.key] = { capacity, at, steps };
  }
  results.engines = summary;

  const rowsFor: { label: string; engine: string; capacity: number; at: Result | null }[] = [];
  for (const [key, s] of Object.entries(summary)) {
    const c = configs.find((x) => x.key === key) as (typeof configs)[number];
    const engine = c.engine;
    const where = `${c.parallelism > 1 ? `${c.parallelism} ${engine === 'k6' ? 'segments' : 'threads'}, ` : ''}cores ${c.cpus}`;
    rowsFor.push({ label: `${key} (${where}; ${engine === 'builtin' ? 'queue delay p99 < 5 ms' : 'no missed arrivals'})`, engine, capacity: s.capacity, at: s.at });
    let best: Result | null = null;
    for (const r of s.steps) {
      if (!sound(r)) break;
      best = r;
    }
    rowsFor.push({ label: `${key} (${where}; nothing missed, ttft and ITL p50 right)`, engine, capacity: best ? Number(best.rate) : 0, at: best });
  }
  const t = truth as Result | null;
  results.truth = t ? { ttft_p50_ms: t.ttft_p50_ms, itl_p50_ms: t.itl_p50_ms, from: `builtin at ${t.rate}/s` } : null;

  // The table: the highest rate held, and what it cost, per 1000 streams/s.
  const fix = (x: unknown, d: number): string => (typeof x === 'number' ? x.toFixed(d) : '—');
  const rows = rowsFor.map(({ label, capacity, at: a }) => {
    const per = (x: unknown): string => (a && typeof x === 'number' && capacity > 0 ? ((x * 1000) / capacity).toFixed(2) : '—');
    return `| ${label} | ${capacity} | ${a ? `${fix(a.queue_delay_p50_ms, 1)} / ${fix(a.queue_delay_p99_ms, 1)}` : '—'} | ${fix(a?.ttft_p50_ms, 1)} | ${fix(a?.itl_p50_ms, 1)} | ${fix(a?.cpu_cores, 2)} | ${per(a?.cpu_cores)} | ${fix(a?.rss_peak_mb, 0)} | ${per(a?.rss_peak_mb)} | ${fix(a?.sim_cpu_cores, 2)} |`;
  });
  const table = [
    `| engine (criterion) | streams/s held | queue delay p50 / p99 ms | ttft p50 ms | ITL p50 ms | CPU (cores) | CPU cores per 1000/s | peak RSS MB | RSS MB per 1000/s | simulator CPU (cores) |`,
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Truth: ${t ? `ttft p50 ${fix(t.ttft_p50_ms, 1)} ms, ITL p50 ${fix(t.itl_p50_ms, 1)} ms (builtin at ${t.rate}/s)` : 'none'}.`,
    '',
    '| engine | rate | sent | missed | queue p99 ms | ttft p50 ms | ITL p50 ms | CPU cores | RSS MB | held | numbers hold |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...Object.entries(summary).flatMap(([engine, s]) =>
      s.steps.map((r) => `| ${engine} | ${r.rate} | ${r.sent} | ${r.missed} | ${fix(r.queue_delay_p99_ms, 1)} | ${fix(r.ttft_p50_ms, 1)} | ${fix(r.itl_p50_ms, 1)} | ${fix(r.cpu_cores, 2)} | ${fix(r.rss_peak_mb, 0)} | ${r.holds} | ${r.numbers_hold} |`),
    ),
  ].join('\n');
  mkdirSync(join(root, 'bench', 'out'), { recursive: true });
  const file = join(root, 'bench', 'out', `engines-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  results.table = table;
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${table}\n\nwritten: ${file}\n`);
} finally {
  sim.kill('SIGKILL');
}
