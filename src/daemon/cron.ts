// Cron schedules on Gauntlet's clock. node-cron reads and matches the expressions (five fields,
// minute first, or a nickname such as @daily; in an IANA time zone); the waiting is done on the
// injected Clock, so a schedule fires on a virtual clock in a test exactly as on the real one.
// The next fire time is found by asking node-cron whether each following minute matches, in
// epoch time, so daylight-saving changes are the time zone's business: a time that does not
// exist that day (spring forward) does not fire, one that happens twice (fall back) fires twice.
import { createTask, parse, validateDetailed, type ScheduledTask } from 'node-cron';
import type { Clock } from '../util/clock.js';

const MINUTE = 60_000;
/**
 * The longest single wait: the scheduler then looks at the wall clock again, so a clock set
 * right (NTP after boot) or a suspended host moves the fire time to where the wall says.
 */
const MAX_WAIT_MS = 60_000;
/** A schedule with no fire time within a year is looked at again this much later. */
const RETRY_MS = 24 * 3_600_000;
/** How far ahead a next fire time is searched: a schedule that never fires within it is refused. */
const HORIZON_MS = 366 * 24 * 3_600_000;

function matcher(expr: string, timezone: string): ScheduledTask {
  return createTask(expr, () => undefined, { timezone, name: `gauntlet-match-${expr}` });
}

/** Why the expression cannot be a schedule here, or null. */
export function cronProblem(expr: string, timezone: string): string | null {
  const trimmed = expr.trim();
  if (!trimmed.startsWith('@') && trimmed.split(/\s+/).length === 6) return 'six fields (with seconds) are not taken: a schedule fires at most once a minute; give five (minute hour day month weekday)';
  let v: ReturnType<typeof validateDetailed>;
  try {
    v = validateDetailed(trimmed);
  } catch (err) {
    return `not a cron expression: ${(err as Error).message}`;
  }
  if (!v.valid) return `not a cron expression: ${v.errors.map((e) => `${e.field}${e.value !== undefined ? ` "${e.value}"` : ''}: ${e.message}`).join('; ')}`;
  if (nextFire(trimmed, timezone, Date.UTC(2026, 0, 1)) === null) return 'it never fires within a year (a date that does not exist, such as 31 February?)';
  return null;
}

interface Matcher {
  task: ScheduledTask;
  months: Set<number>;
  hours: Set<number>;
  minutes: Set<number>;
  /** Local month, hour and minute of an epoch time in the schedule's zone. */
  local: Intl.DateTimeFormat;
}

const matchers = new Map<string, Matcher>();

function matcherFor(expr: string, timezone: string): Matcher {
  const key = `${timezone}\u0000${expr}`;
  let m = matchers.get(key);
  if (!m) {
    const f = parse(expr);
    m = {
      task: matcher(expr, timezone),
      months: new Set(f.month),
      hours: new Set(f.hour),
      minutes: new Set(f.minute),
      local: new Intl.DateTimeFormat('en-US', { timeZone: timezone, month: 'numeric', hour: 'numeric', minute: 'numeric', hourCycle: 'h23' }),
    };
    matchers.set(key, m);
  }
  return m;
}

/**
 * The first whole minute strictly after `afterMs` the expression matches in the time zone, or
 * null within a year. node-cron decides every match; the walk only skips, in the zone's local
 * time, the rest of a day whose month is not in the expression, the rest of an hour not in it,
 * and minutes not in it (a minute-by-minute walk asking node-cron was ~7 s for a yearly one).
 */
export function nextFire(expr: string, timezone: string, afterMs: number): number | null {
  const m = matcherFor(expr, timezone);
  const first = Math.floor(afterMs / MINUTE) * MINUTE + MINUTE;
  for (let t = first; t - first <= HORIZON_MS; ) {
    let month = 0;
    let hour = 0;
    let minute = 0;
    for (const p of m.local.formatToParts(t)) {
      if (p.type === 'month') month = Number(p.value);
      else if (p.type === 'hour') hour = Number(p.value);
      else if (p.type === 'minute') minute = Number(p.value);
    }
    // (to the local day's last hour, the next hour or the next minute: never past a local
    // midnight, so a 23- or 25-hour day is walked as it is; a zone change is re-read there)
    if (!m.months.has(month) && hour < 23) t += ((23 - hour) * 60 - minute) * MINUTE;
    else if (!m.months.has(month)) t += (60 - minute) * MINUTE;
    else if (!m.hours.has(hour)) t += (60 - minute) * MINUTE;
    else if (!m.minutes.has(minute) || !m.task.match(new Date(t))) t += MINUTE;
    else return t;
  }
  return null;
}

export interface CronEntry {
  name: string;
  cron: string;
  timezone: string;
}

/**
 * Fires each entry at its times on the clock. `fire` gets the entry and the time it was due;
 * the next time is armed before `fire` runs, and what `fire` throws goes to `onError`, so a
 * slow or failing fire never loses a schedule (nor kills the process from a timer).
 */
export class CronScheduler {
  private readonly armed = new Map<string, { cancel: () => void; at: number | null }>();
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly fire: (entry: CronEntry, dueAt: number) => void,
    /** A fire that threw (the schedule stays armed), or a schedule with no time within a year; default: ignored. */
    private readonly onError: (entry: CronEntry, err: unknown) => void = () => undefined,
    /**
     * The wall clock fire times are read on (default: the clock's own time). The daemon passes
     * Date.now: a real clock's now() is monotonic from its start and does not follow a clock
     * that is set right, nor count a suspend.
     */
    private readonly wall: () => number = () => clock.now(),
  ) {}

  add(entry: CronEntry): void {
    if (this.armed.has(entry.name)) throw new Error(`schedule ${entry.name} is already armed`);
    this.arm(entry, this.wall());
  }

  /** When the entry fires next (epoch ms), or null. */
  next(name: string): number | null {
    return this.armed.get(name)?.at ?? null;
  }

  stop(): void {
    this.stopped = true;
    for (const a of this.armed.values()) a.cancel();
    this.armed.clear();
  }

  private arm(entry: CronEntry, after: number): void {
    if (this.stopped) return;
    const at = nextFire(entry.cron, entry.timezone, after);
    if (at !== null) return this.wait(entry, at);
    this.onError(entry, new Error(`${entry.cron} (${entry.timezone}) has no fire time within a year of ${new Date(after).toISOString()}; looked at again in a day`));
    const cancel = this.clock.after(RETRY_MS, () => this.arm(entry, this.wall()));
    this.armed.set(entry.name, { cancel, at: null });
  }

  /** Waits for `at` on the wall clock, a minute at most at a time. */
  private wait(entry: CronEntry, at: number): void {
    const step = Math.min(Math.max(0, at - this.wall()), MAX_WAIT_MS);
    const cancel = this.clock.after(step, () => {
      if (this.stopped) return;
      if (this.wall() < at) return this.wait(entry, at);
      this.arm(entry, at);
      try {
        this.fire(entry, at);
      } catch (err) {
        this.onError(entry, err);
      }
    });
    this.armed.set(entry.name, { cancel, at });
  }
}
