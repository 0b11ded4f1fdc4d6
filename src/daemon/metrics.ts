// The daemon's /metrics (prom-client), fed by the run under way through its RunObserver: the
// requests by node and outcome, ttft and end-to-end latency histograms, each node's state,
// active faults, failures by cause, recovery times, and the last finished run's MTBF lower
// bound. A registry per daemon (no global state), the process's own metrics with it.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Episode, StateChange } from '../detect/detector.js';
import type { RequestRecord } from '../load/types.js';
import type { RunObserver } from '../run/runner.js';
import { isSuccess, type RunStatus } from '../store/store.js';

const NODE_STATES = ['up', 'busy', 'degraded', 'down', 'recovering'] as const;
/** Latency buckets (seconds): 5 ms … 2 min, dense where ttft lives. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Recovery buckets (seconds): 100 ms … 30 min. */
const RECOVERY_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800];

/** Every metric name the daemon exports (the Grafana dashboard is checked against these). */
export const METRIC_NAMES = [
  'gauntlet_requests_total',
  'gauntlet_ttft_seconds',
  'gauntlet_e2e_seconds',
  'gauntlet_node_state',
  'gauntlet_active_faults',
  'gauntlet_failures_total',
  'gauntlet_recovery_seconds',
  'gauntlet_mtbf_lower_bound_hours',
  'gauntlet_runs_total',
  'gauntlet_run_active',
] as const;

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'node' | 'outcome'>;
  private readonly ttft: Histogram<'node'>;
  private readonly e2e: Histogram<'node'>;
  private readonly nodeState: Gauge<'node' | 'state'>;
  private readonly activeFaults: Gauge;
  private readonly failures: Counter<'node' | 'cause'>;
  private readonly recovery: Histogram<'node' | 'cause'>;
  private readonly mtbfLower: Gauge<'plan' | 'confidence'>;
  private readonly runsTotal: Counter<'status'>;
  private readonly runActive: Gauge;
  /** Episodes of the run under way already counted (cleared when a run starts). */
  private readonly counted = new Set<string>();

  constructor(opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'gauntlet_requests_total', help: 'Request attempts by node and outcome (ok, truncated, degraded, http_error, timeout, conn_error, …)', labelNames: ['node', 'outcome'], registers });
    this.ttft = new Histogram({ name: 'gauntlet_ttft_seconds', help: 'Time to first token of successful requests, from the actual send', labelNames: ['node'], buckets: LATENCY_BUCKETS, registers });
    this.e2e = new Histogram({ name: 'gauntlet_e2e_seconds', help: 'End-to-end time of successful requests, from the actual send', labelNames: ['node'], buckets: LATENCY_BUCKETS, registers });
    this.nodeState = new Gauge({ name: 'gauntlet_node_state', help: "1 for each node's current state (up, busy, degraded, down, recovering), 0 for the others", labelNames: ['node', 'state'], registers });
    this.activeFaults = new Gauge({ name: 'gauntlet_active_faults', help: 'Faults injected and not yet reverted', registers });
    this.failures = new Counter({ name: 'gauntlet_failures_total', help: 'Failure episodes, counted when over (recovered or past the recovery limit), by node and cause (spontaneous, injected, orchestrator)', labelNames: ['node', 'cause'], registers });
    this.recovery = new Histogram({ name: 'gauntlet_recovery_seconds', help: 'Recovery time of recovered episodes: first successful inference sent after the failure − first evidence of it', labelNames: ['node', 'cause'], buckets: RECOVERY_BUCKETS, registers });
    this.mtbfLower = new Gauge({ name: 'gauntlet_mtbf_lower_bound_hours', help: "The last finished run's MTBF lower bound at its plan's confidence (hours of exposure)", labelNames: ['plan', 'confidence'], registers });
    this.runsTotal = new Counter({ name: 'gauntlet_runs_total', help: 'Runs this daemon finished, by status', labelNames: ['status'], registers });
    this.runActive = new Gauge({ name: 'gauntlet_run_active', help: '1 while a run is under way', registers });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'gauntlet_' });
  }

  /** The observer a run is given. */
  observer(): RunObserver {
    return {
      request: (r) => this.onRequest(r),
      state: (c) => this.onState(c),
      episode: (e) => this.onEpisode(e),
      faults: (n) => this.activeFaults.set(n),
    };
  }

  runStarted(): void {
    this.runActive.set(1);
    this.counted.clear();
    this.nodeState.reset();
    this.activeFaults.set(0);
  }

  runEnded(status: RunStatus | 'not_started', mtbf: { plan: string; confidence: number; lowerBoundHours: number } | null): void {
    this.runActive.set(0);
    this.activeFaults.set(0);
    this.runsTotal.inc({ status });
    if (mtbf) this.mtbfLower.set({ plan: mtbf.plan, confidence: String(mtbf.confidence) }, mtbf.lowerBoundHours);
  }

  private onRequest(r: RequestRecord): void {
    if (r.outcome === 'cancelled') return;
    this.requests.inc({ node: r.node, outcome: r.outcome });
    if (!isSuccess(r.outcome)) return;
    if (r.ttftMs !== null) this.ttft.observe({ node: r.node }, r.ttftMs / 1000);
    if (r.e2eMs !== null) this.e2e.observe({ node: r.node }, r.e2eMs / 1000);
  }

  private onState(c: StateChange): void {
    for (const s of NODE_STATES) this.nodeState.set({ node: c.node, state: s }, s === c.state ? 1 : 0);
  }

  /**
   * Counted when the episode is over (recovered, or past the recovery limit), with the cause it
   * has then: an episode opens as spontaneous and may be attributed to a fault later, and its
   * serving-again time may be revised earlier while it is open.
   */
  private onEpisode(e: Episode): void {
    if (e.status === 'open' || this.counted.has(e.id)) return;
    this.counted.add(e.id);
    const cause = e.cause.startsWith('injected') ? 'injected' : e.cause;
    this.failures.inc({ node: e.node, cause });
    if (e.servingAgainAt !== null) this.recovery.observe({ node: e.node, cause }, Math.max(0, e.servingAgainAt - e.startedAt) / 1000);
  }
}
