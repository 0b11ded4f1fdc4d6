// The builtin load engine: open-loop arrivals per target (the schedule is fixed by the rate
// profile and the seed), sent with undici and timed through its handler callbacks. Optional
// in-flight cap (the wait shows up as queue delay) and client retries (every attempt is
// recorded; the final one is the client's view). Always available.
import { setMaxListeners } from 'node:events';
import { Agent, type Dispatcher } from 'undici';
import type { Outcome } from '../store/types.js';
import type { Clock } from '../util/clock.js';
import { deriveSeed, seededRandom } from '../util/random.js';
import { RequestFactory, type BuiltRequest } from './prompts.js';
import { sendCompletion } from './request.js';
import { RateCurve, arrivalTimes } from './schedule.js';
import type { EngineCapabilities, LoadEngine, LoadProgress, LoadSink, LoadTarget } from './types.js';
import type { RetryPolicy, Workload } from './workload.js';

export function loadDispatcher(): Dispatcher {
  // Unlimited connections per origin (open loop: a busy server must not throttle sending);
  // our own per-request timeout replaces undici's idle timeouts.
  return new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 4000, headersTimeout: 0, bodyTimeout: 0 });
}

/** Outcomes a client would retry: the node's failures, not the client's own mistakes. */
export function retryable(outcome: Outcome, status: number | null): boolean {
  if (outcome === 'http_error') return status === 429 || (status !== null && status >= 500);
  return outcome === 'conn_error' || outcome === 'timeout' || outcome === 'truncated' || outcome === 'protocol_error';
}

/** Exponential backoff with jitter before attempt `attempt` (2, 3, …). */
export function backoffMs(p: RetryPolicy, attempt: number, u: number): number {
  const base = Math.min(p.maxBackoffMs, p.backoffMs * 2 ** (attempt - 2));
  return Math.max(0, base * (1 + p.jitter * (2 * u - 1)));
}

/** A counting semaphore whose waiters are served in arrival order. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(n: number) {
    this.free = n;
  }

  acquire(signal: AbortSignal): Promise<boolean> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const grant = (): void => {
        signal.removeEventListener('abort', cancel);
        resolve(true);
      };
      const cancel = (): void => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve(false);
      };
      this.waiting.push(grant);
      signal.addEventListener('abort', cancel, { once: true });
    });
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

export class BuiltinEngine implements LoadEngine {
  readonly name = 'builtin';
  readonly progress: LoadProgress = { scheduled: 0, inFlight: 0, done: 0, ok: 0, failed: 0 };
  readonly capabilities: EngineCapabilities = { ttft: 'first_content_chunk', itl: true, queueDelay: true, notes: [] };

  constructor(
    private readonly clock: Clock,
    private readonly dispatcher: Dispatcher = loadDispatcher(),
    /** Benchmarks only: keep the server's per-chunk timestamps from this field on each record. */
    private readonly stampKey: string | null = null,
  ) {}

  async run(w: Workload, signal: AbortSignal, sink: LoadSink): Promise<void> {
    const curve = new RateCurve(w.profile);
    const share = 1 / w.targets.length;
    const streams = w.targets.map((target) => {
      const gen = arrivalTimes({ arrival: w.arrival, burstiness: w.burstiness, curve, share, seed: w.seed, label: target.node });
      return { target, gen, next: gen.next(), factory: new RequestFactory(w, w.seed, target.node) };
    });
    const slots = w.maxInFlight ? new Slots(w.maxInFlight) : null;
    const jitter = seededRandom(deriveSeed(w.seed, 'retry-jitter'));
    const start = this.clock.now();
    const end = start + w.durationMs;
    const inFlight = new Set<Promise<void>>();
    const cancel = new AbortController();
    // One listener per in-flight request is expected here, however many there are.
    setMaxListeners(0, cancel.signal);
    const onAbort = (): void => cancel.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let seq = 0;

    const attemptLoop = async (target: LoadTarget, req: BuiltRequest, scheduledAt: number, n: number): Promise<void> => {
      const attempts = w.retry?.attempts ?? 1;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        if (attempt > 1) {
          try {
            await this.clock.sleep(backoffMs(w.retry as RetryPolicy, attempt, jitter.next()), cancel.signal);
          } catch {
            return;
          }
        }
        if (slots && !(await slots.acquire(cancel.signal))) return;
        this.progress.inFlight++;
        let r;
        try {
          r = await sendCompletion(this.dispatcher, { origin: target.endpoint, path: req.path, body: req.body, stream: req.stream, timeoutMs: req.timeoutMs, signal: cancel.signal, keepGaps: true, ...(this.stampKey ? { stampKey: this.stampKey } : {}) }, () => this.clock.now());
        } finally {
          this.progress.inFlight--;
          slots?.release();
        }
        this.progress.done++;
        if (r.outcome === 'ok') this.progress.ok++;
        else if (r.outcome !== 'cancelled') this.progress.failed++;
        const final = r.outcome === 'ok' || r.outcome === 'cancelled' || attempt === attempts || !retryable(r.outcome, r.status);
        const { stamps, ...timing } = r;
        sink.record({
          ...timing,
          ...(this.stampKey ? { serverStamps: stamps } : {}),
          node: target.node,
          seq: n,
          attempt,
          final,
          mix: req.mix,
          scheduledAt,
          promptTokens: req.promptTokens,
          maxTokens: req.maxTokens,
          ttftMs: r.firstTokenAt !== null ? r.firstTokenAt - r.sentAt : null,
          e2eMs: r.endAt - r.sentAt,
          queueDelayMs: attempt === 1 ? r.sentAt - scheduledAt : null,
        });
        if (final) return;
      }
    };

    try {
      while (!signal.aborted) {
        let s: (typeof streams)[number] | null = null;
        for (const x of streams) if (!x.next.done && (!s || (x.next.value as number) < (s.next.value as number))) s = x;
        if (!s) break;
        const at = start + (s.next.value as number);
        if (at >= end) break;
        // Node's timers tick in whole milliseconds against a loop clock that can be stale, so a
        // send may leave up to ~1 ms early or late; queue_delay records exactly how much.
        // (Spinning until the due time would cost a core: measured, see bench/RESULTS.md.)
        const wait = at - this.clock.now();
        if (wait >= 1) {
          try {
            await this.clock.sleep(Math.ceil(wait), signal);
          } catch {
            break;
          }
        }
        this.progress.scheduled++;
        const p = attemptLoop(s.target, s.factory.next(), at, ++seq);
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p)).catch(() => undefined);
        s.next = s.gen.next();
      }
    } finally {
      // Normal end: in-flight requests finish on their own (bounded by the timeout), unless
      // the run is aborted meanwhile. Aborted run: they are cancelled and recorded as such.
      if (signal.aborted) cancel.abort();
      await Promise.allSettled([...inFlight]);
      signal.removeEventListener('abort', onAbort);
    }
  }
}
