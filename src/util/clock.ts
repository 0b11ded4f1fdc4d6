// Time, injected. Everything that stamps, waits, times out or schedules takes a Clock, so a
// long plan can run on a virtual clock in tests and the real one can be swapped without
// touching the callers. Nothing outside this file calls setTimeout or AbortSignal.timeout for
// plan time. Real timers stay only where they bound real machinery whatever the plan's clock:
// the Docker API's deadlines and event-stream reconnects, the k6 process's kill grace, the
// store's write batching, the event-loop monitor (it measures this process), the CLI's display.

/** Cancels a timer; safe to call more than once, and after it fired. */
export type Cancel = () => void;

export interface Clock {
  /** Wall-clock epoch milliseconds with sub-millisecond resolution. */
  now(): number;
  /** Resolves after ms, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls fn once after ms (the real clock's timer does not keep the process alive when `unref`). */
  after(ms: number, fn: () => void, opts?: { unref?: boolean }): Cancel;
  /** A signal that aborts with a TimeoutError after ms (AbortSignal.timeout on this clock). */
  deadline(ms: number): AbortSignal;
  /** How many plan-seconds pass per wall second (1 for real time). */
  readonly timeScale: number;
  /** A real epoch time (a Docker event's) as this clock's time. */
  fromEpoch(ms: number): number;
  /** This clock's time as a real epoch time (what to ask the Docker engine for). */
  toEpoch(ms: number): number;
}

function timeoutError(ms: number): Error {
  // Most deadlines expire after their work is done, unheard: no stack to capture for them.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const e = new Error(`The operation was aborted due to timeout (${ms} ms)`);
  Error.stackTraceLimit = limit;
  e.name = 'TimeoutError';
  return e;
}

/**
 * Resolves once `ms` have passed on the clock: never before. (Node's timers run on the event
 * loop's millisecond clock and can fire a fraction of a millisecond early by performance.now() —
 * 50 times that on a 50× scaled clock: the rest is waited for.)
 */
export function sleepOn(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const until = clock.now() + ms;
    let cancel: Cancel;
    const onAbort = (): void => {
      cancel();
      reject(signal?.reason);
    };
    const arm = (left: number): Cancel =>
      clock.after(left, () => {
        const rest = until - clock.now();
        if (rest > 0) {
          cancel = arm(rest);
          return;
        }
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    cancel = arm(ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function deadlineOn(clock: Clock, ms: number): AbortSignal {
  const ac = new AbortController();
  clock.after(ms, () => ac.abort(timeoutError(ms)), { unref: true });
  return ac.signal;
}

/**
 * Epoch time from the monotonic clock, anchored to Date.now() at creation so it can be
 * compared with Docker's event timestamps. Monotonic: an NTP step never makes it go back.
 */
export class RealClock implements Clock {
  readonly timeScale = 1;
  /** Epoch ms at this thread's performance.now() = 0 (given: another thread's clock, carried over). */
  readonly anchor: number;

  constructor(anchor?: number) {
    this.anchor = anchor ?? Date.now() - performance.now();
  }

  now(): number {
    return this.anchor + performance.now();
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  after(ms: number, fn: () => void, opts: { unref?: boolean } = {}): Cancel {
    const t = setTimeout(fn, Math.max(0, ms));
    if (opts.unref) t.unref();
    return () => clearTimeout(t);
  }

  deadline(ms: number): AbortSignal {
    return AbortSignal.timeout(Math.max(0, ms));
  }

  fromEpoch(ms: number): number {
    return ms;
  }

  toEpoch(ms: number): number {
    return ms;
  }
}

/**
 * Plan time running `scale` times faster than real time (gauntlet run --time-scale N): it
 * starts at the real time of its creation and then advances N ms per real ms, so every
 * duration of a plan (its length, faults, probes, windows, timeouts) passes N times faster.
 * Latencies read on it are real latencies × N: the simulator, started with the same
 * --time-scale, answers N times faster, so they read as the unscaled node's.
 */
export class ScaledClock implements Clock {
  private readonly real = new RealClock();
  private readonly anchor = this.real.now();

  constructor(readonly timeScale: number) {
    if (!(timeScale >= 1) || !Number.isFinite(timeScale)) throw new Error(`time scale must be a number ≥ 1, got ${timeScale}`);
  }

  now(): number {
    return this.fromEpoch(this.real.now());
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  after(ms: number, fn: () => void, opts: { unref?: boolean } = {}): Cancel {
    return this.real.after(ms / this.timeScale, fn, opts);
  }

  deadline(ms: number): AbortSignal {
    return deadlineOn(this, ms);
  }

  fromEpoch(ms: number): number {
    return this.anchor + (ms - this.anchor) * this.timeScale;
  }

  toEpoch(ms: number): number {
    return this.anchor + (ms - this.anchor) / this.timeScale;
  }
}

interface VirtualTimer {
  until: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told to; timers fire in time order (ties in the order they were
 * set) as it advances. A binary heap keeps a long run's hundreds of timers cheap to take.
 */
export class VirtualClock implements Clock {
  readonly timeScale: number;
  private t: number;
  private seq = 0;
  private readonly heap: VirtualTimer[] = [];
  private live = 0;

  constructor(start = 0, timeScale = Number.POSITIVE_INFINITY) {
    this.t = start;
    this.timeScale = timeScale;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  after(ms: number, fn: () => void): Cancel {
    const entry: VirtualTimer = { until: this.t + Math.max(0, Number.isFinite(ms) ? ms : 0), seq: this.seq++, fn, cancelled: false };
    this.push(entry);
    this.live++;
    return () => {
      if (entry.cancelled) return;
      entry.cancelled = true;
      this.live--;
    };
  }

  deadline(ms: number): AbortSignal {
    return deadlineOn(this, ms);
  }

  /** A fake engine in a virtual-clock test stamps its events with the virtual time itself. */
  fromEpoch(ms: number): number {
    return ms;
  }

  toEpoch(ms: number): number {
    return ms;
  }

  /** Timers waiting. */
  get pending(): number {
    return this.live;
  }

  /** The time the next timer is due (null: none). */
  nextDue(): number | null {
    this.dropCancelled();
    return this.heap[0]?.until ?? null;
  }

  /** Moves time forward, firing timers in order and letting their continuations run. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.dropCancelled();
      const next = this.heap[0];
      if (!next || next.until > end) break;
      this.pop();
      next.cancelled = true;
      this.live--;
      this.t = Math.max(this.t, next.until);
      next.fn();
      await new Promise<void>((r) => setImmediate(r));
    }
    this.t = Math.max(this.t, end);
  }

  private dropCancelled(): void {
    while (this.heap[0]?.cancelled) this.pop();
  }

  private less(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.until < b.until || (a.until === b.until && a.seq < b.seq);
  }

  private push(x: VirtualTimer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i] as VirtualTimer, h[p] as VirtualTimer)) break;
      [h[i], h[p]] = [h[p] as VirtualTimer, h[i] as VirtualTimer];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as VirtualTimer;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l] as VirtualTimer, h[m] as VirtualTimer)) m = l;
      if (r < h.length && this.less(h[r] as VirtualTimer, h[m] as VirtualTimer)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as VirtualTimer, h[i] as VirtualTimer];
      i = m;
    }
  }
}

/** Calls fn every ms on the clock until cancelled (the next call is set when one returns). */
export function every(clock: Clock, ms: number, fn: () => void): Cancel {
  let cancelled = false;
  let cancel: Cancel = () => undefined;
  const arm = (): void => {
    cancel = clock.after(ms, () => {
      if (cancelled) return;
      try {
        fn();
      } finally {
        if (!cancelled) arm();
      }
    });
  };
  arm();
  return () => {
    cancelled = true;
    cancel();
  };
}
