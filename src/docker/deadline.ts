// Every Docker call Gauntlet makes has a deadline: an engine that accepts a connection and
// never answers must not hold a fault past the run's end, or a run forever. The client is
// wrapped (a Proxy) so each call on the engine, a container or an exec gets an abort signal
// (dockerode passes `abortSignal` through to its HTTP request), unless the call streams for as
// long as it is wanted (events, followed logs, streamed stats, attach, wait, image builds).
import type Docker from 'dockerode';
import { GauntletError } from '../errors.js';

/** How long one call may take (a stop or restart: its own grace period on top); GAUNTLET_DOCKER_TIMEOUT_MS overrides. */
export const DOCKER_CALL_TIMEOUT_MS = 30_000;

/** The deadline from GAUNTLET_DOCKER_TIMEOUT_MS (checked), or the default. */
export function dockerTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.GAUNTLET_DOCKER_TIMEOUT_MS;
  if (v === undefined || v === '') return DOCKER_CALL_TIMEOUT_MS;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 100 || n > 3_600_000) throw new GauntletError('GAUNTLET_ENV_INVALID', ['GAUNTLET_DOCKER_TIMEOUT_MS', `got ${JSON.stringify(v)}; expected whole milliseconds from 100 to 3600000`]);
  return n;
}

type Opts = Record<string, unknown>;

/** The deadline for a call, or null for calls that stream as long as they are wanted. */
function deadlineFor(method: string, opts: Opts, base: number): number | null {
  switch (method) {
    case 'getEvents':
    case 'attach':
    case 'wait':
    case 'buildImage':
    case 'createImage':
    case 'loadImage':
    case 'importImage':
    case 'pull':
    case 'export':
      return null;
    case 'logs':
      return opts.follow === true ? null : base;
    case 'stats':
      return opts.stream === false ? base : null;
    case 'start':
      // Exec.start attached to its output streams as long as the command runs.
      return opts.hijack === true ? null : base;
    case 'stop':
    case 'restart':
      return (typeof opts.t === 'number' ? opts.t * 1000 : 10_000) + base;
    default:
      return base;
  }
}

/** Calls that take their options first and return a promise when given no callback. */
const CALLS = new Set([
  // Docker
  'version', 'ping', 'info', 'listContainers', 'listImages', 'listNetworks', 'createContainer', 'df',
  // Container
  'inspect', 'update', 'top', 'start', 'pause', 'unpause', 'exec', 'stop', 'restart', 'kill', 'remove', 'logs', 'stats', 'changes', 'getArchive', 'infoArchive',
  // Image, Network
  'history', 'tag',
]);

function wrapCall(target: object, method: string, fn: (...a: unknown[]) => unknown, base: number): (...a: unknown[]) => unknown {
  return (...args: unknown[]): unknown => {
    // Callback style, or options that already carry a signal: as the caller asked.
    if (typeof args.at(-1) === 'function') return fn.apply(target, args);
    const first = args[0];
    const opts: Opts = first !== null && typeof first === 'object' && !Array.isArray(first) && !Buffer.isBuffer(first) ? (first as Opts) : {};
    if (opts.abortSignal !== undefined) return fn.apply(target, args);
    const ms = deadlineFor(method, opts, base);
    if (ms === null) return fn.apply(target, args);
    const signal = AbortSignal.timeout(ms);
    const rest = first === opts ? args.slice(1) : args;
    const out = fn.apply(target, [{ ...opts, abortSignal: signal }, ...rest]);
    if (!(out instanceof Promise)) return out;
    return out.then(
      (v: unknown) => wrapResult(v, base),
      (err: unknown) => {
        if (signal.aborted) throw new Error(`the Docker engine did not answer ${method} within ${ms / 1000} s`, { cause: err });
        throw err;
      },
    );
  };
}

/** Objects a call hands back that make calls of their own (an Exec from container.exec). */
function wrapResult(v: unknown, base: number): unknown {
  if (v !== null && typeof v === 'object' && v.constructor?.name === 'Exec') return wrap(v as object, base);
  return v;
}

function wrap<T extends object>(obj: T, base: number): T {
  return new Proxy(obj, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || typeof v !== 'function') return v;
      if (prop === 'getContainer' || prop === 'getExec' || prop === 'getImage' || prop === 'getNetwork') {
        return (...a: unknown[]) => wrap((v as (...x: unknown[]) => object).apply(target, a), base);
      }
      if (CALLS.has(prop)) return wrapCall(target, prop, v as (...a: unknown[]) => unknown, base);
      return v;
    },
  });
}

/** The same client, with a deadline on every call that does not stream. */
export function withDeadlines(docker: Docker, ms: number = dockerTimeoutMs()): Docker {
  return wrap(docker, ms);
}
