// Ground truth for timing checks on a machine that may be busy, taken in the same run as what
// it is compared with. Tests check behaviour, not speed (speed is measured in bench/): a bound
// on "how late" is only meaningful next to how late this process could have been at the time.

export interface Lateness {
  /** Lateness (ms) of each tick of the reference chain. */
  ticks: number[];
  /** The longest the loop was busy (a tick overdue) in any stretch overlapping [from, to]. */
  worst(from: number, to: number): number;
}

/**
 * Starts a chain of short timers in this process; each notes when it was due and when it ran.
 * While one is overdue the event loop is busy (a GC pause, a starved CPU, the code under test),
 * so nothing else due in that stretch could have run before it ended either.
 */
export function watchLateness(now: () => number, periodMs = 2): { stop(): Lateness } {
  const due: number[] = [];
  const ran: number[] = [];
  let next = now() + periodMs;
  const tick = (): void => {
    const at = now();
    due.push(next);
    ran.push(at);
    next = at + periodMs;
    timer = setTimeout(tick, periodMs);
  };
  let timer = setTimeout(tick, periodMs);
  return {
    stop(): Lateness {
      clearTimeout(timer);
      /** Index of the last tick due at or before t, or -1 (ticks are in time order and do not overlap). */
      const lastDue = (t: number): number => {
        let lo = 0;
        let hi = due.length - 1;
        let k = -1;
        while (lo <= hi) {
          const mid = (lo + hi) >> 1;
          if ((due[mid] as number) <= t) {
            k = mid;
            lo = mid + 1;
          } else hi = mid - 1;
        }
        return k;
      };
      return {
        ticks: due.map((d, i) => (ran[i] as number) - d),
        worst(from: number, to: number): number {
          let w = 0;
          for (let k = Math.max(0, lastDue(from)); k < due.length && (due[k] as number) <= to; k++) {
            if ((ran[k] as number) > from) w = Math.max(w, (ran[k] as number) - (due[k] as number));
          }
          return w;
        },
      };
    },
  };
}

/** The q-quantile (0..1) of values, by the nearest-rank method; NaN for none. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
