// Open-loop arrival schedules: the send times are fixed by the rate and the seed alone,
// never by how fast the server answers (a slow server must not slow the schedule — that
// would hide latency, the coordinated-omission trap).
import { deriveSeed, exponential, seededRandom } from '../util/random.js';

export interface ArrivalSpec {
  arrival: 'constant' | 'poisson';
  /** Requests per second for this stream. */
  rate: number;
  seed: number;
  label: string;
}

/** Yields offsets (ms from the schedule's start) of successive arrivals, forever. */
export function* arrivals(spec: ArrivalSpec): Generator<number, never> {
  const mean = 1000 / spec.rate;
  if (spec.arrival === 'constant') {
    // Streams are phase-shifted so several constant streams don't fire in the same instant.
    const phase = seededRandom(deriveSeed(spec.seed, spec.label)).next() * mean;
    for (let i = 0; ; i++) yield phase + i * mean;
  }
  const rng = seededRandom(deriveSeed(spec.seed, spec.label));
  let t = 0;
  for (;;) {
    t += exponential(rng, mean);
    yield t;
  }
}
