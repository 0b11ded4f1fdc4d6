// Time, injected. Everything that stamps or waits takes a Clock, so tests can run on a
// virtual clock and the real one can be swapped without touching the callers.

export interface Clock {
  /** Wall-clock epoch milliseconds with sub-millisecond resolution. */
  now(): number;
  /** Resolves after ms, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** How many plan-seconds pass per wall second (1 for real time). */
  readonly timeScale: number;
}

/**
 * Epoch time from the monotonic clock, anchored to Date.now() at creation so it can be
 * compared with Docker's event timestamps. Monotonic: an NTP step never makes it go back.
 */
export class RealClock implements Clock {
  readonly timeScale = 1;
  private readonly anchor = Date.now() - performance.now();

  now(): number {
    return this.anchor + performance.now();
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, Math.max(0, ms));
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** A clock that moves only when told to; sleepers wake in time order as it advances. */
export class VirtualClock implements Clock {
  readonly timeScale: number;
  private t: number;
  private sleepers: { until: number; resolve: () => void }[] = [];

  constructor(start = 0, timeScale = Number.POSITIVE_INFINITY) {
    this.t = start;
    this.timeScale = timeScale;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const entry = { until: this.t + Math.max(0, ms), resolve };
      this.sleepers.push(entry);
      signal?.addEventListener(
        'abort',
        () => {
          this.sleepers = this.sleepers.filter((s) => s !== entry);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Moves time forward, waking sleepers in order and letting their continuations run. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.sleepers.sort((a, b) => a.until - b.until);
      const next = this.sleepers[0];
      if (!next || next.until > end) break;
      this.sleepers.shift();
      this.t = next.until;
      next.resolve();
      await new Promise<void>((r) => setImmediate(r));
    }
    this.t = end;
  }
}
