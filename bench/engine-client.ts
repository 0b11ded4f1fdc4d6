// One run of one load engine (builtin or k6) at one rate against the simulator, in its own
// process (bench/engines.ts pins it to one core; a k6 child inherits the pinning). Prints one
// JSON line: what was planned, sent, missed and interrupted; queue delay, ttft and ITL; and the
// CPU and peak RSS of the engine (for k6: k6 itself plus the Gauntlet process reading its
// output), with the simulator's CPU over the same span, so a result the simulator limited shows.
//
// CPU is measured over the load's steady state (from the warm-up's end to the schedule's end),
// read from /proc at those two moments, so k6's start-up (VU init) is not counted as load.
import { readFileSync } from 'node:fs';
import { BuiltinEngine } from '../src/load/builtin.js';
import { K6Engine } from '../src/load/k6/engine.js';
import { ParallelBuiltinEngine } from '../src/load/parallel.js';
import type { LoadEngine, RequestRecord } from '../src/load/types.js';
import { newHistogram, recordMs } from '../src/analysis/histogram.js';
import { silentLogger } from '../src/log.js';
import { RealClock } from '../src/util/clock.js';
import { processCpuSeconds } from '../src/load/generator.js';
import { benchWorkload } from './workload.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i] as string, process.argv[i + 1] as string);
const engineName = args.get('--engine') ?? 'builtin';
const endpoint = args.get('--url') ?? 'http://127.0.0.1:18932';
const rate = Number(args.get('--rate') ?? 100);
const seconds = Number(args.get('--seconds') ?? 10);
const warmupS = Number(args.get('--warmup') ?? 2);
const simPid = args.has('--sim-pid') ? Number(args.get('--sim-pid')) : null;
const tokens = Number(args.get('--tokens') ?? 8);
const parallelism = Number(args.get('--parallelism') ?? 1);

/** A process's peak resident set (VmHWM), MB; null once it is gone. */
function peakRssMb(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

const workload = benchWorkload({ endpoint, rate, seconds, stream: true, model: 'sim-llama', promptTokens: 64, maxTokens: tokens });

const clock = new RealClock();
const engine: LoadEngine =
  engineName === 'k6'
    ? await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger, instances: parallelism })
    : parallelism > 1
      ? new ParallelBuiltinEngine(clock, parallelism)
      : new BuiltinEngine(clock);
/** The k6 processes (one per execution segment). Worker threads are this process: its CPU and RSS. */
const k6Pids = (): number[] => (engine instanceof K6Engine ? engine.processes().map((x) => x.pid) : []);

const qd = newHistogram();
const ttft = newHistogram();
const itl = newHistogram();
let planned = 0;
let missed = 0;
let sent = 0;
let ok = 0;
let cancelled = 0;
const k6PeakMb = new Map<number, number>();
let startedAt: number | null = null;
let measureFrom = Number.POSITIVE_INFINITY;
const marks: { at: number; self: number; k6: Map<number, number>; sim: number | null }[] = [];
const mark = (): void => {
  const u = process.cpuUsage();
  const k6 = new Map<number, number>();
  for (const pid of k6Pids()) {
    const c = processCpuSeconds(pid);
    if (c !== null) k6.set(pid, c);
  }
  marks.push({ at: clock.now(), self: (u.user + u.system) / 1e6, k6, sim: simPid !== null ? processCpuSeconds(simPid) : null });
};
const timers: NodeJS.Timeout[] = [];
const sampler = setInterval(() => {
  for (const pid of k6Pids()) k6PeakMb.set(pid, Math.max(k6PeakMb.get(pid) ?? 0, peakRssMb(pid) ?? 0));
}, 250);

const launchedAt = clock.now();
await engine.run(workload, new AbortController().signal, {
  started: (at) => {
    startedAt = at;
    measureFrom = at + warmupS * 1000;
    // The steady state: from the warm-up's end to just before the schedule's end.
    timers.push(setTimeout(mark, Math.max(0, measureFrom - clock.now())));
    timers.push(setTimeout(mark, Math.max(0, at + seconds * 1000 - 100 - clock.now())));
  },
  planned: (_n, _at, c) => (planned += c),
  scheduleMiss: (_n, _at, c) => (missed += c),
  sample: (_n, metric, at, ms) => {
    if (at < measureFrom) return;
    if (metric === 'ttft') recordMs(ttft, ms);
    else if (metric === 'itl') recordMs(itl, ms);
  },
  record: (r: RequestRecord) => {
    if (r.outcome === 'cancelled') return void cancelled++;
    if (!r.final) return;
    sent++;
    if (r.outcome === 'ok') ok++;
    if (r.scheduledAt < measureFrom) return;
    if (r.queueDelayMs !== null) recordMs(qd, Math.max(0.001, r.queueDelayMs));
    if (r.outcome !== 'ok') return;
    if (r.ttftMs !== null) recordMs(ttft, r.ttftMs);
    for (const g of r.gaps) recordMs(itl, g);
  },
});
clearInterval(sampler);
for (const t of timers) clearTimeout(t);

const p = (h: ReturnType<typeof newHistogram>, q: number): number | null => (h.totalCount ? Math.round(h.getValueAtPercentile(q)) / 1000 : null);
const [a, b] = marks;
const span = a && b ? (b.at - a.at) / 1000 : null;
const cores = (x: number | null | undefined, y: number | null | undefined): number | null => (span && x != null && y != null ? (y - x) / span : null);
const selfCores = cores(a?.self, b?.self);
// every k6 process seen at both marks
const k6Cores = engineName === 'k6' && a && b ? [...a.k6].reduce((sum, [pid, c]) => sum + (b.k6.has(pid) ? (cores(c, b.k6.get(pid)) ?? 0) : 0), 0) : null;
const selfPeakMb = process.resourceUsage().maxRSS / 1024;
const engineCores = selfCores !== null ? selfCores + (k6Cores ?? 0) : null;
const k6PeakTotalMb = [...k6PeakMb.values()].reduce((x, y) => x + y, 0);
const engineRssMb = selfPeakMb + k6PeakTotalMb;
process.stdout.write(
  `${JSON.stringify({
    engine: engineName,
    parallelism,
    rate,
    seconds,
    warmup_s: warmupS,
    start_lag_ms: startedAt !== null ? Math.round(startedAt - launchedAt) : null,
    planned,
    sent,
    ok,
    failed: sent - ok,
    missed,
    cancelled,
    interrupted: planned - sent - missed - cancelled,
    queue_delay_p50_ms: p(qd, 50),
    queue_delay_p99_ms: p(qd, 99),
    ttft_p50_ms: p(ttft, 50),
    ttft_p99_ms: p(ttft, 99),
    itl_p50_ms: p(itl, 50),
    itl_p99_ms: p(itl, 99),
    measured_s: span,
    cpu_cores: engineCores,
    cpu_cores_gauntlet: selfCores,
    cpu_cores_k6: k6Cores,
    sim_cpu_cores: cores(a?.sim, b?.sim),
    rss_peak_mb: engineRssMb,
    rss_peak_gauntlet_mb: selfPeakMb,
    rss_peak_k6_mb: engineName === 'k6' ? k6PeakTotalMb : null,
  })}\n`,
);
process.exit(0);
