// The one root logger. Components take child loggers bound to {runId, node, fault}.
// Logs are JSON lines on stderr, and for runs also in a log file beside the database.
import { existsSync, renameSync, statSync } from 'node:fs';
import { pino, type Logger, type DestinationStream } from 'pino';
import { GauntletError } from './errors.js';

export type { Logger };

const REDACT = ['token', 'authorization', '*.token', '*.authorization', 'headers.authorization'];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** GAUNTLET_LOG_LEVEL, checked: a level pino does not know is an error, not silently ignored. */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.GAUNTLET_LOG_LEVEL;
  if (v === undefined || v === '') return undefined;
  if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new GauntletError('GAUNTLET_ENV_INVALID', ['GAUNTLET_LOG_LEVEL', `got ${JSON.stringify(v)}; expected one of ${LOG_LEVELS.join(', ')}`]);
  return v;
}

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? envLogLevel() ?? 'info';
  return pino(
    { level, base: undefined, redact: { paths: REDACT, censor: '[redacted]' } },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/**
 * The CLI's logger for a run: stderr at `stderrLevel` (warnings unless asked for more) and
 * everything from info up in `file`.
 */
export function createRunLogger(stderrLevel: string, file: string): Logger {
  // A log file that cannot be written (a full disk) must not take the run down with it: the
  // error is said once on stderr and the file dropped; stderr goes on.
  const toFile = pino.destination({ dest: file, mkdir: true, sync: false });
  let fileFailed = false;
  toFile.on('error', (err: Error) => {
    if (fileFailed) return;
    fileFailed = true;
    process.stderr.write(`gauntlet: the log file ${file} cannot be written (${err.message}); logging to stderr only\n`);
  });
  const fileStream = { write: (line: string): void => void (fileFailed || toFile.write(line)) };
  const streams = pino.multistream([
    { level: stderrLevel as pino.Level, stream: pino.destination({ fd: 2, sync: true }) },
    { level: 'info', stream: fileStream },
  ]);
  return createLogger({ level: 'debug', destination: streams });
}

/**
 * The daemon's logger: JSON lines to stdout (for journald or a container's log) at `level`, and
 * everything from info up to `file`, rotated by size: past `maxBytes` the file becomes
 * `file.1` (`file.1` becomes `file.2` …, at most `keep` kept) and a new one is opened (sonic-boom's
 * reopen). A file that cannot be written is said once and dropped; stdout goes on.
 */
export function createDaemonLogger(o: { level: string; file: string; maxBytes: number; keep: number; stdout?: DestinationStream }): Logger {
  const toFile = pino.destination({ dest: o.file, mkdir: true, sync: true });
  let fileFailed = false;
  let bytes = 0;
  try {
    bytes = statSync(o.file).size;
  } catch {
    bytes = 0;
  }
  const fail = (err: Error): void => {
    if (fileFailed) return;
    fileFailed = true;
    process.stderr.write(`gauntlet: the log file ${o.file} cannot be written (${err.message}); logging to stdout only\n`);
  };
  toFile.on('error', fail);
  /** A rename of a file that was moved or deleted meanwhile is skipped; the file is reopened whatever happened. */
  const move = (from: string, to: string): void => {
    try {
      renameSync(from, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  };
  const rotate = (): void => {
    try {
      for (let i = o.keep - 1; i >= 1; i--) if (existsSync(`${o.file}.${i}`)) move(`${o.file}.${i}`, `${o.file}.${i + 1}`);
      move(o.file, `${o.file}.1`);
    } finally {
      toFile.reopen();
      bytes = 0;
    }
  };
  const fileStream = {
    write: (line: string): void => {
      if (fileFailed) return;
      try {
        if (bytes > 0 && bytes + Buffer.byteLength(line) > o.maxBytes) rotate();
        toFile.write(line);
        bytes += Buffer.byteLength(line);
      } catch (err) {
        fail(err as Error);
      }
    },
  };
  const streams = pino.multistream([
    { level: o.level as pino.Level, stream: o.stdout ?? pino.destination({ fd: 1, sync: true }) },
    { level: 'info', stream: fileStream },
  ]);
  return createLogger({ level: 'debug', destination: streams });
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
