// The daemon's config (gauntlet.yaml): where it listens, where it keeps its data, and its
// schedules — each a cron expression in a time zone naming a plan, with what to do when it
// fires while a run holds the same targets. Checked as a plan is: every problem at once, at its
// line, and each schedule's plan loaded and validated too, so a typo fails at start, not at 2 am.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { GauntletError, isGauntletError } from '../errors.js';
import { checkDocument, loadPlanFile } from '../plan/load.js';
import { cronProblem } from './cron.js';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected a name of letters, digits, ".", "_" or "-" (at most 63)');

const Schedule = z.strictObject({
  name,
  /** Five fields (minute hour day month weekday) or six (seconds first), as node-cron reads them. */
  cron: z.string().min(1),
  timezone: z.string().min(1).default('UTC'),
  /** The plan file, relative to the config file. */
  plan: z.string().min(1),
  /** Fired while a run holds any of the plan's targets: skip it (recorded) or queue it (one waits). */
  when_busy: z.enum(['skip', 'queue']).default('skip'),
  enabled: z.boolean().default(true),
});

export const DaemonConfigSchema = z.strictObject({
  listen: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65_535).default(7878),
    })
    .prefault({}),
  /** The database, the API token, the log: relative to the config file. */
  data_dir: z.string().min(1).default('.gauntlet'),
  reports_dir: z.string().min(1).default('reports'),
  /** Routes served without the token (the others all need it). */
  public_routes: z.array(z.enum(['/health', '/metrics'])).default(['/health', '/metrics']),
  log: z
    .strictObject({
      file: z.string().min(1).default('daemon.log'),
      max_bytes: z.number().int().min(65_536).default(10 * 1024 * 1024),
      keep: z.number().int().min(1).max(100).default(5),
    })
    .prefault({}),
  schedules: z.array(Schedule).default([]),
});

export type DaemonConfig = z.output<typeof DaemonConfigSchema>;
export type ScheduleConfig = DaemonConfig['schedules'][number];

/** Whether the time zone is one this Node knows (an IANA name such as Europe/Berlin). */
function knownZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses and checks a config. `base` is the folder relative paths start from (the config
 * file's). Each schedule's plan is loaded: a plan that does not validate is a config problem.
 */
export function parseDaemonConfig(text: string, source: string, base: string): DaemonConfig {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const config = checkDocument(DaemonConfigSchema, text, source, { yaml: 'GAUNTLET_CONFIG_YAML', invalid: 'GAUNTLET_CONFIG_INVALID' }, (raw, add) => {
    const schedules = typeof raw === 'object' && raw !== null && Array.isArray((raw as { schedules?: unknown }).schedules) ? ((raw as { schedules: unknown[] }).schedules) : [];
    const names = new Set<string>();
    schedules.forEach((s, i) => {
      if (typeof s !== 'object' || s === null) return;
      const x = s as Record<string, unknown>;
      if (typeof x.name === 'string') {
        if (names.has(x.name)) add(['schedules', i, 'name'], `got ${JSON.stringify(x.name)}; schedule names must be unique`);
        names.add(x.name);
      }
      const tz = typeof x.timezone === 'string' ? x.timezone : 'UTC';
      if (typeof x.timezone === 'string' && !knownZone(x.timezone)) add(['schedules', i, 'timezone'], `got ${JSON.stringify(x.timezone)}; expected an IANA time zone such as UTC or Europe/Berlin`);
      if (typeof x.cron === 'string') {
        const why = cronProblem(x.cron, knownZone(tz) ? tz : 'UTC');
        if (why) add(['schedules', i, 'cron'], `got ${JSON.stringify(x.cron)}; ${why}`);
      }
      if (typeof x.plan === 'string') {
        try {
          loadPlanFile(at(x.plan));
        } catch (err) {
          if (!isGauntletError(err)) throw err;
          add(['schedules', i, 'plan'], `${x.plan}: ${err.message.split('\n').slice(0, 4).join(' ').replace(/\s+/g, ' ')}`);
        }
      }
    });
  });
  return {
    ...config,
    data_dir: at(config.data_dir),
    reports_dir: at(config.reports_dir),
    schedules: config.schedules.map((s) => ({ ...s, plan: at(s.plan) })),
  };
}

export function loadDaemonConfig(path: string): DaemonConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new GauntletError('GAUNTLET_CONFIG_UNREADABLE', [path, (err as NodeJS.ErrnoException).code ?? (err as Error).message]);
  }
  return parseDaemonConfig(text, path, dirname(resolve(path)));
}

/** The config of a daemon started without one: no schedules, the defaults, paths from `base`. */
export function defaultDaemonConfig(base: string): DaemonConfig {
  return parseDaemonConfig('{}', '(defaults)', base);
}
