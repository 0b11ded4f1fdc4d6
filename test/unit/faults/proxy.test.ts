// The fault proxy's command line (faults/helpers/proxy.ts) and its seeded randomness, without
// running it: strict parsing names the bad flag; defaults are what the latency fault relies on.
import { describe, expect, it } from 'vitest';
import { parseArgs, seededRandom } from '../../../faults/helpers/proxy.js';

const BASE = ['--listen', '0.0.0.0:20001', '--upstream', '127.0.0.1:8000', '--duration-ms', '5000'];

function ok(argv: string[]) {
  const r = parseArgs(argv);
  if (!('options' in r)) throw new Error(`expected options, got ${JSON.stringify(r)}`);
  return r.options;
}

function error(argv: string[]): string {
  const r = parseArgs(argv);
  if (!('error' in r)) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r.error;
}

describe('proxy arguments', () => {
  it('defaults: responses delayed by nothing, no toxics, a fixed seed', () => {
    expect(ok(BASE)).toEqual({
      listen: { host: '0.0.0.0', port: 20001 },
      upstream: { host: '127.0.0.1', port: 8000 },
      durationMs: 5000,
      latencyMs: 0,
      jitterMs: 0,
      direction: 'down',
      bandwidthKbps: null,
      stall: false,
      resetProbability: 0,
      seed: 1,
      drainMs: 1000,
    });
  });

  it('every knob, in both --flag value and --flag=value forms', () => {
    const o = ok([
      ...BASE,
      '--latency-ms=300',
      '--jitter-ms',
      '20',
      '--direction',
      'both',
      '--per-chunk',
      '--bandwidth-kbps',
      '800',
      '--stall',
      '--reset-probability',
      '0.25',
      '--seed',
      '42',
      '--drain-ms',
      '0',
    ]);
    expect(o).toMatchObject({ latencyMs: 300, jitterMs: 20, direction: 'both', bandwidthKbps: 800, stall: true, resetProbability: 0.25, seed: 42, drainMs: 0 });
  });

  it('IPv6 addresses in brackets; port 0 only for --listen', () => {
    expect(ok(['--listen', '[::]:0', '--upstream', '[::1]:8000', '--duration-ms', '0'])).toMatchObject({ listen: { host: '::', port: 0 }, upstream: { host: '::1', port: 8000 } });
    expect(error(['--listen', '0.0.0.0:1', '--upstream', '127.0.0.1:0', '--duration-ms', '1'])).toMatch(/^--upstream: expected HOST:PORT/);
  });

  it.each([
    [['--bogus'], /^unknown flag --bogus$/],
    [['--latency-ms', 'abc'], /^--latency-ms: expected a whole number of milliseconds ≥ 0, got "abc"$/],
    [['--latency-ms', '-5'], /^--latency-ms needs a value$|^--latency-ms: /],
    [['--latency-ms', '1.5'], /^--latency-ms: /],
    [['--jitter-ms', '10'], /^--jitter-ms: needs --latency-ms/],
    [['--direction', 'sideways'], /^--direction: expected down, up or both, got "sideways"$/],
    [['--reset-probability', '1.5'], /^--reset-probability: expected a probability between 0 and 1/],
    [['--reset-probability', 'NaN'], /^--reset-probability: /],
    [['--bandwidth-kbps', '0'], /^--bandwidth-kbps: expected a whole number of kbit\/s ≥ 1/],
    [['--stall=yes'], /^--stall takes no value$/],
    [['--seed'], /^--seed needs a value$/],
    [['--latency-ms', '5', '--latency-ms', '6'], /^--latency-ms given twice$/],
    [['stray'], /^unexpected argument "stray"$/],
  ])('%j is refused, naming the flag', (extra, message) => {
    expect(error([...BASE, ...extra])).toMatch(message);
  });

  it.each([
    ['--listen', /^missing --listen$/],
    ['--upstream', /^missing --upstream$/],
    ['--duration-ms', /^missing --duration-ms$/],
  ])('without %s: refused', (flag, message) => {
    const argv = [...BASE];
    argv.splice(argv.indexOf(flag), 2);
    expect(error(argv)).toMatch(message);
  });

  it('malformed addresses are refused', () => {
    expect(error(['--listen', 'localhost', '--upstream', '127.0.0.1:1', '--duration-ms', '1'])).toMatch(/^--listen: expected HOST:PORT/);
    expect(error(['--listen', '1.2.3.4:70000', '--upstream', '127.0.0.1:1', '--duration-ms', '1'])).toMatch(/^--listen: /);
  });

  it('--help asks for the usage', () => {
    expect(parseArgs(['--help'])).toEqual({ help: true });
  });
});

describe('seeded randomness', () => {
  it('the same seed gives the same sequence, in [0, 1)', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    expect(seededRandom(8)()).not.toBe(seededRandom(7)());
  });
});
