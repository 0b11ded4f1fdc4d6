// Schedules on Gauntlet's clock: node-cron reads and matches the expressions, the waiting is on
// the injected clock, so a nightly schedule fires on a virtual clock at the right instants.
import { describe, expect, it } from 'vitest';
import { CronScheduler, cronProblem, nextFire } from '../../../src/daemon/cron.js';
import { VirtualClock } from '../../../src/util/clock.js';

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

describe('nextFire', () => {
  it('finds the next local time in the schedule’s zone, strictly after the given time', () => {
    expect(iso(nextFire('0 2 * * *', 'UTC', Date.UTC(2026, 11, 1, 12)))).toBe('2026-12-02T02:00:00.000Z');
    expect(iso(nextFire('0 2 * * *', 'Europe/Berlin', Date.UTC(2026, 11, 1, 12)))).toBe('2026-12-02T01:00:00.000Z'); // CET = UTC+1
    expect(iso(nextFire('0 2 * * *', 'Europe/Berlin', Date.UTC(2026, 6, 1, 12)))).toBe('2026-07-02T00:00:00.000Z'); // CEST = UTC+2
    expect(iso(nextFire('30 1 * * *', 'Asia/Kolkata', Date.UTC(2026, 11, 1, 12)))).toBe('2026-12-01T20:00:00.000Z'); // UTC+5:30
    // exactly at a fire time: the next one, not this one
    expect(iso(nextFire('0 2 * * *', 'UTC', Date.UTC(2026, 11, 2, 2)))).toBe('2026-12-03T02:00:00.000Z');
    expect(iso(nextFire('*/15 * * * *', 'UTC', Date.UTC(2026, 11, 2, 2, 7, 30)))).toBe('2026-12-02T02:15:00.000Z');
  });

  it('weekdays, months and a yearly schedule', () => {
    // 2026-12-01 is a Tuesday: the next Monday 02:00 is the 7th
    expect(iso(nextFire('0 2 * * 1', 'UTC', Date.UTC(2026, 11, 1)))).toBe('2026-12-07T02:00:00.000Z');
    expect(iso(nextFire('0 0 1 1 *', 'UTC', Date.UTC(2026, 0, 1, 0, 1)))).toBe('2027-01-01T00:00:00.000Z');
    expect(iso(nextFire('0 3 15 6 *', 'America/New_York', Date.UTC(2026, 11, 1)))).toBe('2027-06-15T07:00:00.000Z'); // EDT = UTC-4
  });

  it('daylight saving: a local time that does not exist that day does not fire, the schedule goes on the next day', () => {
    // Europe/Berlin springs forward on 2026-03-29 at 02:00 → 03:00: 02:30 does not exist then
    expect(iso(nextFire('30 2 * * *', 'Europe/Berlin', Date.UTC(2026, 2, 28, 12)))).toBe('2026-03-30T00:30:00.000Z');
    // a month-restricted schedule across the 23-hour day (the walk used to jump a whole day past it)
    expect(iso(nextFire('30 0 1 4 *', 'Europe/Berlin', Date.UTC(2024, 2, 1)))).toBe('2024-03-31T22:30:00.000Z');
    expect(iso(nextFire('30 0 * 4 *', 'Europe/Berlin', Date.UTC(2024, 2, 1)))).toBe('2024-03-31T22:30:00.000Z');
    // and the day before and after keep their local time
    expect(iso(nextFire('30 2 * * *', 'Europe/Berlin', Date.UTC(2026, 2, 27, 12)))).toBe('2026-03-28T01:30:00.000Z');
  });
});

describe('cronProblem', () => {
  it('says what is wrong with an expression, and takes nicknames', () => {
    expect(cronProblem('0 2 * * *', 'UTC')).toBeNull();
    expect(cronProblem('@daily', 'UTC')).toBeNull();
    expect(cronProblem('61 * * * *', 'UTC')).toMatch(/minute "61"/);
    expect(cronProblem('bogus', 'UTC')).toMatch(/expected 5 or 6 fields/);
    expect(cronProblem('0 0 31 2 *', 'UTC')).toMatch(/impossible day of month|never fires/);
    expect(cronProblem('* * * * * *', 'UTC')).toMatch(/six fields/);
  });
});

describe('CronScheduler on a virtual clock', () => {
  it('fires each schedule at its times, arms the next before firing, and stops', async () => {
    const start = Date.UTC(2026, 11, 1, 0, 0, 30);
    const clock = new VirtualClock(start);
    const fired: string[] = [];
    const s = new CronScheduler(clock, (e, due) => {
      fired.push(`${e.name}@${iso(due)}`);
    });
    s.add({ name: 'nightly', cron: '0 2 * * *', timezone: 'UTC' });
    s.add({ name: 'hourly', cron: '0 * * * *', timezone: 'UTC' });
    expect(iso(s.next('nightly'))).toBe('2026-12-01T02:00:00.000Z');
    expect(() => s.add({ name: 'hourly', cron: '0 * * * *', timezone: 'UTC' })).toThrow(/already armed/);
    for (let i = 0; i < 10_000 && clock.now() < start + 2 * 86_400_000; i++) {
      const next = clock.nextDue();
      if (next === null) break;
      await clock.advance(Math.max(0, Math.min(next, start + 2 * 86_400_000) - clock.now()));
    }
    expect(fired.filter((f) => f.startsWith('nightly'))).toEqual(['nightly@2026-12-01T02:00:00.000Z', 'nightly@2026-12-02T02:00:00.000Z']);
    expect(fired.filter((f) => f.startsWith('hourly'))).toHaveLength(48);
    expect(iso(s.next('nightly'))).toBe('2026-12-03T02:00:00.000Z');
    s.stop();
    expect(clock.pending).toBe(0);
    expect(s.next('nightly')).toBeNull();
  });

  it('follows the wall clock: a clock set right while waiting (NTP after boot) moves the fire to the wall’s time', async () => {
    const clock = new VirtualClock(Date.UTC(2026, 11, 1, 0, 0));
    let offset = 0;
    const fired: string[] = [];
    const s = new CronScheduler(clock, (_e, due) => fired.push(`${iso(due)} at wall ${iso(clock.now() + offset)}`), undefined, () => clock.now() + offset);
    s.add({ name: 'nightly', cron: '0 2 * * *', timezone: 'UTC' });
    await clock.advance(30 * 60_000); // 00:30
    offset = 60 * 60_000; // the wall clock was an hour slow: it is 01:30
    for (let i = 0; i < 200 && fired.length === 0; i++) await clock.advance((clock.nextDue() as number) - clock.now());
    // fired at 02:00 by the wall, an hour of the monotonic clock earlier than it would have
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatch(/^2026-12-01T02:00:00\.000Z at wall 2026-12-01T02:00/);
    expect(clock.now()).toBeLessThan(Date.UTC(2026, 11, 1, 1, 1));
    s.stop();
  });

  it('a fire that throws is reported and does not lose the schedule', async () => {
    const clock = new VirtualClock(Date.UTC(2026, 11, 1));
    let n = 0;
    const errors: string[] = [];
    const s = new CronScheduler(
      clock,
      () => {
        n++;
        throw new Error('a fire that throws');
      },
      (e, err) => errors.push(`${e.name}: ${(err as Error).message}`),
    );
    s.add({ name: 'boom', cron: '* * * * *', timezone: 'UTC' });
    for (let i = 0; i < 3; i++) {
      const next = clock.nextDue() as number;
      await clock.advance(next - clock.now());
    }
    expect(n).toBe(3);
    expect(errors).toEqual(['boom: a fire that throws', 'boom: a fire that throws', 'boom: a fire that throws']);
    expect(s.next('boom')).not.toBeNull();
    s.stop();
  });
});
