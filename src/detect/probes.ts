// Probes of one node, on a fixed schedule that never waits for an earlier probe: a probe that
// has not answered by the next tick is still in flight, and one that never answers counts
// against availability. Two kinds:
//   health  — GET of the plan's health path;
//   canary  — a one-token inference (stored with kind "inference").
// Normal pace: health every `interval`, a canary every `canary_interval`. While the node is
// faulted, suspect (a health probe unanswered for one fast interval, or failed), busy, down or
// recovering, both run every `fast_interval`, each on a fresh connection: during a restart
// Docker's port proxy accepts connections before the server listens and holds them (~1 s), so
// only probes sent concurrently on fresh connections pin "serving again" down to within one
// fast interval, however long any single one is held.
import { Agent, type Dispatcher } from 'undici';
import type { Clock } from '../util/clock.js';
import { apiPath, probeBody } from '../load/prompts.js';
import { CancelScope, sendCompletion } from '../load/request.js';
import type { MixItem } from '../load/workload.js';

export interface ProbeResult {
  kind: 'health' | 'inference';
  sentAt: number;
  /** When the response began (headers); null when none came. */
  respondedAt: number | null;
  latencyMs: number;
  ok: boolean;
  timedOut: boolean;
  status: number | null;
  error: string | null;
}

export interface ProbeConfig {
  endpoint: string;
  healthPath: string;
  intervalMs: number;
  timeoutMs: number;
  fastIntervalMs: number;
  canaryIntervalMs: number;
  canaryTimeoutMs: number;
  api: MixItem['api'];
  model: string;
}

/**
 * How closely a node is watched: `normal`; `watch` (faulted, suspect or busy: fast probes, at
 * most two canaries in flight, so a busy server is not loaded further); `down` (down or
 * recovering: fast probes, a canary every fast interval however many are held).
 */
export type ProbePace = 'normal' | 'watch' | 'down';

/** Canaries in flight at most while a node serves (normal and watch pace). */
const SERVING_CANARY_CAP = 2;

export function probeDispatcher(): Dispatcher {
  // Separate from the load's connection pool, no keep-alive and no cap on connections: every
  // probe opens a fresh one, as a load balancer's health check would, and a probe held by a
  // proxy never makes a later one queue behind it.
  return new Agent({ pipelining: 0, headersTimeout: 0, bodyTimeout: 0 });
}

/**
 * One health probe. `stop` ends it early (the prober stopping) — a CancelScope, not an
 * AbortSignal: a frozen node holds a dozen probes at once, and a listener each on one signal
 * is what Node warns about. Its timeout comes from the clock.
 */
export function healthProbe(dispatcher: Dispatcher, endpoint: string, path: string, timeoutMs: number, clock: Clock, stop?: CancelScope): Promise<ProbeResult> {
  const sentAt = clock.now();
  const cancel = new CancelScope();
  let timedOut = false;
  const timer = new AbortController();
  void clock.sleep(timeoutMs, timer.signal).then(
    () => {
      timedOut = true;
      cancel.cancel();
    },
    () => undefined,
  );
  const offStop = stop?.onCancel(() => cancel.cancel()) ?? (() => undefined);
  return new Promise<ProbeResult>((resolve) => {
    let respondedAt: number | null = null;
    let status: number | null = null;
    let done = false;
    let controller: Dispatcher.DispatchController | null = null;
    const finish = (error: string | null): void => {
      if (done) return;
      done = true;
      timer.abort();
      unregister();
      offStop();
      const ok = error === null && status !== null && status >= 200 && status < 300;
      resolve({
        kind: 'health',
        sentAt,
        respondedAt,
        latencyMs: clock.now() - sentAt,
        ok,
        timedOut: timedOut && respondedAt === null,
        status,
        error: ok ? null : timedOut && respondedAt === null ? `no answer within ${timeoutMs} ms` : (error ?? `HTTP ${status}`),
      });
    };
    const unregister = cancel.onCancel(() => {
      if (controller && !controller.aborted) controller.abort(new Error(timedOut ? 'timeout' : 'stopped'));
      else finish(timedOut ? 'timeout' : 'stopped');
    });
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (cancel.cancelled) c.abort(new Error('stopped'));
      },
      onResponseStart(_c, statusCode) {
        respondedAt = clock.now();
        status = statusCode;
      },
      onResponseData() {
        // the body says nothing the status does not
      },
      onResponseEnd() {
        finish(null);
      },
      onResponseError(_c, err) {
        const code = (err as { code?: string }).code;
        finish(code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message);
      },
    };
    try {
      const url = new URL(path, endpoint);
      dispatcher.dispatch({ origin: url.origin, path: url.pathname + url.search, method: 'GET', reset: true }, handler);
    } catch (err) {
      finish((err as Error).message);
    }
  });
}

export class NodeProber {
  private readonly stopped = new AbortController();
  /** One scope for every canary of this prober, cancelled when it stops. */
  private readonly cancel = new CancelScope();
  private readonly inferenceBody: string;
  private loop: Promise<void> | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  /** Send times of health probes not answered yet. */
  private readonly healthOutstanding = new Set<number>();
  private canariesInFlight = 0;
  private lastHealthFailed = false;
  /** Until when the prober stays fast after its own suspicion (a slow or failed health probe). */
  private suspectUntil = 0;
  private wake: AbortController | null = null;

  constructor(
    private readonly cfg: ProbeConfig,
    private readonly clock: Clock,
    private readonly dispatcher: Dispatcher,
    private readonly onResult: (r: ProbeResult) => void,
    /** The pace the node's state and faults call for (the prober adds its own suspicion). */
    private readonly pace: () => ProbePace,
  ) {
    this.inferenceBody = probeBody(cfg.api, cfg.model);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Re-reads the pace now (a fault was injected, the node's state changed). */
  hurry(): void {
    this.wake?.abort();
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    this.cancel.cancel();
    this.wake?.abort();
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
  }

  /** The pace now: the caller's, raised by this prober's own suspicion. */
  currentPace(now = this.clock.now()): ProbePace {
    const outer = this.pace();
    if (outer !== 'normal') return outer;
    let suspect = this.lastHealthFailed || now < this.suspectUntil;
    for (const sentAt of this.healthOutstanding) if (now - sentAt >= this.cfg.fastIntervalMs) suspect = true;
    if (suspect) this.suspectUntil = Math.max(this.suspectUntil, now + Math.max(2000, 10 * this.cfg.fastIntervalMs));
    return suspect ? 'watch' : 'normal';
  }

  private async run(): Promise<void> {
    const signal = this.stopped.signal;
    const c = this.cfg;
    let lastHealth = -Infinity;
    let lastCanary = -Infinity;
    while (!signal.aborted) {
      const now = this.clock.now();
      const pace = this.currentPace(now);
      const fast = pace !== 'normal';
      const healthPeriod = fast ? c.fastIntervalMs : c.intervalMs;
      const canaryPeriod = fast ? c.fastIntervalMs : c.canaryIntervalMs;
      // A fixed schedule from the last tick; after a stall (a loaded machine, a suspended
      // process) it starts again from now rather than firing the missed ticks in a burst.
      if (now >= lastHealth + healthPeriod) {
        lastHealth = now - lastHealth < 2 * healthPeriod ? lastHealth + healthPeriod : now;
        this.fireHealth();
      }
      if (now >= lastCanary + canaryPeriod) {
        lastCanary = now - lastCanary < 2 * canaryPeriod ? lastCanary + canaryPeriod : now;
        if (pace === 'down' || this.canariesInFlight < SERVING_CANARY_CAP) this.fireCanary();
      }
      let next = Math.min(lastHealth + healthPeriod, lastCanary + canaryPeriod);
      // While nothing is suspect, wake when an outstanding probe turns slow: that alone
      // switches to the fast pace.
      if (!fast) for (const sentAt of this.healthOutstanding) next = Math.min(next, sentAt + c.fastIntervalMs);
      // One controller per wait, aborted by hurry() and by stop(): no listener piles up on a
      // long-lived signal (AbortSignal.any here leaked one per tick).
      this.wake = new AbortController();
      try {
        await this.clock.sleep(Math.max(0, next - this.clock.now()), this.wake.signal);
      } catch {
        // woken early: re-read the pace (or stopped: the loop ends)
      }
    }
  }

  private fireHealth(): void {
    const sentAt = this.clock.now();
    this.healthOutstanding.add(sentAt);
    this.track(
      healthProbe(this.dispatcher, this.cfg.endpoint, this.cfg.healthPath, this.cfg.timeoutMs, this.clock, this.cancel).then((r) => {
        this.healthOutstanding.delete(sentAt);
        if (this.stopped.signal.aborted) return;
        this.lastHealthFailed = !r.ok;
        this.onResult(r);
      }),
    );
  }

  private fireCanary(): void {
    this.canariesInFlight++;
    this.track(
      sendCompletion(
        this.dispatcher,
        { origin: this.cfg.endpoint, path: apiPath(this.cfg.api), body: this.inferenceBody, stream: false, timeoutMs: this.cfg.canaryTimeoutMs, cancel: this.cancel, reset: true },
        this.clock,
      ).then((r) => {
        this.canariesInFlight--;
        if (this.stopped.signal.aborted || r.outcome === 'cancelled') return;
        this.onResult({
          kind: 'inference',
          sentAt: r.sentAt,
          respondedAt: r.respondedAt,
          latencyMs: r.endAt - r.sentAt,
          ok: r.outcome === 'ok',
          timedOut: r.outcome === 'timeout',
          status: r.status,
          error: r.error,
        });
      }),
    );
  }

  private track(p: Promise<void>): void {
    // onResult is the caller's (guarded there); a throw must not become an unhandled rejection.
    const q = p.catch(() => undefined);
    this.inFlight.add(q);
    void q.finally(() => this.inFlight.delete(q));
  }
}
