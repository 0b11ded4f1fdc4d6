import { describe, expect, it } from 'vitest';
import { ScaledClock, sleepOn, VirtualClock, type Clock } from '../../../src/util/clock.js';

describe('VirtualClock', () => {
  it('fires timers in time order (ties in the order set), only when time reaches them', async () => {
    const c = new VirtualClock(1000);
    const fired: string[] = [];
    c.after(50, () => fired.push(`b@${c.now()}`));
    c.after(10, () => fired.push(`a@${c.now()}`));
    c.after(50, () => fired.push(`c@${c.now()}`));
    await c.advance(40);
    expect(fired).toEqual(['a@1010']);
    await c.advance(10);
    expect(fired).toEqual(['a@1010', 'b@1050', 'c@1050']);
    expect(c.now()).toBe(1050);
  });

  it('a cancelled timer never fires; sleep rejects with the signal reason when aborted', async () => {
    const c = new VirtualClock(0);
    let fired = false;
    const cancel = c.after(10, () => (fired = true));
    cancel();
    await c.advance(20);
    expect(fired).toBe(false);
    const ac = new AbortController();
    const slept = c.sleep(100, ac.signal);
    ac.abort(new Error('stop'));
    await expect(slept).rejects.toThrow('stop');
    expect(c.pending).toBe(0);
  });

  it('deadline aborts with a TimeoutError at plan time, not wall time', async () => {
    const c = new VirtualClock(0);
    const s = c.deadline(3_600_000);
    await c.advance(3_599_999);
    expect(s.aborted).toBe(false);
    await c.advance(1);
    expect(s.aborted).toBe(true);
    expect((s.reason as Error).name).toBe('TimeoutError');
  });

  it('timers set by a firing timer, within the advance, fire in the same advance', async () => {
    const c = new VirtualClock(0);
    const at: number[] = [];
    const tick = (): void => {
      at.push(c.now());
      if (at.length < 5) c.after(100, tick);
    };
    c.after(100, tick);
    await c.advance(1000);
    expect(at).toEqual([100, 200, 300, 400, 500]);
    expect(c.nextDue()).toBeNull();
  });
});

describe('sleep on any clock', () => {
  it('never resolves before its time, though the timer under it fires early', async () => {
    // a clock whose timers fire 0.4 ms early, as Node's (on the loop's millisecond clock) can
    let now = 1000;
    const calls: number[] = [];
    const early = {
      now: () => now,
      after: (ms: number, fn: () => void) => {
        calls.push(ms);
        const t = setImmediate(() => {
          now += ms > 1 ? ms - 0.4 : ms; // (early by 0.4 ms; a short one on time)
          fn();
        });
        return () => clearImmediate(t);
      },
    } as unknown as Clock;
    await sleepOn(early, 20);
    expect(now).toBeGreaterThanOrEqual(1020);
    expect(calls).toEqual([20, expect.closeTo(0.4, 9)]);
    // aborted while waiting: rejects with the reason, and no timer is left armed
    const ac = new AbortController();
    const p = sleepOn(early, 50, ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
  });
});

describe('ScaledClock', () => {
  it('runs plan time N times faster: a plan-second sleep passes in a fiftieth of one, and epoch times map both ways', async () => {
    const c = new ScaledClock(50);
    // each plan-clock read between two real-clock reads: exact bounds however busy the machine
    // (a read pair taken apart by a preemption would skew a plain ratio)
    const r0 = performance.now();
    const planStart = c.now();
    const r1 = performance.now();
    await c.sleep(1000);
    const r2 = performance.now();
    const planEnd = c.now();
    const r3 = performance.now();
    const planElapsed = planEnd - planStart;
    expect(planElapsed).toBeGreaterThanOrEqual(1000);
    // the plan time that passed is the real time that passed, × 50
    // (epoch-ms floats: a few ten-thousandths of a ms of rounding)
    expect(planElapsed / 50).toBeGreaterThanOrEqual(r2 - r1 - 0.01);
    expect(planElapsed / 50).toBeLessThanOrEqual(r3 - r0 + 0.01);
    const t = Date.now();
    expect(c.toEpoch(c.fromEpoch(t))).toBeCloseTo(t, 3);
    expect(c.fromEpoch(t + 1000) - c.fromEpoch(t)).toBeCloseTo(50_000, 3);
    const s = c.deadline(500);
    await new Promise<void>((r) => s.addEventListener('abort', () => r(), { once: true }));
    expect((s.reason as Error).name).toBe('TimeoutError');
  });

  it('refuses a scale below 1', () => {
    expect(() => new ScaledClock(0.5)).toThrow(/≥ 1/);
  });
});
