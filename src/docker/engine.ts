// The Docker Engine API, through dockerode: connection check, container lookup, a resumable
// event stream, and log tails. Nothing here runs a shell or the docker CLI.
import Docker from 'dockerode';
import { withDeadlines } from './deadline.js';
import { GauntletError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseDockerEvent, type ContainerEvent } from './events.js';
import { defaultEngineLabel, defaultEngineSpec, DOCKER_HOST_ENGINE, engineClient, hostKeyRefusal } from './engines.js';

export { defaultEngineLabel } from './engines.js';

export type { Docker };

export function dockerClient(): Docker {
  // DOCKER_HOST naming another machine: through the same client as a plan's engines (TLS from
  // DOCKER_CERT_PATH; over SSH the host key checked, which dockerode's own ssh does not do).
  // Otherwise the local socket (/var/run/docker.sock, or DOCKER_HOST's unix://). Every call that
  // does not stream has a deadline (src/docker/deadline.ts).
  const spec = defaultEngineSpec();
  return spec ? engineClient(spec) : withDeadlines(new Docker());
}

/** Fails with GAUNTLET_DOCKER_UNAVAILABLE and a hint when the engine cannot be reached. */
export async function requireDocker(docker: Docker, label = defaultEngineLabel()): Promise<{ version: string; apiVersion: string }> {
  try {
    const v = await docker.version();
    return { version: v.Version, apiVersion: v.ApiVersion };
  } catch (err) {
    // DOCKER_HOST over SSH whose host key was refused: that reason, not ssh2's bare error
    const refusedKey = label === defaultEngineLabel() && defaultEngineSpec() ? hostKeyRefusal(DOCKER_HOST_ENGINE) : undefined;
    if (refusedKey) throw new GauntletError('GAUNTLET_DOCKER_UNAVAILABLE', [label, refusedKey], { cause: err });
    const hint = 'start the engine (as root on Debian: bash scripts/ensure-docker.sh) or set DOCKER_HOST';
    throw new GauntletError('GAUNTLET_DOCKER_UNAVAILABLE', [label, `${(err as Error).message}; ${hint}`], { cause: err });
  }
}

export async function inspectContainer(docker: Docker, idOrName: string): Promise<Docker.ContainerInspectInfo | null> {
  try {
    return await docker.getContainer(idOrName).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

/** The last lines a container wrote (stdout and stderr interleaved), as text lines. */
export async function tailLogs(docker: Docker, id: string, lines = 20): Promise<string[]> {
  const container = docker.getContainer(id);
  const info = await container.inspect();
  const raw = (await container.logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
  const text = info.Config.Tty ? raw.toString('utf8') : demux(raw);
  return text.split('\n').filter((l) => l.length > 0).slice(-lines);
}

/** Docker's multiplexed log format: 8-byte header (stream, 0, 0, 0, size BE32) per frame. */
function demux(buf: Buffer): string {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(out).toString('utf8');
}

/** The longest wait between attempts to reopen a broken event stream. */
export const RECONNECT_MAX_MS = 1000;
/** How long one attempt to open the event stream may wait for the engine's answer. */
export const EVENTS_OPEN_TIMEOUT_MS = 5000;

export interface EventWatch {
  stop(): void;
  /** Resolves once the stream is open (events from then on are delivered). */
  ready: Promise<void>;
}

/**
 * Follows container events for the given ids. If the stream breaks it reopens it from the
 * last event's time, so nothing between is lost; each event is delivered once.
 */
export function watchContainerEvents(
  docker: Docker,
  containerIds: string[],
  onEvent: (e: ContainerEvent) => void,
  log: Logger,
  options: {
    sinceMs?: number;
    /**
     * The engine's event stream broke ('lost': Gauntlet no longer sees what Docker does) or
     * opened again after that ('restored'), with when (epoch ms) and why.
     */
    onConnection?: (state: 'lost' | 'restored', at: number, why: string) => void;
    /** The run's clock, for those times (default Date.now). */
    now?: () => number;
    /** How long one attempt to open the stream may wait (default EVENTS_OPEN_TIMEOUT_MS). */
    openTimeoutMs?: number;
    /**
     * The run's time against the engine's real epoch times (a time-scaled run): sinceMs is in
     * the run's time, and each event's time is handed on in it. Default: the same.
     */
    epoch?: { fromEpoch(ms: number): number; toEpoch(ms: number): number };
  } = {},
): EventWatch {
  let stopped = false;
  let lost = false;
  const connection = (state: 'lost' | 'restored', why: string): void => {
    if (stopped || (state === 'lost') === lost) return;
    lost = state === 'lost';
    options.onConnection?.(state, (options.now ?? Date.now)(), why);
  };
  let current: NodeJS.ReadableStream | null = null;
  // Docker's `since` has whole-second granularity: events earlier in that second are dropped
  // here by their exact time, so a run never sees what happened before it started.
  const toEpoch = options.epoch ? (t: number) => (options.epoch as { toEpoch(ms: number): number }).toEpoch(t) : (t: number) => t;
  const fromEpoch = options.epoch ? (t: number) => (options.epoch as { fromEpoch(ms: number): number }).fromEpoch(t) : (t: number) => t;
  // (in the engine's real epoch time, as its events and its `since` are)
  const notBefore = options.sinceMs !== undefined ? toEpoch(options.sinceMs) : -Infinity;
  let lastNano = options.sinceMs !== undefined ? toEpoch(options.sinceMs) * 1e6 : 0;
  /** Events delivered in the last seconds (key → time): a reopened stream replays from the whole second. */
  const seen = new Map<string, number>();
  let markReady!: () => void;
  const ready = new Promise<void>((r) => (markReady = r));

  const open = async (tries: number): Promise<void> => {
    let attempt = tries;
    if (stopped) return;
    try {
      const since = lastNano > 0 ? Math.floor(lastNano / 1e9) : undefined;
      // An engine that accepts the connection and never answers: give up on this try after
      // OPEN_TIMEOUT_MS (the signal is left alone once the stream is open; it would cut it).
      const ac = new AbortController();
      const openMs = options.openTimeoutMs ?? EVENTS_OPEN_TIMEOUT_MS;
      const deadline = setTimeout(() => ac.abort(new Error(`no answer within ${openMs / 1000} s`)), openMs);
      deadline.unref();
      let stream: NodeJS.ReadableStream;
      try {
        stream = await docker.getEvents({
          ...(since !== undefined ? { since } : {}),
          filters: { type: ['container'], container: containerIds },
          abortSignal: ac.signal,
        } as Parameters<Docker['getEvents']>[0]);
      } catch (err) {
        throw ac.signal.aborted ? new Error(`the Docker engine did not open its event stream within ${openMs / 1000} s`, { cause: err }) : err;
      } finally {
        clearTimeout(deadline);
      }
      if (stopped) {
        (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
        return;
      }
      current = stream;
      markReady();
      connection('restored', 'the event stream is open again');
      attempt = 0; // a stream that opened resets the backoff
      let buffered = '';
      stream.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line) deliver(line);
        }
      });
      let reopened = false;
      const again = (): void => {
        if (reopened) return; // 'error' and 'end' may both come: one new stream only
        reopened = true;
        reopen(attempt);
      };
      stream.on('end', () => {
        connection('lost', 'the engine ended the event stream');
        again();
      });
      stream.on('error', (err: Error) => {
        log.warn({ err: err.message }, 'docker event stream error');
        connection('lost', `event stream error: ${err.message}`);
        again();
      });
    } catch (err) {
      log.warn({ err: (err as Error).message, attempt }, 'cannot open docker event stream; retrying');
      connection('lost', `cannot open the event stream: ${(err as Error).message}`);
      reopen(attempt + 1);
    }
  };

  const deliver = (line: string): void => {
    const parsed = parseDockerEvent(line);
    if (!parsed.ok) {
      log.warn({ error: parsed.error }, 'ignoring malformed docker event');
      return;
    }
    const e = parsed.event;
    if (!e || e.at < notBefore) return;
    const key = `${e.containerId}:${e.rawAction}:${e.at}`;
    if (seen.has(key)) return;
    seen.set(key, e.at);
    lastNano = Math.max(lastNano, e.at * 1e6);
    // A replay starts at the second of the last event: older keys can never come again.
    if (seen.size > 1000) for (const [k, at] of seen) if (at < lastNano / 1e6 - 2000) seen.delete(k);
    onEvent(options.epoch ? { ...e, at: fromEpoch(e.at) } : e);
  };

  const reopen = (attempt: number): void => {
    if (stopped) return;
    current = null;
    // At most 1 s apart: asking a local engine is cheap, and how late its return is noticed is
    // how much blind time is overstated (left out of exposure).
    const delay = Math.min(RECONNECT_MAX_MS, 100 * 2 ** Math.min(attempt, 6));
    setTimeout(() => void open(attempt + 1), delay).unref();
  };

  void open(0);
  return {
    ready,
    stop() {
      stopped = true;
      const s = current as (NodeJS.ReadableStream & { destroy?: () => void }) | null;
      s?.destroy?.();
      markReady();
    },
  };
}
