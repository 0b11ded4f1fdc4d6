// Probes of one node. Health probes run on a fixed period all run long (availability comes
// from them). While the node is in a failure episode, inference probes (a one-token
// completion) run every recovery_interval, so "serving again" is pinned down to that
// resolution whatever the load rate.
import { Agent, request, type Dispatcher } from 'undici';
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
  recoveryIntervalMs: number;
  api: MixItem['api'];
  model: string;
}

export function probeDispatcher(): Dispatcher {
  // Separate from the load's connection pool, and no keep-alive: a probe must open a fresh
  // connection, as a load balancer's health check would, and not ride a stale socket.
  return new Agent({ pipelining: 0, connections: 4, headersTimeout: 0, bodyTimeout: 0 });
}

export async function healthProbe(dispatcher: Dispatcher, endpoint: string, path: string, timeoutMs: number, now: () => number): Promise<ProbeResult> {
  const sentAt = now();
  try {
    const res = await request(new URL(path, endpoint), { dispatcher, method: 'GET', signal: AbortSignal.timeout(timeoutMs) });
    const respondedAt = now();
    await res.body.dump({ limit: 64 * 1024 });
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    return { kind: 'health', sentAt, respondedAt, latencyMs: now() - sentAt, ok, timedOut: false, status: res.statusCode, error: ok ? null : `HTTP ${res.statusCode}` };
  } catch (err) {
    const e = err as Error & { code?: string };
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    return { kind: 'health', sentAt, respondedAt: null, latencyMs: now() - sentAt, ok: false, timedOut, status: null, error: timedOut ? `no answer within ${timeoutMs} ms` : (e.code ?? e.message) };
  }
}

export class NodeProber {
  private stopped = new AbortController();
  private recovering = false;
  private readonly inferenceBody: string;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly cfg: ProbeConfig,
    private readonly clock: Clock,
    private readonly dispatcher: Dispatcher,
    private readonly onResult: (r: ProbeResult) => void,
    /** Whether the node is currently in a failure episode. */
    private readonly isDown: () => boolean,
  ) {
    this.inferenceBody = probeBody(cfg.api, cfg.model);
  }

  start(): void {
    this.loops.push(this.healthLoop());
  }

  /** Starts the inference-probe loop if the node is down and it is not already running. */
  watchRecovery(): void {
    if (this.recovering || this.stopped.signal.aborted || !this.isDown()) return;
    this.recovering = true;
    this.loops.push(
      this.recoveryLoop().finally(() => {
        this.recovering = false;
      }),
    );
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await Promise.allSettled(this.loops);
  }

  private async healthLoop(): Promise<void> {
    const signal = this.stopped.signal;
    const start = this.clock.now();
    for (let k = 0; !signal.aborted; k++) {
      const due = start + k * this.cfg.intervalMs;
      const wait = due - this.clock.now();
      if (wait < -this.cfg.intervalMs) continue; // fell behind (a long pause): skip, don't burst
      try {
        if (wait > 0) await this.clock.sleep(wait, signal);
      } catch {
        return;
      }
      const r = await healthProbe(this.dispatcher, this.cfg.endpoint, this.cfg.healthPath, this.cfg.timeoutMs, () => this.clock.now());
      if (signal.aborted) return;
      this.onResult(r);
    }
  }

  private async recoveryLoop(): Promise<void> {
    const signal = this.stopped.signal;
    const cancel = CancelScope.fromSignal(signal);
    while (!signal.aborted && this.isDown()) {
      const started = this.clock.now();
      const r = await sendCompletion(
        this.dispatcher,
        { origin: this.cfg.endpoint, path: apiPath(this.cfg.api), body: this.inferenceBody, stream: false, timeoutMs: this.cfg.timeoutMs, cancel },
        () => this.clock.now(),
      );
      if (signal.aborted || r.outcome === 'cancelled') return;
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
      try {
        await this.clock.sleep(Math.max(0, started + this.cfg.recoveryIntervalMs - this.clock.now()), signal);
      } catch {
        return;
      }
    }
  }
}
