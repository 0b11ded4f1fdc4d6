// The one root logger. Components take child loggers bound to {runId, node, fault}.
// Logs are JSON lines on stderr (and, during a run, in the run's log file).
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

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
