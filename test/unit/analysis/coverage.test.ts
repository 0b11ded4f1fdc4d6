// Does the MTBF interval mean what it says? Seeded failure histories with a known MTBF, against
// the exact coverage from the Poisson distribution; and the test-length answers of plan-test.
import { describe, expect, it } from 'vitest';
import { estimateMtbf, exactCoverage, planTest } from '../../../src/analysis/mtbf.js';
import { exponential, seededRandom } from '../../../src/util/random.js';

/** Failures of `nodes` nodes over `hours` each, at exponential gaps of mean `mtbf`, pooled. */
function failures(seed: number, nodes: number, hours: number, mtbf: number): number {
  const rng = seededRandom(seed);
  let r = 0;
  for (let n = 0; n < nodes; n++) for (let t = exponential(rng, mtbf); t <= hours; t += exponential(rng, mtbf)) r++;
  return r;
}

describe('MTBF interval coverage', () => {
  for (const [mtbf, nodes, hours] of [[100, 8, 72], [20, 2, 72], [1000, 8, 72]] as const) {
    it(`MTBF ${mtbf} h, ${nodes} nodes × ${hours} h: the 90 % two-sided interval covers the truth in ≥ 90 % of 1000 histories, as the exact coverage says`, () => {
      const n = 1000;
      let covered = 0;
      for (let i = 0; i < n; i++) {
        const r = failures(7000 + i, nodes, hours, mtbf);
        const [lo, hi] = estimateMtbf(nodes * hours, r, 0.9, 1).interval_hours;
        if (lo <= mtbf && (hi === null || mtbf <= hi)) covered++;
      }
      const exact = exactCoverage(mtbf, nodes * hours, 0.9);
      const observed = covered / n;
      const se = Math.sqrt((exact * (1 - exact)) / n);
      process.stderr.write(`coverage: MTBF ${mtbf} h on ${nodes}×${hours} h: observed ${observed.toFixed(3)}, exact ${exact.toFixed(4)} (±${(3.5 * se).toFixed(3)})\n`);
      expect(exact).toBeGreaterThanOrEqual(0.9);
      expect(observed).toBeGreaterThanOrEqual(0.9);
      expect(Math.abs(observed - exact)).toBeLessThanOrEqual(3.5 * se + 1e-9);
    });
  }

  it('the χ² interval of a time-terminated test is conservative: about 0.95 exact coverage for MTBF 100 h on 8 nodes × 72 h', () => {
    const c = exactCoverage(100, 576, 0.9);
    expect(c).toBeGreaterThan(0.93);
    expect(c).toBeLessThan(0.97);
  });
});

describe('plan-test', () => {
  it('72 h on one node with no failure shows MTBF ≥ 44.7 h at 80 % (DESIGN.md), not 1000 h', () => {
    const a = planTest({ targetHours: 1000, confidence: 0.8, nodes: 1, runHours: 72 });
    expect(a.run?.lowerBounds[0]?.hours).toBeCloseTo(44.74, 2);
  });

  it('node-hours to show the target: θ·χ²(C; 2r+2)/2 — 2.303·θ with no failure at 90 %, 3.890·θ with one, 5.322·θ with two (the NIST/SEMATECH test-length factors)', () => {
    const a = planTest({ targetHours: 1000, confidence: 0.9, nodes: 8 });
    expect(a.byFailures.map((f) => f.nodeHours / 1000)).toEqual([expect.closeTo(2.303, 3), expect.closeTo(3.890, 3), expect.closeTo(5.322, 3)]);
    expect(a.byFailures[0]?.wallHours).toBeCloseTo(2302.6 / 8, 1);
    // at 80 %: 1.609, 2.994, 4.279
    expect(planTest({ targetHours: 1, confidence: 0.8, nodes: 1 }).byFailures.map((f) => f.nodeHours)).toEqual([expect.closeTo(1.609, 3), expect.closeTo(2.994, 3), expect.closeTo(4.279, 3)]);
  });

  it('refuses nonsense', () => {
    expect(() => planTest({ targetHours: 0, confidence: 0.9, nodes: 1 })).toThrow(/target/);
    expect(() => planTest({ targetHours: 10, confidence: 1, nodes: 1 })).toThrow(/confidence/);
    expect(() => planTest({ targetHours: 10, confidence: 0.9, nodes: 1.5 })).toThrow(/nodes/);
  });
});
