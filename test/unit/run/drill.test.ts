import { describe, expect, it } from 'vitest';
import { drillPlan, drillUntil, paramValue, parseParamPairs } from '../../../src/run/drill.js';
import type { RunView } from '../../../src/run/runner.js';

const base = { target: 'sim-a', params: {}, rate: 2, baselineMs: 5000, settleMs: 3000, recoveryLimit: '60s' };

describe('drill flags', () => {
  it('--param values: numbers, booleans, JSON, and durations stay text', () => {
    expect(paramValue('0.3')).toBe(0.3);
    expect(paramValue('true')).toBe(true);
    expect(paramValue('["a","b"]')).toEqual(['a', 'b']);
    expect(paramValue('300ms')).toBe('300ms');
    expect(() => paramValue('[oops')).toThrow(/looks like JSON but is not valid JSON/);
    expect(parseParamPairs(['share=0.3', 'mode=pressure'])).toEqual({ share: '0.3', mode: 'pressure' });
    expect(() => parseParamPairs(['share'])).toThrow(/--param "share": expected key=value/);
  });

  it('builds a validated plan: --duration goes to the fault, a bad param is named with what was expected', async () => {
    const plan = await drillPlan({ ...base, kind: 'hang', duration: '4s' }, null);
    expect(plan.faults[0]).toMatchObject({ kind: 'hang', target: 'sim-a', at: 5000, params: { duration: 4000 } });
    expect(plan.targets[0]).toMatchObject({ name: 'sim-a', label: 'sim-a' });
    const stop = await drillPlan({ ...base, kind: 'node-kill', duration: '10s' }, null);
    expect(stop.faults[0]?.params).toMatchObject({ mode: 'stop', down_for: 10_000 });
    await expect(drillPlan({ ...base, kind: 'packet-loss', duration: '5s', params: { share: '2' } }, null)).rejects.toThrow(/faults\[0\]\.params\.share: got 2; expected share at most 1/);
    await expect(drillPlan({ ...base, kind: 'meteor' }, null)).rejects.toThrow(/kind: got "meteor"; expected one of .*node-kill/);
  });

  it('ends once the fault is done and reverted and every node has been up for the settle time', () => {
    const until = drillUntil(3000);
    const v = (over: Partial<RunView>): RunView => ({ elapsedMs: 0, faultsDone: 1, faultsTotal: 1, activeFaults: 0, allUp: true, lastServingAgainAt: null, now: 0, ...over });
    expect(until(v({ faultsDone: 0, now: 1000 }))).toBe(false);
    expect(until(v({ activeFaults: 1, now: 2000 }))).toBe(false);
    expect(until(v({ now: 3000 }))).toBe(false);
    expect(until(v({ allUp: false, now: 5000 }))).toBe(false); // a new episode resets the settle time
    expect(until(v({ now: 6000 }))).toBe(false);
    expect(until(v({ now: 9000 }))).toBe(true);
  });
});
