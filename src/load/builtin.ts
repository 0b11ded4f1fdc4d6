// The builtin load engine: open-loop arrivals per target (the schedule is fixed by the rate
// profile and the seed), sent with undici and timed through its handler callbacks. Optional
// in-flight cap per target (the wait shows up as queue delay), and client retries (every
// attempt is recorded; the final one is the client's view). Always available.
import { Agent, type Dispatcher } from 'undici';
import type { Outcome } from './outcome.js';
import type { Clock } from '../util/clock.js';
import { deriveSeed, seededRandom } from '../util/random.js';
import { RequestFactory, type BuiltRequest } from './prompts.js';
import { CancelScope, sendCompletion } from './request.js';
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

type Grant = 'ok' | 'timeout' | 'closed';

/** A counting semaphore; waiters are served in arrival order, wait at most a deadline, and
 * are sent away when the pool closes (the schedule ended before they got a slot). */
export class Slots {
  private free: number;
  private readonly waiting = new Set<(g: Grant) => void>();
  private closed = false;

  constructor(
    n: number,
    private readonly clock: Clock,
  ) {
    this.free = n;
  }

  acquire(timeoutMs: number): Promise<Grant> {
    if (this.closed) return Promise.resolve('closed');
    if (this.free > 0) {
      this.free--;
      return Promise.resolve('ok');
    }
    return new Promise((resolve) => {
      const grant = (g: Grant): void => {
        cancel();
        this.waiting.delete(grant);
        resolve(g);
      };
      const cancel = this.clock.after(timeoutMs, () => grant('timeout'));
      this.waiting.add(grant);
    });
  }

  release(): void {
    const next = this.waiting.values().next();
    if (!next.done) next.value('ok');
    else this.free++;
  }

  /** Sends every waiter away; later acquires fail. */
  close(): void {
    this.closed = true;
    for (const w of [...this.waiting]) w('closed');
  }
}

/** How often, at most, a node's signs of life reach the detector. */
const ALIVE_EVERY_MS = 200;

/** Waits ms on the clock; false when the scope was cancelled first. */
const sleep = (clock: Clock, ms: number, scope: CancelScope): Promise<boolean> =>
  new Promise((resolve) => {
    const cancel = clock.after(ms, () => {
      off();
      resolve(true);
    });
    const off = scope.onCancel(() => {
      cancel();
      resolve(false);
    });
  });

/**
 * One of several engines sharing a schedule (worker threads, src/load/parallel.ts): all draw the
 * same arrivals and requests from the seed, and this one sends arrival k (counted over every
 * target, from 0) when k mod `of` is `index`, from the shared start `startAt` (epoch ms). The
 * arrivals, their numbers (seq) and their requests are the ones a single engine would send (a
 * retry's backoff jitter is drawn per part).
 */
export interface EnginePart {
  index: number;
  of: number;
  startAt: number;
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
    private readonly part: EnginePart | null = null,
  ) {
    if (part && !(Number.isInteger(part.of) && part.of >= 1 && Number.isInteger(part.index) && part.index >= 0 && part.index < part.of)) throw new RangeError(`engine part ${part.index} of ${part.of}`);
  }

  async run(w: Workload, signal: AbortSignal, sink: LoadSink): Promise<void> {
    const curve = new RateCurve(w.profile);
    const share = 1 / w.targets.length;
    // The cap is per target, as k6's maxVUs are: a hung node cannot starve the others.
    const perTargetCap = w.maxInFlight ? Math.max(1, Math.ceil(w.maxInFlight / w.targets.length)) : null;
    const streams = w.targets.map((target) => {
      const gen = arrivalTimes({ arrival: w.arrival, burstiness: w.burstiness, curve, share, seed: w.seed, label: target.node });
      // Signs of life for the detector, a few a second per node, from the bodies in flight.
      let lastAlive = Number.NEGATIVE_INFINITY;
      const onData = (at: number): void => {
        if (at - lastAlive < ALIVE_EVERY_MS) return;
        lastAlive = at;
        sink.alive?.(target.node, at);
      };
      return { target, gen, next: gen.next(), factory: new RequestFactory(w, w.seed, target.node), slots: perTargetCap ? new Slots(perTargetCap, this.clock) : null, onData };
    });
    const jitter = seededRandom(deriveSeed(w.seed, 'retry-jitter'));
    const start = this.part?.startAt ?? this.clock.now();
    const end = start + w.durationMs;
    sink.started?.(start);
    const inFlight = new Set<Promise<void>>();
    const cancel = CancelScope.fromSignal(signal);
    let seq = 0;

    const attemptLoop = async (s: (typeof streams)[number], req: BuiltRequest, scheduledAt: number, n: number): Promise<void> => {
      const target: LoadTarget = s.target;
      const attempts = w.retry?.attempts ?? 1;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        if (attempt > 1 && !(await sleep(this.clock, backoffMs(w.retry as RetryPolicy, attempt, jitter.next()), cancel))) return;
        if (s.slots) {
          const waitFrom = this.clock.now();
          const g = await s.slots.acquire(req.timeoutMs);
          if (g === 'closed') {
            // Scheduled inside the run but never sent: the offered load fell short here.
            if (attempt === 1) sink.scheduleMiss?.(target.node, waitFrom, 1);
            return;
          }
          if (g === 'timeout') {
            const at = this.clock.now();
            sink.record({
              node: target.node, seq: n, attempt, final: attempt === attempts, mix: req.mix, scheduledAt, promptTokens: req.promptTokens, maxTokens: req.maxTokens,
              sentAt: at, respondedAt: null, firstTokenAt: null, endAt: at, ttftMs: null, e2eMs: 0, queueDelayMs: attempt === 1 ? at - scheduledAt : null,
              outcome: 'timeout', status: null, outputTokens: null, tokensSource: null, chunks: 0, itlMaxMs: null, gaps: [],
              error: `no free slot within the timeout (${req.timeoutMs} ms; max_in_flight)`,
            });
            this.progress.done++;
            this.progress.failed++;
            continue;
          }
        }
        this.progress.inFlight++;
        let r;
        try {
          r = await sendCompletion(
            this.dispatcher,
            { origin: target.endpoint, path: req.path, body: req.body, stream: req.stream, timeoutMs: req.timeoutMs, cancel, keepGaps: true, onData: s.onData, ...(this.stampKey ? { stampKey: this.stampKey } : {}) },
            this.clock,
          );
        } finally {
          this.progress.inFlight--;
          s.slots?.release();
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

    let burst = 0;
    try {
      while (!signal.aborted) {
        let s: (typeof streams)[number] | null = null;
        for (const x of streams) if (!x.next.done && (!s || (x.next.value as number) < (s.next.value as number))) s = x;
        if (!s) break;
        const at = start + (s.next.value as number);
        if (at >= end) break;
        // Arrival number seq (from 1, over every target): another part's to send?
        seq++;
        if (this.part && (seq - 1) % this.part.of !== this.part.index) {
          s.factory.skip();
          s.next = s.gen.next();
          continue;
        }
        // Node's timers tick in whole milliseconds against a loop clock that can be stale, so a
        // send may leave up to ~1 ms early or late; queue_delay records exactly how much.
        // (Spinning until the due time would cost a core: measured, see bench/RESULTS.md.)
        const wait = at - this.clock.now();
        if (wait >= 1) {
          burst = 0;
          try {
            await this.clock.sleep(Math.ceil(wait), signal);
          } catch {
            break;
          }
        } else if (++burst % 32 === 0) {
          // Behind schedule: still let responses, timeouts and Ctrl-C run between sends.
          await new Promise<void>((r) => setImmediate(r));
          if (signal.aborted) break;
        }
        this.progress.scheduled++;
        sink.planned?.(s.target.node, at, 1);
        const p = attemptLoop(s, s.factory.next(), at, seq);
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p)).catch(() => undefined);
        s.next = s.gen.next();
      }
      // The schedule's last arrival can come well before its end (Poisson at a low rate): the
      // load lasts its whole duration all the same — that time is exposure too.
      // (a timer can fire a fraction of a millisecond early: a few tries reach the end itself)
      for (let tries = 0; tries < 5 && !signal.aborted && this.clock.now() < end; tries++) await this.clock.sleep(end - this.clock.now(), signal).catch(() => undefined);
    } finally {
      // Requests still waiting for a slot were never sent: schedule misses, not an overrun.
      for (const x of streams) x.slots?.close();
      // Normal end: in-flight requests finish on their own (bounded by the timeout), unless the
      // run is aborted meanwhile (the scope follows the signal). Aborted: cancelled and recorded.
      await Promise.allSettled([...inFlight]);
      sink.ended?.(this.clock.now());
    }
  }
}
