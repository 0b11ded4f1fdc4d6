import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newHistogram, recordMs, summarizeHistogram, toUs } from '../../../src/analysis/histogram.js';

describe('summarizeHistogram', () => {
  it('percentiles from the recorded values equal hdr-histogram-js walking its buckets (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 120_000, noNaN: true }), { minLength: 1, maxLength: 600 }), (ms) => {
        const h = newHistogram();
        for (const v of ms) recordMs(h, v);
        const sum = ms.reduce((a, b) => a + b, 0);
        const fromValues = summarizeHistogram(h, sum, ms.map(toUs));
        const fromBuckets = summarizeHistogram(h, sum);
        expect(fromValues).toEqual(fromBuckets);
        h.destroy();
      }),
      { numRuns: 200 },
    );
  });
});
