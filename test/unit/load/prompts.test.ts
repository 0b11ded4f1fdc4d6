import { describe, expect, it } from 'vitest';
import { buildCorpus, chunkedCorpus, splitCorpus } from '../../../src/load/prompts.js';
import { seededRandom } from '../../../src/util/random.js';

describe('the synthetic-prompt corpus, shared in pieces (as k6 holds it)', () => {
  const text = buildCorpus();

  it('a slice read piece by piece is the same text as from the whole string, at any offsets', () => {
    for (const size of [1, 7, 4096, text.length, text.length + 10]) {
      const c = chunkedCorpus(splitCorpus(text, size), size);
      expect(c.length).toBe(text.length);
      const rng = seededRandom(size);
      for (let i = 0; i < 200; i++) {
        const a = Math.floor(rng.next() * text.length);
        const b = a + Math.floor(rng.next() * Math.min(20_000, text.length - a + 5));
        expect(c.slice(a, b)).toBe(text.slice(a, b));
      }
      expect(c.slice(0, text.length)).toBe(text);
      expect(c.slice(10, 10)).toBe('');
      expect(c.slice(-5, 3)).toBe(text.slice(0, 3));
    }
  });

  it('is the same seeded text every time (both engines send the same prompts)', () => {
    expect(buildCorpus()).toBe(text);
    expect(text.length).toBeGreaterThanOrEqual(1 << 18);
    expect(chunkedCorpus([], 4096).slice(0, 10)).toBe('');
  });
});
