// Gauntlet's TCP fault proxy: the `latency` fault's proxy driver, for hosts without netem. It
// runs in a helper container that shares the target's network namespace; an iptables REDIRECT
// there sends every client's connection to it, and it forwards to the node on 127.0.0.1 with
// Toxiproxy's knobs: per-chunk latency with jitter per direction (chunk order kept), a
// bandwidth cap, stall, connection reset. It ends the fault by itself after --duration-ms
// (queued chunks flushed, stalled connections released) and then passes traffic through
// untouched until SIGTERM/SIGINT, because a redirect may still point at it.
// Only node: builtins (it is bundled to dist/helpers/proxy.cjs and runs in a FROM-scratch
// image); its randomness is seeded; it reports JSON lines on stdout.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export type Direction = 'down' | 'up' | 'both';

export interface HostPort {
  host: string;
  port: number;
}

export interface ProxyOptions {
  listen: HostPort;
  upstream: HostPort;
  durationMs: number;
  latencyMs: number;
  jitterMs: number;
  /** Which way the toxics act: down = upstream → client (responses), up = client → upstream. */
  direction: Direction;
  /** Bandwidth cap per connection and direction, kilobits per second; null for none. */
  bandwidthKbps: number | null;
  stall: boolean;
  resetProbability: number;
  seed: number;
  /** On SIGTERM: how long connections still open may finish before they are cut. */
  drainMs: number;
}

export const USAGE = `usage: proxy.cjs --listen HOST:PORT --upstream HOST:PORT --duration-ms N
  [--latency-ms N] [--jitter-ms N] [--direction down|up|both] [--per-chunk]
  [--bandwidth-kbps N] [--stall] [--reset-probability P] [--seed N] [--drain-ms N]`;

type Flag = { kind: 'value'; set: (o: Draft, v: string) => string | null } | { kind: 'bool'; set: (o: Draft) => void };
type Draft = Partial<ProxyOptions>;

function hostPort(v: string, allowZero: boolean): HostPort | null {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(v) ?? /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65_535 || (!allowZero && port === 0)) return null;
  return { host: m[1] as string, port };
}

/** A non-negative integer (a count of ms or kbit/s), or null. */
function count(v: string, min = 0): number | null {
  if (!/^\d{1,12}$/.test(v)) return null;
  const n = Number(v);
  return n >= min ? n : null;
}

/** A flag whose value is a whole number stored under `key`. */
function whole(key: 'durationMs' | 'latencyMs' | 'jitterMs' | 'drainMs' | 'bandwidthKbps' | 'seed', min: number, what: string): Flag {
  return {
    kind: 'value',
    set: (o, v) => {
      const n = count(v, min);
      if (n === null) return `expected ${what}`;
      o[key] = n;
      return null;
    },
  };
}

function address(key: 'listen' | 'upstream', allowZero: boolean): Flag {
  return {
    kind: 'value',
    set: (o, v) => {
      const a = hostPort(v, allowZero);
      if (!a) return `expected HOST:PORT (port ${allowZero ? 0 : 1}-65535)`;
      o[key] = a;
      return null;
    },
  };
}

const MS = 'a whole number of milliseconds ≥ 0';

const FLAGS: Record<string, Flag> = {
  '--listen': address('listen', true),
  '--upstream': address('upstream', false),
  '--duration-ms': whole('durationMs', 0, MS),
  '--latency-ms': whole('latencyMs', 0, MS),
  '--jitter-ms': whole('jitterMs', 0, MS),
  '--drain-ms': whole('drainMs', 0, MS),
  '--bandwidth-kbps': whole('bandwidthKbps', 1, 'a whole number of kbit/s ≥ 1'),
  '--seed': whole('seed', 0, 'a whole number ≥ 0'),
  '--direction': {
    kind: 'value',
    set: (o, v) => {
      if (v !== 'down' && v !== 'up' && v !== 'both') return 'expected down, up or both';
      o.direction = v;
      return null;
    },
  },
  '--reset-probability': {
    kind: 'value',
    set: (o, v) => {
      const p = /^(?:\d+(?:\.\d+)?|\.\d+)$/.test(v) ? Number(v) : Number.NaN;
      if (!(p >= 0 && p <= 1)) return 'expected a probability between 0 and 1';
      o.resetProbability = p;
      return null;
    },
  },
  '--stall': { kind: 'bool', set: (o) => void (o.stall = true) },
  // The only mode there is (each chunk delayed on its own); accepted so callers can say so.
  '--per-chunk': { kind: 'bool', set: () => undefined },
};

/** Parses the command line strictly: unknown, repeated or malformed flags are errors naming the flag. */
export function parseArgs(argv: readonly string[]): { options: ProxyOptions } | { error: string } | { help: true } {
  const o: Draft = {};
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return { help: true };
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const flag = FLAGS[name];
    if (!flag) return { error: arg.startsWith('-') ? `unknown flag ${name}` : `unexpected argument ${JSON.stringify(arg)}` };
    if (seen.has(name)) return { error: `${name} given twice` };
    seen.add(name);
    if (flag.kind === 'bool') {
      if (eq > 0) return { error: `${name} takes no value` };
      flag.set(o);
      continue;
    }
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) return { error: `${name} needs a value` };
      i++;
    }
    const why = flag.set(o, value);
    if (why) return { error: `${name}: ${why}, got ${JSON.stringify(value)}` };
  }
  for (const required of ['--listen', '--upstream', '--duration-ms']) if (!seen.has(required)) return { error: `missing ${required}` };
  const options: ProxyOptions = {
    listen: o.listen as HostPort,
    upstream: o.upstream as HostPort,
    durationMs: o.durationMs as number,
    latencyMs: o.latencyMs ?? 0,
    jitterMs: o.jitterMs ?? 0,
    direction: o.direction ?? 'down',
    bandwidthKbps: o.bandwidthKbps ?? null,
    stall: o.stall ?? false,
    resetProbability: o.resetProbability ?? 0,
    seed: o.seed ?? 1,
    drainMs: o.drainMs ?? 1000,
  };
  if (options.jitterMs > 0 && options.latencyMs === 0) return { error: '--jitter-ms: needs --latency-ms (jitter is around a latency)' };
  return { options };
}

/** mulberry32: a small seeded generator, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface Counters {
  connections: number;
  active: number;
  resets: number;
  upstream_refused: number;
  errors: number;
  stalled: number;
  bytes_up: number;
  bytes_down: number;
  chunks_delayed: number;
}

interface Item {
  at: number;
  data: Buffer | null; // null: the source's end (half-close), delivered in order
}

/** Queued bytes above which the source is paused (backpressure through the queue). */
const HIGH_WATER = 1 << 20;

/** One direction of one connection: chunks from `src` to `dst`, each released at its time. */
class Lane {
  private readonly queue: Item[] = [];
  private head = 0;
  private queued = 0;
  private lastAt = 0;
  private bwFreeAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private waitingDrain = false;
  private paused = false;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly toxic: boolean,
    private readonly onBytes: (n: number) => void,
  ) {
    src.on('data', (chunk: Buffer) => this.push(chunk));
    src.on('end', () => this.push(null));
    dst.on('drain', () => {
      this.waitingDrain = false;
      this.pump();
    });
  }

  private push(data: Buffer | null): void {
    const now = performance.now();
    const p = this.proxy;
    if (data) this.onBytes(data.length);
    if (!p.active || !this.toxic || data === null) {
      // No delay of its own, but never ahead of what is still queued.
      this.enqueue(Math.max(now, this.lastAt), data);
    } else {
      const o = p.options;
      const jitter = o.jitterMs > 0 ? (p.random() * 2 - 1) * o.jitterMs : 0;
      let at = Math.max(this.lastAt, now + Math.max(0, o.latencyMs + jitter));
      if (o.latencyMs > 0) p.counters.chunks_delayed++;
      if (o.bandwidthKbps === null) this.enqueue(at, data);
      else {
        // Paced in slices of ~20 ms of transmission, so a large chunk trickles rather than jumps.
        const bytesPerMs = o.bandwidthKbps / 8;
        const slice = Math.max(1, Math.floor(bytesPerMs * 20));
        for (let off = 0; off < data.length; off += slice) {
          const part = data.subarray(off, off + slice);
          at = Math.max(at, this.bwFreeAt);
          this.bwFreeAt = at + part.length / bytesPerMs;
          this.enqueue(at, part);
        }
      }
    }
    if (this.queued > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.src.pause();
    }
    this.pump();
  }

  private enqueue(at: number, data: Buffer | null): void {
    this.lastAt = at;
    this.queue.push({ at, data });
    if (data) this.queued += data.length;
  }

  /** The fault is over: everything queued goes now, in order. */
  release(): void {
    const now = performance.now();
    for (let i = this.head; i < this.queue.length; i++) (this.queue[i] as Item).at = Math.min((this.queue[i] as Item).at, now);
    this.lastAt = Math.min(this.lastAt, now);
    this.bwFreeAt = 0;
    this.pump();
  }

  pending(): boolean {
    return this.head < this.queue.length;
  }

  pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.dst.destroyed) {
      this.queue.length = this.head = this.queued = 0;
      return;
    }
    if (this.proxy.active && this.proxy.options.stall) return; // released by release()
    const now = performance.now();
    while (this.head < this.queue.length && !this.waitingDrain) {
      const item = this.queue[this.head] as Item;
      if (item.at > now + 0.5) {
        this.timer = setTimeout(() => this.pump(), Math.ceil(item.at - now));
        break;
      }
      this.head++;
      if (item.data === null) {
        this.dst.end();
        continue;
      }
      this.queued -= item.data.length;
      if (!this.dst.write(item.data)) this.waitingDrain = true;
    }
    if (this.head === this.queue.length) {
      this.queue.length = this.head = 0;
    } else if (this.head > 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.paused && this.queued < HIGH_WATER / 2 && !this.waitingDrain) {
      this.paused = false;
      this.src.resume();
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = this.head = this.queued = 0;
  }
}

class Connection {
  readonly lanes: Lane[];
  /** When bytes last came from the client (up) and from the upstream (down). */
  private lastUp = performance.now();
  private lastDown = this.lastUp;
  private closed = 0;

  constructor(
    private readonly proxy: FaultProxy,
    readonly client: Socket,
    readonly upstream: Socket,
  ) {
    const o = proxy.options;
    const c = proxy.counters;
    this.lanes = [
      new Lane(proxy, client, upstream, o.direction !== 'down', (n) => {
        c.bytes_up += n;
        this.lastUp = performance.now();
      }),
      new Lane(proxy, upstream, client, o.direction !== 'up', (n) => {
        c.bytes_down += n;
        this.lastDown = performance.now();
      }),
    ];
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      upstream.setNoDelay(true);
    });
    const fail = (who: 'client' | 'upstream') => (err: Error) => {
      if (who === 'upstream' && !connected) c.upstream_refused++;
      else c.errors++;
      proxy.note({ event: 'connection_error', side: who, code: (err as NodeJS.ErrnoException).code ?? err.message });
      this.destroy();
    };
    client.on('error', fail('client'));
    upstream.on('error', fail('upstream'));
    const onClose = (): void => {
      if (++this.closed === 2) {
        for (const l of this.lanes) l.close();
        proxy.forget(this);
      }
    };
    // A socket closed without error had both halves finished; the other goes on until its
    // own peer ends (half-close). One closed by an error takes the other with it.
    for (const s of [client, upstream]) {
      s.on('close', (hadError) => {
        if (hadError) this.destroy();
        onClose();
      });
    }
  }

  release(): void {
    for (const l of this.lanes) l.release();
  }

  /**
   * Between requests, as far as bytes tell: nothing queued, the upstream spoke last (an answer,
   * some time after the request) and has been quiet for quietMs — or nothing moved at all.
   */
  idle(now: number, quietMs: number): boolean {
    if (this.lanes.some((l) => l.pending())) return false;
    const answered = this.lastDown - this.lastUp >= 20 && now - this.lastDown >= quietMs;
    const silent = now - Math.max(this.lastUp, this.lastDown) >= 10 * quietMs;
    return answered || silent;
  }

  destroy(): void {
    if (!this.client.destroyed) this.client.destroy();
    if (!this.upstream.destroyed) this.upstream.destroy();
  }
}

export class FaultProxy {
  readonly counters: Counters = { connections: 0, active: 0, resets: 0, upstream_refused: 0, errors: 0, stalled: 0, bytes_up: 0, bytes_down: 0, chunks_delayed: 0 };
  /** True while the toxics act (from start until --duration-ms has passed). */
  active = true;
  readonly random: () => number;
  private readonly conns = new Set<Connection>();
  private server: Server | null = null;
  private endTimer: NodeJS.Timeout | null = null;
  private startedAt = 0;

  constructor(
    readonly options: ProxyOptions,
    private readonly out: (line: Record<string, unknown>) => void,
  ) {
    this.random = seededRandom(options.seed);
  }

  note(line: Record<string, unknown>): void {
    this.out(line);
  }

  start(): Promise<HostPort> {
    const o = this.options;
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (client) => this.accept(client));
    this.server = server;
    server.on('error', (err) => this.out({ event: 'server_error', code: (err as NodeJS.ErrnoException).code ?? err.message }));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.listen.port, o.listen.host, () => {
        server.off('error', reject);
        const addr = server.address();
        const port = typeof addr === 'object' && addr ? addr.port : o.listen.port;
        this.startedAt = performance.now();
        if (o.durationMs > 0) {
          this.endTimer = setTimeout(() => this.endFault('duration'), o.durationMs);
        } else this.active = false;
        this.out({
          event: 'listening',
          host: o.listen.host,
          port,
          upstream: `${o.upstream.host}:${o.upstream.port}`,
          duration_ms: o.durationMs,
          latency_ms: o.latencyMs,
          jitter_ms: o.jitterMs,
          direction: o.direction,
          bandwidth_kbps: o.bandwidthKbps,
          stall: o.stall,
          reset_probability: o.resetProbability,
          seed: o.seed,
        });
        resolve({ host: o.listen.host, port });
      });
    });
  }

  private accept(client: Socket): void {
    const c = this.counters;
    c.connections++;
    client.on('error', () => undefined); // until the connection owns it
    if (this.active && this.options.resetProbability > 0 && this.random() < this.options.resetProbability) {
      c.resets++;
      client.resetAndDestroy();
      return;
    }
    if (this.active && this.options.stall) c.stalled++;
    client.setNoDelay(true);
    const upstream = connect({ host: this.options.upstream.host, port: this.options.upstream.port, allowHalfOpen: true });
    c.active++;
    this.conns.add(new Connection(this, client, upstream));
  }

  forget(conn: Connection): void {
    if (this.conns.delete(conn)) this.counters.active--;
  }

  /** Ends the fault: toxics off, queues flushed, stalled connections released. */
  endFault(why: string): void {
    if (!this.active) return;
    this.active = false;
    if (this.endTimer) clearTimeout(this.endTimer);
    this.endTimer = null;
    for (const conn of this.conns) conn.release();
    this.out({ event: 'fault_ended', why, after_ms: Math.round(performance.now() - this.startedAt), ...this.counters });
  }

  /** Stops accepting, gives open connections up to drainMs (closing each once quiet), then cuts the rest. */
  async shutdown(signal: string): Promise<void> {
    this.endFault(signal);
    this.server?.close();
    const deadline = performance.now() + this.options.drainMs;
    for (let i = 0; this.conns.size > 0 && performance.now() < deadline && i < 10_000; i++) {
      const now = performance.now();
      for (const conn of this.conns) if (conn.idle(now, 100)) conn.destroy();
      await new Promise((r) => setTimeout(r, 20));
    }
    const cut = this.conns.size;
    for (const conn of this.conns) conn.destroy();
    this.out({ event: 'exit', signal, cut_connections: cut, uptime_ms: Math.round(performance.now() - this.startedAt), ...this.counters });
  }
}

function main(argv: readonly string[]): void {
  const out = (line: Record<string, unknown>): void => {
    process.stdout.write(`${JSON.stringify({ ...line, ts: Math.round(performance.timeOrigin + performance.now()) })}\n`);
  };
  const parsed = parseArgs(argv);
  if ('help' in parsed) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if ('error' in parsed) {
    process.stderr.write(`proxy: ${parsed.error}\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const proxy = new FaultProxy(parsed.options, out);
  // A fault helper must not die of one bad connection: report and go on.
  process.on('uncaughtException', (err) => out({ event: 'error', message: err.message }));
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    void proxy.shutdown(signal).finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  proxy.start().catch((err: Error) => {
    process.stderr.write(`proxy: cannot listen on ${parsed.options.listen.host}:${parsed.options.listen.port}: ${err.message}\n`);
    out({ event: 'listen_failed', code: (err as NodeJS.ErrnoException).code ?? err.message });
    process.exit(1);
  });
}

// Run only as the program (dist/helpers/proxy.cjs), not when a test imports the parser.
if (typeof require !== 'undefined' && typeof module !== 'undefined' && require.main === module) main(process.argv.slice(2));
