// Is the load generator keeping up? A generator that falls behind sends late (or not at all)
// and reads responses late, and then the latency it reports is its own, not the server's.
// Signals, per load window:
//   - arrivals it could not start (schedule misses: k6's dropped_iterations, builtin's slot misses);
//   - how late it sent against its schedule (queue delay: builtin, and k6 through Gauntlet's
//     scenario, which times each iteration's start against k6's own arrival schedule);
//   - this process's event-loop lag (it runs the builtin engine and reads k6's output), sampled
//     every second as telemetry of the pseudo-node "_gauntlet", with the k6 process's CPU;
//   - k6 using most of the CPU it may use: its VUs then handle SSE events late and back to back,
//     so ttft reads high and ITL collapses before any arrival starts late (bench/RESULTS.md:
//     pinned to one core, k6 at 250/s used 0.81 of it and read ttft 27 % high, at 300/s 0.92
//     and 110 % high, with queue delay p99 still under 100 ms).
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { GENERATOR_NODE, generatorNode } from '../analysis/generator.js';
import { cpuListCount, statCpuTicks } from '../util/proc.js';

/** One sample of the generator's own telemetry. */
export interface GeneratorSample {
  node: string;
  at: number;
  metric: string;
  value: number;
}

/** CPU time of a process (user + system), seconds, from /proc; null where there is no /proc. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const ticks = statCpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return ticks === null ? null : ticks / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** How many cores a process may run on (its affinity, Cpus_allowed_list); null where there is no /proc. */
export function processAllowedCores(pid: number): number | null {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? cpuListCount(m[1] as string) : null;
  } catch {
    return null;
  }
}

/** Samples this process's event-loop lag, and each child process's CPU (k6), every interval. */
export class GeneratorMonitor {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private timer: NodeJS.Timeout | null = null;
  private readonly last = new Map<string, { at: number; cpu: number | null; pid: number; allowed: number | null }>();

  constructor(
    private readonly emit: (r: GeneratorSample) => void,
    private readonly now: () => number,
    /** The generator processes (k6), by name, while they run. */
    private readonly children: () => { name: string; pid: number }[] = () => [],
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.h.enable();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const at = this.now();
    // The histogram is in ns; monitorEventLoopDelay counts the delay beyond its resolution.
    if (this.h.count > 0) {
      this.emit({ node: GENERATOR_NODE, at, metric: 'loop_lag_p99_ms', value: this.h.percentile(99) / 1e6 });
      this.emit({ node: GENERATOR_NODE, at, metric: 'loop_lag_max_ms', value: this.h.max / 1e6 });
    }
    this.h.reset();
    const seen = new Set<string>();
    const children = this.children();
    // several k6 processes here: their sum too, under GENERATOR_NODE (each alone may use a small
    // share of the machine while together they use all of it)
    let total = 0;
    let measured = 0;
    for (const { name, pid } of children) {
      seen.add(name);
      const cpu = processCpuSeconds(pid);
      const last = this.last.get(name);
      const node = generatorNode(name);
      if (cpu !== null && last?.cpu != null && last.pid === pid && at > last.at) {
        const cores = (cpu - last.cpu) / ((at - last.at) / 1000);
        total += cores;
        measured++;
        this.emit({ node, at, metric: 'k6_cpu_cores', value: cores });
        const allowed = Math.min(cpus().length, last.allowed ?? cpus().length);
        this.emit({ node, at, metric: 'k6_cpu_share', value: cores / allowed });
      }
      this.last.set(name, { at, cpu, pid, allowed: last?.pid === pid ? last.allowed : processAllowedCores(pid) });
    }
    if (measured > 1) {
      this.emit({ node: GENERATOR_NODE, at, metric: 'k6_cpu_cores', value: total });
      this.emit({ node: GENERATOR_NODE, at, metric: 'k6_cpu_share', value: total / cpus().length });
    }
    for (const name of [...this.last.keys()]) if (!seen.has(name)) this.last.delete(name);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.h.disable();
  }
}
