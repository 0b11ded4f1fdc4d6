// The benchmark suite (npm run bench). Server pinned to core 1, each client run pinned to
// core 0 (taskset), so "per core" means one core. Writes bench/out/<time>.json and prints a
// Markdown summary to paste into bench/RESULTS.md.
//  1. Builtin engine capacity: the highest rate of 64-chunk streams it sustains with
//     queue_delay p99 < 5 ms, stepping the rate up.
//  2. Its measurement error at a light load and at 80 % of that capacity: inter-chunk gaps it
//     reports vs the gaps the server stamped, and first-chunk delivery delay.
//  3. Plain non-streamed requests: the builtin engine's open-loop capacity vs autocannon's
//     closed-loop throughput, side by side, with peak memory.
// k6 against builtin, side by side on the same simulator, is bench/engines.ts (npm run bench:engines).
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../src/util/paths.js';

const run = promisify(execFile);
const root = packageRoot();
const PORT = 18931;
const url = `http://127.0.0.1:${PORT}`;
const seconds = Number(process.env.BENCH_SECONDS ?? 10);

async function client(args: string[]): Promise<Record<string, number | string | boolean | null>> {
  const { stdout } = await run('taskset', ['-c', '0', process.execPath, join(root, 'dist/bench/client.js'), '--url', url, '--seconds', String(seconds), ...args], { maxBuffer: 1 << 20, timeout: 300_000 });
  const r = JSON.parse(stdout.trim().split('\n').at(-1) as string) as Record<string, number | string | boolean | null>;
  process.stderr.write(`${JSON.stringify(r)}\n`);
  return r;
}

/** Steps the rate up until the open-loop schedule slips (queue-delay p99 ≥ 5 ms, failures, or rate not reached). */
async function ladder(rates: number[], stream: boolean): Promise<{ steps: Record<string, unknown>[]; capacity: number }> {
  const steps: Record<string, unknown>[] = [];
  let capacity = 0;
  for (const rate of rates) {
    const r = await client(['--mode', 'builtin', '--rate', String(rate), '--stream', String(stream)]);
    steps.push(r);
    if ((r.queue_delay_p99_ms as number) < 5 && r.failed === 0 && (r.achieved_per_s as number) >= rate * 0.97) capacity = rate;
    else break;
  }
  return { steps, capacity };
}

const server = spawn('taskset', ['-c', '1', process.execPath, join(root, 'dist/bench/stream-server.js'), '--port', String(PORT), '--chunks', '64', '--gap-ms', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise<void>((resolve) => server.stdout.once('data', () => resolve()));

const results: Record<string, unknown> = { machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, seconds };
try {
  // 1. capacity, streamed
  const streamed = await ladder([100, 200, 300, 400, 500, 600, 800, 1000], true);
  results.stream_ladder = streamed.steps;
  results.stream_capacity = streamed.capacity;
  const capacity = streamed.capacity;

  // 2. measurement error
  results.error_light = await client(['--mode', 'builtin', '--rate', '10', '--stream', 'true']);
  results.error_80pct = await client(['--mode', 'builtin', '--rate', String(Math.round(capacity * 0.8)), '--stream', 'true']);

  // 3. non-streamed: builtin vs autocannon
  const plain = await ladder([250, 500, 750, 1000, 1500, 2000, 3000], false);
  results.json_ladder = plain.steps;
  results.json_capacity = plain.capacity;
  results.autocannon = [await client(['--mode', 'autocannon', '--connections', '50']), await client(['--mode', 'autocannon', '--connections', '200'])];
} finally {
  server.kill('SIGTERM');
}

mkdirSync(join(root, 'bench', 'out'), { recursive: true });
const file = join(root, 'bench', 'out', `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(results, null, 2)}\nwritten: ${file}\n`);
