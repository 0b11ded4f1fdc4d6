import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DegradedJudge } from '../../../src/detect/degraded.js';
import { FaultWindows, NodeDetector, type Observation, type StateChange } from '../../../src/detect/detector.js';

const rec = (mix: string, sentAt: number, e2eMs: number, outcome: 'ok' | 'timeout' = 'ok') => ({ mix, sentAt, e2eMs, outcome });

describe('DegradedJudge', () => {
  it('a success later than twice its kind’s baseline p50 is degraded; the baseline ends at the first fault', () => {
    const j = new DegradedJudge(30_000);
    for (let i = 0; i < 20; i++) expect(j.judge(rec('short', i * 100, 100 + i))).toBe('ok'); // p50 109
    for (let i = 0; i < 20; i++) j.judge(rec('long', i * 100, 1000));
    j.close(5000); // a fault
    expect(j.judge(rec('short', 6000, 218))).toBe('ok');
    expect(j.judge(rec('short', 6000, 219))).toBe('degraded');
    expect(j.judge(rec('long', 6000, 1500))).toBe('ok'); // its own kind's baseline
    expect(j.judge(rec('short', 6000, 5000, 'timeout'))).toBe('timeout'); // failures stay what they are
    expect(j.baselines()).toEqual([
      { mix: 'short', samples: 20, p50Ms: 109, thresholdMs: 218 },
      { mix: 'long', samples: 20, p50Ms: 1000, thresholdMs: 2000 },
    ]);
  });

  it('a request sent during the baseline and reported after it still counts there, and is not judged', () => {
    const j = new DegradedJudge(1000);
    for (let i = 0; i < 10; i++) j.judge(rec('m', i, 100));
    expect(j.judge(rec('m', 999, 10_000))).toBe('ok');
    expect(j.judge(rec('m', 1000, 10_000))).toBe('degraded');
  });

  it('too few successes in the baseline: nothing is judged degraded', () => {
    const j = new DegradedJudge(1000);
    for (let i = 0; i < 9; i++) j.judge(rec('m', i, 100));
    expect(j.judge(rec('m', 2000, 100_000))).toBe('ok');
    expect(j.baselines()).toEqual([]);
  });

  it('the threshold is twice an observed median (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 10_000 }), { minLength: 10, maxLength: 200 }), (xs) => {
        const j = new DegradedJudge(1e9);
        for (const x of xs) j.judge(rec('m', 0, x));
        j.close(1);
        const b = j.baselines()[0] as { p50Ms: number; thresholdMs: number };
        expect(xs).toContain(b.p50Ms);
        expect(xs.filter((x) => x <= b.p50Ms).length * 2).toBeGreaterThanOrEqual(xs.length);
        expect(j.judge(rec('m', 2, b.thresholdMs))).toBe('ok');
        expect(j.judge(rec('m', 2, b.thresholdMs + 1))).toBe('degraded');
      }),
    );
  });
});

describe('NodeDetector: degraded state', () => {
  const setup = () => {
    const changes: StateChange[] = [];
    const d = new NodeDetector('n', { probeFailures: 2, errorBurst: 5, recoveryLimitMs: 60_000 }, new FaultWindows(0), () => 0, () => undefined, 'n', (c) => changes.push(c));
    const req = (endAt: number, outcome: 'ok' | 'degraded' | 'conn_error'): Observation => ({ type: 'request', sentAt: endAt - 100, respondedAt: outcome === 'conn_error' ? null : endAt - 90, endAt, outcome });
    return { d, changes, feed: (o: Observation) => d.observe(o), req };
  };

  it('half the recent requests degraded: the node is degraded, serving; five plain successes bring it back up', () => {
    const { d, changes, feed, req } = setup();
    feed(req(1000, 'ok'));
    feed(req(1100, 'degraded'));
    expect(d.state).toBe('up'); // too few to judge
    feed(req(1200, 'degraded'));
    expect(d.state).toBe('degraded');
    for (let t = 1300; t < 1700; t += 100) feed(req(t, 'ok'));
    expect(d.state).toBe('degraded');
    feed(req(1800, 'ok'));
    expect(d.state).toBe('up');
    expect(changes.map((c) => `${c.state}@${c.at}`)).toEqual(['degraded@1100', 'up@0']);
  });

  it('a failure below the episode threshold makes it degraded, not down; a burst opens an episode and clears degraded', () => {
    const { d, feed, req } = setup();
    for (let t = 1000; t < 1300; t += 100) feed(req(t, 'ok'));
    feed(req(1300, 'conn_error'));
    expect(d.state).toBe('degraded');
    for (let t = 1400; t < 1900; t += 100) feed(req(t, 'conn_error'));
    expect(d.state).toBe('down');
  });

  it('degraded requests are successes: they end an episode', () => {
    const { d, feed, req } = setup();
    feed({ type: 'docker', action: 'die', at: 1000, exitCode: 137 });
    expect(d.state).toBe('down');
    feed(req(2000, 'degraded'));
    expect(d.state).not.toBe('down');
    expect(d.openEpisode).toBeNull();
  });
});
