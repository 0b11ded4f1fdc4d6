// Every error Gauntlet raises on purpose, with a stable code users can match on
// (GAUNTLET_<AREA>_<WHAT>), a message template and an HTTP status for the daemon's API.
// test/unit/errors.test.ts checks that each code is documented in README.md.

export const ERRORS = {
  GAUNTLET_PLAN_INVALID: { status: 400, message: 'plan %s is invalid:\n%s' },
  GAUNTLET_PLAN_UNREADABLE: { status: 400, message: 'cannot read plan %s: %s' },
  GAUNTLET_ENV_INVALID: { status: 400, message: 'environment variable %s: %s' },
  GAUNTLET_PLAN_YAML: { status: 400, message: 'plan %s is not valid YAML: %s' },
  GAUNTLET_TARGET_NOT_FOUND: { status: 404, message: 'target %s: %s' },
  GAUNTLET_TARGET_AMBIGUOUS: { status: 409, message: 'target %s: %s' },
  GAUNTLET_TARGET_NOT_READY: { status: 503, message: 'target %s did not become ready: %s' },
  GAUNTLET_TARGET_NO_ENDPOINT: { status: 400, message: 'target %s: %s' },
  GAUNTLET_DOCKER_UNAVAILABLE: { status: 503, message: 'Docker engine not reachable (%s): %s' },
  GAUNTLET_DOCKER_IMAGE_BUILD: { status: 500, message: 'building image %s failed: %s' },
  GAUNTLET_FAULT_INJECT: { status: 500, message: 'injecting %s into %s failed: %s' },
  GAUNTLET_FAULT_REVERT: { status: 500, message: 'reverting fault %s failed: %s' },
  GAUNTLET_STORE_SCHEMA: { status: 500, message: 'database %s: %s' },
  GAUNTLET_STORE_WRITE: { status: 500, message: 'writing %s to the database failed: %s' },
  GAUNTLET_STORE_MISSING: { status: 404, message: 'no database at %s: %s' },
  GAUNTLET_STORE_FOREIGN: { status: 400, message: 'database %s: %s' },
  GAUNTLET_PATH_UNUSABLE: { status: 400, message: '%s %s: %s' },
  GAUNTLET_RUN_NOT_FOUND: { status: 404, message: 'no run with id %s in %s' },
  GAUNTLET_LOAD_K6_MISSING: { status: 400, message: 'load.engine is k6 but %s' },
  GAUNTLET_LOAD_K6_BUNDLE: { status: 400, message: 'cannot bundle k6 scenario %s: %s' },
  GAUNTLET_LOAD_K6_FAILED: { status: 502, message: 'k6 %s' },
  GAUNTLET_LOAD_WORKERS: { status: 500, message: 'load worker threads: %s' },
  GAUNTLET_CONFIG_INVALID: { status: 400, message: 'daemon config %s is invalid:\n%s' },
  GAUNTLET_CONFIG_YAML: { status: 400, message: 'daemon config %s is not valid YAML: %s' },
  GAUNTLET_CONFIG_UNREADABLE: { status: 400, message: 'cannot read daemon config %s: %s' },
  GAUNTLET_TOKEN_UNSAFE: { status: 500, message: 'API token file %s: %s' },
  GAUNTLET_DAEMON_LISTEN: { status: 500, message: 'the daemon cannot listen on %s: %s' },
  GAUNTLET_DAEMON_RUNNING: { status: 409, message: 'a daemon runs on %s: %s' },
  GAUNTLET_DAEMON_NOT_RUNNING: { status: 400, message: 'no daemon runs on %s: %s' },
  GAUNTLET_DAEMON_API: { status: 502, message: 'the daemon at %s said: %s' },
  GAUNTLET_CLI_FLAG: { status: 400, message: '%s: %s' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

function format(template: string, args: readonly unknown[]): string {
  let i = 0;
  return template.replace(/%s/g, () => String(args[i++] ?? ''));
}

export class GauntletError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;

  constructor(code: ErrorCode, args: readonly unknown[], options?: { cause?: unknown; details?: unknown }) {
    super(format(ERRORS[code].message, args), options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GauntletError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = options?.details;
  }
}

export function isGauntletError(err: unknown, code?: ErrorCode): err is GauntletError {
  return err instanceof GauntletError && (code === undefined || err.code === code);
}

/** The message of anything thrown, for logs and records. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const code = (err as { code?: unknown }).code;
    const base = typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
    return cause instanceof Error && !base.includes(cause.message) ? `${base} (${errorMessage(cause)})` : base;
  }
  return String(err);
}
