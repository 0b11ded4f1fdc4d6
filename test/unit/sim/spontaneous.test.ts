import { describe, expect, it } from 'vitest';
import { parseSimArgs } from '../../../src/sim/options.js';
import { weibull } from '../../../src/sim/spontaneous.js';
import { seededRandom } from '../../../src/util/random.js';

describe('spontaneous faults of the simulator', () => {
  it.each([0.7, 1, 1.5, 3])('Weibull times with shape %s have the asked-for mean (20 000 seeded draws, within 3 %)', (shape) => {
    const rng = seededRandom(7);
    let sum = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) sum += weibull(rng, 100, shape);
    expect(sum / n).toBeGreaterThan(97);
    expect(sum / n).toBeLessThan(103);
  });

  it('shape 1 is exponential: the share surviving past the mean is e^-1', () => {
    const rng = seededRandom(11);
    let past = 0;
    for (let i = 0; i < 20_000; i++) if (weibull(rng, 50, 1) > 50) past++;
    expect(past / 20_000).toBeCloseTo(Math.exp(-1), 1);
  });

  it('parses the options, and names a bad kind', () => {
    expect(parseSimArgs(['--spontaneous-mtbf-s', '30', '--spontaneous-kind', 'hang', '--spontaneous-shape', '1.5', '--spontaneous-duration-ms', '2000'])).toMatchObject({
      spontaneousMtbfS: 30,
      spontaneousKind: 'hang',
      spontaneousShape: 1.5,
      spontaneousDurationMs: 2000,
    });
    expect(() => parseSimArgs(['--spontaneous-kind', 'meteor'])).toThrow(/--spontaneous-kind: expected one of crash, hang, errors, got "meteor"/);
    expect(() => parseSimArgs(['--profile', 'tgi'])).toThrow(/--profile: expected one of default, llamacpp/);
    expect(parseSimArgs(['--profile', 'llamacpp']).httpThreads).toBe(6);
    expect(parseSimArgs(['--profile', 'llamacpp', '--http-threads', '2']).httpThreads).toBe(2);
  });
});
