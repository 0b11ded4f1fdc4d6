// Seeded randomness. Nothing in Gauntlet calls Math.random(): a run's arrivals and prompt
// choices are reproducible from its seed.

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
}

/** mulberry32: tiny, fast, good enough for load shaping (not for cryptography). */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return {
    next() {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/** Exponential variate with the given mean, for Poisson arrivals. */
export function exponential(rng: Random, mean: number): number {
  return -Math.log(1 - rng.next()) * mean;
}

/** A child seed derived from a parent seed and a label, so streams do not share sequences. */
export function deriveSeed(seed: number, label: string): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < label.length; i++) {
    h = Math.imul(h ^ label.charCodeAt(i), 16777619);
  }
  return h >>> 0;
}
