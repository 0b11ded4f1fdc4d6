// The `degraded` outcome (DESIGN.md, Definitions): a request that succeeded, but whose e2e was
// more than `factor` × the run's baseline e2e p50. The baseline is the run's start, before any
// fault (until the first injection or `detection.baseline`, whichever comes first), per kind of
// request (mix entry), since a 512-token answer is not a degraded 16-token one. Pure: records in,
// outcomes out.
import type { Outcome } from '../store/types.js';

export interface BaselineRecord {
  mix: string;
  sentAt: number;
  e2eMs: number;
  outcome: Outcome;
}

export interface Baseline {
  mix: string;
  samples: number;
  p50Ms: number;
  thresholdMs: number;
}

const MAX_SAMPLES = 10_000;

export class DegradedJudge {
  private readonly samples = new Map<string, number[]>();
  private readonly thresholds = new Map<string, Baseline | null>();
  private closedAt: number;

  constructor(
    /** When the baseline ends at the latest (load start + detection.baseline). */
    endsAt: number,
    private readonly factor = 2,
    /** Fewer successes than this in the baseline: no threshold for that kind, nothing judged degraded. */
    private readonly minSamples = 10,
  ) {
    this.closedAt = endsAt;
  }

  /** Ends the baseline early, at `at` (the first fault is about to be injected). */
  close(at: number): void {
    this.closedAt = Math.min(this.closedAt, at);
  }

  /** When the baseline ends (or ended). */
  get endsAt(): number {
    return this.closedAt;
  }

  /** `degraded` for a success slower than the threshold of its kind, else the record's own outcome. */
  judge(r: BaselineRecord): Outcome {
    if (r.outcome !== 'ok') return r.outcome;
    if (r.sentAt < this.closedAt) {
      // sent during the baseline: part of it (even if it is reported after the close)
      const s = this.samples.get(r.mix) ?? [];
      if (s.length < MAX_SAMPLES) s.push(r.e2eMs);
      this.samples.set(r.mix, s);
      return 'ok';
    }
    const b = this.baseline(r.mix);
    return b !== null && r.e2eMs > b.thresholdMs ? 'degraded' : 'ok';
  }

  /** The baseline of one kind, fixed at its first use after the baseline ended (null: too few samples). */
  baseline(mix: string): Baseline | null {
    if (this.thresholds.has(mix)) return this.thresholds.get(mix) ?? null;
    const s = [...(this.samples.get(mix) ?? [])].sort((a, b) => a - b);
    // nearest-rank median: an observed value
    const b = s.length < this.minSamples ? null : { mix, samples: s.length, p50Ms: s[Math.ceil(s.length / 2) - 1] as number, thresholdMs: 0 };
    if (b) b.thresholdMs = this.factor * b.p50Ms;
    this.thresholds.set(mix, b);
    return b;
  }

  /** Every kind's baseline (for the report; fixes them). */
  baselines(): Baseline[] {
    return [...this.samples.keys()].flatMap((m) => {
      const b = this.baseline(m);
      return b ? [b] : [];
    });
  }
}
