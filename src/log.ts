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
 * A log file as a stream: a file that cannot be written (a full disk) must not take the run or
 * the daemon down with it: the error is said once on stderr and the file dropped; the other
 * stream (`others`) goes on. With `rotate`, past `maxBytes` the file becomes `file.1` (`file.1`
 * becomes `file.2` …, at most `keep` kept) and a new one is opened (sonic-boom's reopen); a file
 * moved or deleted meanwhile is simply opened again.
 */
function fileSink(file: string, o: { sync: boolean; others: string; rotate?: { maxBytes: number; keep: number } }): { write(line: string): void } {
  const toFile = pino.destination({ dest: file, mkdir: true, sync: o.sync });
  let failed = false;
  const fail = (err: Error): void => {
    if (failed) return;
    failed = true;
    process.stderr.write(`gauntlet: the log file ${file} cannot be written (${err.message}); logging to ${o.others} only\n`);
  };
  toFile.on('error', fail);
  const rotate = o.rotate;
  if (!rotate) return { write: (line) => void (failed || toFile.write(line)) };
  let bytes = 0;
  try {
    bytes = statSync(file).size;
  } catch {
    bytes = 0;
  }
  const move = (from: string, to: string): void => {
    try {
      renameSync(from, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  };
  return {
    write: (line) => {
      if (failed) return;
      try {
        const n = Buffer.byteLength(line);
        if (bytes > 0 && bytes + n > rotate.maxBytes) {
          try {
            for (let i = rotate.keep - 1; i >= 1; i--) if (existsSync(`${file}.${i}`)) move(`${file}.${i}`, `${file}.${i + 1}`);
            move(file, `${file}.1`);
          } finally {
            toFile.reopen();
            bytes = 0;
          }
        }
        toFile.write(line);
        bytes += n;
      } catch (err) {
        fail(err as Error);
      }
    },
  };
}

/**
 * The CLI's logger for a run: stderr at `stderrLevel` (warnings unless asked for more) and
 * everything from info up in `file`.
 */
export function createRunLogger(stderrLevel: string, file: string): Logger {
  const streams = pino.multistream([
    { level: stderrLevel as pino.Level, stream: pino.destination({ fd: 2, sync: true }) },
    { level: 'info', stream: fileSink(file, { sync: false, others: 'stderr' }) },
  ]);
  return createLogger({ level: 'debug', destination: streams });
}

/**
 * The daemon's logger: JSON lines to stdout (for journald or a container's log) at `level`, and
 * everything from info up to `file`, rotated by size (`maxBytes`, `keep`).
 */
export function createDaemonLogger(o: { level: string; file: string; maxBytes: number; keep: number; stdout?: DestinationStream }): Logger {
  const streams = pino.multistream([
    { level: o.level as pino.Level, stream: o.stdout ?? pino.destination({ fd: 1, sync: true }) },
    { level: 'info', stream: fileSink(o.file, { sync: true, others: 'stdout', rotate: { maxBytes: o.maxBytes, keep: o.keep } }) },
  ]);
  return createLogger({ level: 'debug', destination: streams });
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
