// The one root logger. Components take child loggers bound to {runId, node, fault}.
// Logs are JSON lines on stderr, and for runs also in a log file beside the database.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

const REDACT = ['token', 'authorization', '*.token', '*.authorization', 'headers.authorization'];

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.GAUNTLET_LOG_LEVEL ?? 'info';
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
  const streams = pino.multistream([
    { level: stderrLevel as pino.Level, stream: pino.destination({ fd: 2, sync: true }) },
    { level: 'info', stream: pino.destination({ dest: file, mkdir: true, sync: false }) },
  ]);
  return createLogger({ level: 'debug', destination: streams });
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
