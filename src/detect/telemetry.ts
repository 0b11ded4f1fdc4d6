// Node telemetry as time series: the container's memory and CPU from Docker's stats, and the
// node's own Prometheus /metrics when it has one (vLLM's names). Sampled at a modest interval
// on the injected clock; a sample that fails is skipped and said once, never fatal — a node
// that is down has no metrics, and that is what the episode already records.
import { request, type Dispatcher } from 'undici';
import type { Docker } from '../docker/engine.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Clock } from '../util/clock.js';

export interface TelemetrySample {
  node: string;
  at: number;
  metric: string;
  value: number;
}

/** Names Gauntlet gives the container's own figures (from Docker). */
export const CONTAINER_METRICS = { memory: 'container_memory_bytes', memoryLimit: 'container_memory_limit_bytes', cpu: 'container_cpu_cores' } as const;

const METRIC_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(?:\s+\S+)?$/;

/**
 * Parses Prometheus' text exposition format (0.0.4) into the sum per metric name over its label
 * sets (a node's `vllm:num_requests_running{model_name=…}` is one figure per node). Comments,
 * blank and malformed lines are skipped; counts of what was skipped come back for the log.
 */
export function parsePrometheusText(text: string): { values: Map<string, number>; malformed: number } {
  const values = new Map<string, number>();
  let malformed = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = METRIC_LINE.exec(line);
    if (!m) {
      malformed++;
      continue;
    }
    const v = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(v)) {
      if (m[3] !== 'NaN') malformed++;
      continue;
    }
    const name = m[1] as string;
    values.set(name, (values.get(name) ?? 0) + v);
  }
  return { values, malformed };
}

/** The part of Docker's stats answer used here (API ≥ 1.41, cgroup v1 and v2). */
export interface DockerStats {
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  cpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number; online_cpus?: number };
}

/**
 * Memory as `docker stats` shows it: usage minus the page cache that can be reclaimed
 * (inactive_file on cgroup v2, total_inactive_file on v1), so a leak is not hidden or faked by
 * file cache. Null when Docker gave no usage (a stopped container).
 */
export function containerMemory(s: DockerStats): { bytes: number; limit: number | null } | null {
  const m = s.memory_stats;
  if (!m || typeof m.usage !== 'number') return null;
  const cache = m.stats?.inactive_file ?? m.stats?.total_inactive_file ?? 0;
  return { bytes: Math.max(0, m.usage - cache), limit: typeof m.limit === 'number' && m.limit > 0 ? m.limit : null };
}

/** CPU used between two samples, in cores (1.0 = one core busy). */
export function cpuCores(prev: DockerStats, cur: DockerStats): number | null {
  const a = prev.cpu_stats;
  const b = cur.cpu_stats;
  const du = (b?.cpu_usage?.total_usage ?? NaN) - (a?.cpu_usage?.total_usage ?? NaN);
  const ds = (b?.system_cpu_usage ?? NaN) - (a?.system_cpu_usage ?? NaN);
  const cpus = b?.online_cpus ?? 1;
  if (!(du >= 0) || !(ds > 0)) return null;
  return (du / ds) * cpus;
}

export interface TelemetryTarget {
  node: string;
  containerId: string | null;
  /** The container's engine (default: the collector's). */
  docker?: Docker | null;
  /** Base URL; /metrics is read from it when metricsPath is set. */
  endpoint: string;
}

export interface TelemetryConfig {
  intervalMs: number;
  metricsPath: string | null;
  metrics: readonly string[];
  timeoutMs: number;
}

/** Samples every target on a fixed schedule until stopped. */
export class TelemetryCollector {
  private readonly stopped = new AbortController();
  private loop: Promise<void> | null = null;
  private readonly lastStats = new Map<string, DockerStats>();
  private readonly complained = new Set<string>();
  private readonly latest = new Map<string, Map<string, { at: number; value: number }>>();
  /** Samples under way, per target and source: a slow one is not started again until it ends. */
  private readonly busy = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly targets: TelemetryTarget[],
    private readonly cfg: TelemetryConfig,
    private readonly docker: Docker | null,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly onSample: (s: TelemetrySample) => void,
    /** HTTP to the nodes' metrics (default: undici's global pool). */
    private readonly dispatcher?: Dispatcher,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
  }

  /** The node's most recent value of each metric (for an episode's evidence). */
  snapshot(node: string): Record<string, { at: number; value: number }> {
    return Object.fromEntries(this.latest.get(node) ?? []);
  }

  private async run(): Promise<void> {
    const signal = this.stopped.signal;
    const start = this.clock.now();
    for (let k = 0; !signal.aborted; k++) {
      // On schedule, without waiting for slow answers (Docker's stats take about a second).
      for (const t of this.targets) {
        const docker = t.docker ?? this.docker;
        if (docker && t.containerId) this.launch(`${t.node}:stats`, () => this.containerStats(docker, t.node, t.containerId as string));
        if (this.cfg.metricsPath) this.launch(`${t.node}:metrics`, () => this.scrape(t));
      }
      const next = start + (k + 1) * this.cfg.intervalMs;
      try {
        // after a stall, go on from now rather than sampling in a burst
        await this.clock.sleep(Math.max(0, next - this.clock.now()), signal);
      } catch {
        return;
      }
    }
  }

  private launch(key: string, job: () => Promise<void>): void {
    if (this.busy.has(key)) return;
    this.busy.add(key);
    const p = job().finally(() => {
      this.busy.delete(key);
      this.inFlight.delete(p);
    });
    this.inFlight.add(p);
  }

  /** Resolves with the promise's value, or rejects after timeoutMs on the clock (the call itself is left to finish). */
  private within<T>(p: Promise<T>, what: string): Promise<T> {
    const timer = new AbortController();
    return Promise.race([
      p.finally(() => timer.abort()),
      this.clock.sleep(this.cfg.timeoutMs, timer.signal).then(
        () => Promise.reject(new Error(`${what}: no answer within ${this.cfg.timeoutMs} ms`)),
        () => new Promise<never>(() => undefined),
      ),
    ]);
  }

  private emit(node: string, at: number, metric: string, value: number): void {
    if (!Number.isFinite(value)) return;
    let m = this.latest.get(node);
    if (!m) this.latest.set(node, (m = new Map()));
    m.set(metric, { at, value });
    this.onSample({ node, at, metric, value });
  }

  private async containerStats(docker: Docker, node: string, id: string): Promise<void> {
    try {
      const at = this.clock.now();
      // one-shot: one collection cycle instead of two (still about a second); CPU comes from
      // our own previous sample. No abortSignal: dockerode throws it, uncaught, at a stream
      // that has already ended.
      const stats = (await this.within(docker.getContainer(id).stats({ stream: false, 'one-shot': true } as never) as unknown as Promise<unknown>, 'docker stats')) as DockerStats;
      const mem = containerMemory(stats);
      if (mem) {
        this.emit(node, at, CONTAINER_METRICS.memory, mem.bytes);
        if (mem.limit !== null) this.emit(node, at, CONTAINER_METRICS.memoryLimit, mem.limit);
      }
      const prev = this.lastStats.get(node);
      const cores = prev ? cpuCores(prev, stats) : null;
      if (cores !== null) this.emit(node, at, CONTAINER_METRICS.cpu, cores);
      this.lastStats.set(node, stats);
    } catch (err) {
      this.complainOnce(`${node}:stats`, `cannot read Docker stats of ${node}: ${errorMessage(err)} (skipping those samples)`);
    }
  }

  private async scrape(t: TelemetryTarget): Promise<void> {
    try {
      const at = this.clock.now();
      const res = await request(new URL(this.cfg.metricsPath as string, t.endpoint), { signal: this.clock.deadline(this.cfg.timeoutMs), reset: true, ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}) });
      if (res.statusCode !== 200) {
        await res.body.dump();
        if (res.statusCode === 404) this.complainOnce(`${t.node}:metrics`, `${t.node} has no ${this.cfg.metricsPath} (HTTP 404): no server metrics for it`);
        return;
      }
      const { values, malformed } = parsePrometheusText(await res.body.text());
      if (malformed > 0) this.complainOnce(`${t.node}:malformed`, `${t.node}${this.cfg.metricsPath}: ${malformed} line(s) not in Prometheus text format, skipped`);
      for (const name of this.cfg.metrics) {
        const v = values.get(name);
        if (v !== undefined) this.emit(t.node, at, name, v);
      }
    } catch (err) {
      // a node that is down answers nothing: the episode records that, not the telemetry
      this.log.debug({ node: t.node, err: errorMessage(err) }, 'metrics scrape failed');
    }
  }

  private complainOnce(key: string, message: string): void {
    if (this.complained.has(key)) return;
    this.complained.add(key);
    this.log.warn(message);
  }
}
