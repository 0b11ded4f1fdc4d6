// The simulated node's own failures, for ground truth: a seeded process of spontaneous faults
// with a given MTBF — exponential times to failure (Weibull shape 1) or Weibull (shape > 1:
// wear-out, < 1: infant mortality) — each a crash (exit, like an Xid error taking a GPU off the
// bus), a hang (the process answers nothing for a while, like a stuck collective), or a burst of
// 500s (CUDA errors while /health still says ok). Every fault is written to the log as a TRUTH
// line that tests compare Gauntlet's findings with.
import { lnGamma } from '../analysis/stats.js';
import { deriveSeed, seededRandom, type Random } from '../util/random.js';
import type { SimOptions } from './options.js';

export const SPONTANEOUS_KINDS = ['crash', 'hang', 'errors'] as const;
export type SpontaneousKind = (typeof SPONTANEOUS_KINDS)[number];

/** A Weibull time with the given mean and shape (shape 1: exponential). */
export function weibull(rng: Random, mean: number, shape: number): number {
  const scale = mean / Math.exp(lnGamma(1 + 1 / shape));
  return scale * (-Math.log(1 - rng.next())) ** (1 / shape);
}

export interface SpontaneousHooks {
  now(): number;
  truth(event: string, detail?: Record<string, unknown>): void;
  crash(reason: string): void;
  /** Blocks the whole process for ms: nothing is answered, no token produced. */
  freeze(ms: number): void;
  /** Answers completions with 500 until `until` (epoch ms). */
  errorsUntil(until: number): void;
}

/**
 * Schedules the node's spontaneous faults. Each incarnation (process start) draws its own
 * sequence, from the seed and its start time, so a restarted container does not fail again at
 * the same uptime.
 */
export function startSpontaneous(opts: SimOptions, hooks: SpontaneousHooks): void {
  if (opts.spontaneousMtbfS <= 0) return;
  const rng = seededRandom(deriveSeed(opts.seed, `incarnation-${Math.floor(hooks.now())}`));
  const next = (): void => {
    const inMs = weibull(rng, opts.spontaneousMtbfS * 1000, opts.spontaneousShape);
    setTimeout(fire, inMs).unref();
  };
  const fire = (): void => {
    const at = hooks.now();
    switch (opts.spontaneousKind) {
      case 'crash':
        hooks.truth('fault', { kind: 'crash', at });
        hooks.crash('simulated spontaneous fault (Xid 79: GPU has fallen off the bus)');
        return;
      case 'hang':
        hooks.truth('fault', { kind: 'hang', at, ms: opts.spontaneousDurationMs });
        hooks.freeze(opts.spontaneousDurationMs);
        hooks.truth('fault_end', { kind: 'hang' });
        break;
      case 'errors':
        hooks.truth('fault', { kind: 'errors', at, ms: opts.spontaneousDurationMs });
        hooks.errorsUntil(at + opts.spontaneousDurationMs);
        setTimeout(() => hooks.truth('fault_end', { kind: 'errors' }), opts.spontaneousDurationMs).unref();
        break;
    }
    next();
  };
  next();
}
