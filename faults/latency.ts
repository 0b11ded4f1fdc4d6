// latency: every client's traffic to the node is delayed for `duration`.
//   driver "netem": `tc qdisc add dev <if> root handle 6a18: netem delay D J [rate R]` in the
//   container's network namespace: every packet the node sends (its responses, SYN-ACKs
//   included) waits. Real hosts usually have netem; it acts on leaving packets only, so it
//   serves direction "down" without stall or reset.
//   driver "proxy": Gauntlet's TCP fault proxy (faults/helpers/proxy.ts) in a helper container
//   that shares the target's network namespace, and in that namespace
//   `iptables -t nat -A PREROUTING -p tcp --dport <port> -j REDIRECT --to-ports <proxy port>`
//   (commented gauntlet:<fault id>). Only connections arriving from outside the namespace are
//   redirected; the proxy's own connection to 127.0.0.1:<port> is not. Per-chunk delay and
//   jitter per direction, bandwidth cap, stall and reset — Toxiproxy's knobs. A redirect only
//   applies to new connections, so established ones from outside (keep-alive pools) are reset
//   (`ss -K`) once quiet, between requests (quiet 200 ms, or three times the longest pause the
//   node's streams showed while watched, at most 1.5 s), those still busy after a grace cut — unless
//   existing_connections is "keep": clients reconnect, through the proxy. The proxy stops
//   delaying by itself after the duration (plus a margin), should Gauntlet die before reverting.
// Revert: delete the qdisc; or turn new connections away from the proxy, let it drain, remove
// the helper, then delete the rules (see revert for why in that order). A container restarted
// mid-fault has a new namespace: no rule or qdisc is left there, and the helper (stuck in the
// old namespace) is removed.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { Docker } from '../src/docker/engine.js';
import { ensureHelperImage, proxyBundlePath } from '../src/docker/sim-image.js';
import { GauntletError, errorMessage } from '../src/errors.js';
import { netnsOn } from '../src/fault/netns.js';
import { capsOf, hostOf } from '../src/fault/host-access.js';
import { helperLabels, ruleComment, type FaultContext, type FaultInjector, type FaultTarget, type HostCaps, type UndoRecord } from '../src/fault/types.js';
import { formatDuration } from '../src/util/duration.js';
import { durationParam } from './params.js';

/** The root qdisc handle of latency's netem (packet-loss uses 6a17:); the sweep knows both. */
export const LATENCY_QDISC_HANDLE = '6a18:';
/**
 * The proxy keeps delaying this much longer than the fault's duration (plus the grace for
 * established connections): it starts before the rule lands, and the hold counts from the end
 * of inject.
 */
export const PROXY_MARGIN_MS = 2_000;
/** Since its last byte out, an established connection between requests has been quiet at least this long… */
const QUIET_MS = 200;
/** …and its last byte out came at least this long after its last byte in (a response, not a request's headers echo). */
const ANSWERED_MS = 20;
/** How often inject looks for established connections gone quiet. */
const QUIET_POLL_MS = 50;
/** On stop, how long the proxy lets open connections finish (idle ones are closed at once). */
const PROXY_DRAIN_MS = 5_000;
/** How long inject waits for the helper's "listening" line. */
const LISTEN_WAIT_MS = 15_000;
/** Proxy ports are taken from here, below Linux's default ephemeral range (32768+). */
const PROXY_PORT_BASE = 20_000;
const PROXY_PORT_SPAN = 10_000;

const Params = z
  .strictObject({
    duration: durationParam('duration', 100, 86_400_000),
    /** Added to each chunk (proxy) or packet (netem) in the chosen direction. */
    delay: durationParam('delay', 0, 60_000).default(0),
    /** ± around delay, uniformly (proxy) or netem's jitter. */
    jitter: durationParam('jitter', 0, 60_000).default(0),
    /** down: the node's responses; up: the requests; both. */
    direction: z.enum(['down', 'up', 'both']).default('down'),
    bandwidth_kbps: z.number().int().min(1, 'expected bandwidth_kbps of at least 1').max(100_000_000).optional(),
    /** Accept connections, forward nothing until the fault ends (proxy). */
    stall: z.boolean().optional(),
    /** Share of new connections reset at once (proxy). */
    reset_probability: z.number().min(0).max(1, 'expected reset_probability at most 1 (a share: 0.3 = 30 %)').optional(),
    /** The node's serving port inside the container; default its first exposed TCP port. */
    port: z.number().int().min(1).max(65_535).optional(),
    driver: z.enum(['auto', 'netem', 'proxy']).default('auto'),
    /** proxy: reset the node's established connections from outside so they reconnect through the proxy, or keep them (undelayed). */
    existing_connections: z.enum(['reset', 'keep']).default('reset'),
  })
  .superRefine((p, ctx) => {
    if (p.delay === 0 && p.bandwidth_kbps === undefined && !p.stall && !p.reset_probability) {
      ctx.addIssue({ code: 'custom', message: 'nothing to inject: give delay (e.g. "200ms"), bandwidth_kbps, stall or reset_probability', path: ['delay'] });
    }
    if (p.jitter > 0 && p.delay === 0) ctx.addIssue({ code: 'custom', message: 'jitter is around a delay: give delay too', path: ['jitter'] });
  });
type Params = z.infer<typeof Params>;

type Driver = 'netem' | 'proxy';

function requireDocker(ctx: FaultContext): Docker {
  if (!ctx.docker) throw new Error('latency needs the Docker engine');
  return ctx.docker;
}

async function caps(ctx: FaultContext): Promise<HostCaps> {
  return ctx.caps ?? (await capsOf(hostOf(ctx)));
}

/** What only the proxy can do, in words; empty when netem can do it all. */
function proxyOnly(p: Params): string[] {
  const why: string[] = [];
  if (p.direction !== 'down') why.push(`direction ${p.direction} (netem delays leaving packets only: the responses)`);
  if (p.stall) why.push('stall');
  if (p.reset_probability) why.push('reset_probability');
  return why;
}

export function chooseDriver(p: Params, c: HostCaps): { driver: Driver } | { refused: string } {
  const only = proxyOnly(p);
  if (p.driver === 'netem') {
    if (!c.netem) return { refused: `driver netem asked for, but ${c.notes.netem ?? 'this kernel has no netem qdisc'}` };
    if (only.length > 0) return { refused: `driver netem cannot do ${only.join(', ')}; use driver proxy (or auto)` };
    return { driver: 'netem' };
  }
  if (p.driver === 'auto' && c.netem && only.length === 0) return { driver: 'netem' };
  if (!c.iptables) return { refused: `the proxy driver needs iptables in the container's namespace, and ${c.notes.iptables ?? 'iptables is unusable'}${c.netem ? '' : `; no netem either (${c.notes.netem ?? 'missing'})`}` };
  return { driver: 'proxy' };
}

const ms = (v: number): string => `${Math.round(v)}ms`;
const directionWords = (d: Params['direction']): string => (d === 'down' ? 'responses' : d === 'up' ? 'requests' : 'requests and responses');

/**
 * How long inject waits for the node's established connections to go quiet (so they are reset
 * between requests, not in the middle of one) before it cuts those still busy: a third of the
 * fault, at most 3 s.
 */
export function existingGraceMs(p: Params): number {
  return p.existing_connections === 'keep' ? 0 : Math.min(3_000, Math.floor(p.duration / 3));
}

/** How long the proxy delays before it passes traffic through by itself. */
export function proxyDurationMs(p: Params): number {
  return Math.round(p.duration) + existingGraceMs(p) + PROXY_MARGIN_MS;
}

/** The proxy's flags (after the image's entrypoint). */
export function proxyArgs(p: Params, proxyPort: number, upstream: string, faultId: string): string[] {
  const args = ['--listen', `0.0.0.0:${proxyPort}`, '--upstream', upstream, '--duration-ms', String(proxyDurationMs(p))];
  args.push('--latency-ms', String(Math.round(p.delay)), '--jitter-ms', String(Math.round(p.jitter)), '--direction', p.direction, '--per-chunk');
  if (p.bandwidth_kbps !== undefined) args.push('--bandwidth-kbps', String(p.bandwidth_kbps));
  if (p.stall) args.push('--stall');
  if (p.reset_probability) args.push('--reset-probability', String(p.reset_probability));
  args.push('--seed', String(seedOf(faultId)), '--drain-ms', String(PROXY_DRAIN_MS));
  return args;
}

/** The netem arguments after `tc qdisc add dev <if> root handle <h>`. */
export function netemArgs(p: Params): string[] {
  const args = ['netem', 'delay', `${Math.round(p.delay * 1000)}us`];
  if (p.jitter > 0) args.push(`${Math.round(p.jitter * 1000)}us`);
  if (p.bandwidth_kbps !== undefined) args.push('rate', `${p.bandwidth_kbps}kbit`);
  // The default queue (1000 packets) would drop under load once delayed packets pile up.
  args.push('limit', '100000');
  return args;
}

function seedOf(faultId: string): number {
  return createHash('sha256').update(faultId).digest().readUInt32BE(0);
}

interface TcpSocket {
  /** Local address as printed in /proc/net/tcp*: hex, kernel byte order. */
  addr: string;
  port: number;
  listening: boolean;
}

/** Sockets from /proc/<pid>/net/tcp or tcp6 (the namespace of that process). */
export function parseProcNetTcp(text: string): TcpSocket[] {
  const out: TcpSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const local = f[1];
    const state = f[3];
    if (!local || !state) continue;
    const [addr, port] = local.split(':');
    if (!addr || !port) continue;
    out.push({ addr, port: Number.parseInt(port, 16), listening: state === '0A' });
  }
  return out;
}

/** Dotted IPv4 from /proc's hex (little-endian on the hosts Docker runs on). */
function ipv4(hex: string): string {
  const n = Number.parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
}

/**
 * Where the proxy reaches the node from inside its namespace: 127.0.0.1 when the node listens
 * on any address (or loopback), else the address it listens on. Null when nothing listens on port.
 */
export function upstreamFor(v4: TcpSocket[], v6: TcpSocket[], port: number): string | null {
  const l4 = v4.filter((s) => s.listening && s.port === port);
  const l6 = v6.filter((s) => s.listening && s.port === port);
  const ANY6 = '0'.repeat(32);
  if (l4.some((s) => s.addr === '00000000' || ipv4(s.addr).startsWith('127.')) || l6.some((s) => s.addr === ANY6)) return `127.0.0.1:${port}`;
  if (l4[0]) return `${ipv4(l4[0].addr)}:${port}`;
  if (l6.some((s) => s.addr === '00000000000000000000000001000000')) return `[::1]:${port}`;
  return null;
}

/** A port nothing in the namespace uses, from the fault id (so two faults rarely collide). */
export function pickProxyPort(used: ReadonlySet<number>, faultId: string): number | null {
  const start = seedOf(faultId) % PROXY_PORT_SPAN;
  for (let i = 0; i < PROXY_PORT_SPAN; i++) {
    const port = PROXY_PORT_BASE + ((start + i) % PROXY_PORT_SPAN);
    if (!used.has(port)) return port;
  }
  return null;
}

/** The sockets of pid's network namespace, read on the node's host (this machine, or through the agent). */
async function readNetTcp(pid: number, ctx: FaultContext): Promise<{ v4: TcpSocket[]; v6: TcpSocket[] }> {
  const read = async (f: string): Promise<TcpSocket[]> => {
    const text = await hostOf(ctx).readFile(`/proc/${pid}/net/${f}`);
    return text === null ? [] : parseProcNetTcp(text);
  };
  return { v4: await read('tcp'), v6: await read('tcp6') };
}

/** The container's first exposed TCP port, or null. */
function exposedPort(info: Docker.ContainerInspectInfo): number | null {
  for (const key of Object.keys(info.Config.ExposedPorts ?? {})) {
    const m = /^(\d+)\/tcp$/.exec(key);
    if (m) return Number(m[1]);
  }
  return null;
}

const helperName = (faultId: string): string => `gauntlet-fault-${faultId}`;

/** Splits Docker's multiplexed log stream (no TTY) into stdout and stderr text. */
export function demuxLogs(buf: Buffer): { stdout: string; stderr: string } {
  const parts: Record<'stdout' | 'stderr', Buffer[]> = { stdout: [], stderr: [] };
  let off = 0;
  while (off + 8 <= buf.length) {
    const kind = buf[off];
    const size = buf.readUInt32BE(off + 4);
    const body = buf.subarray(off + 8, off + 8 + size);
    (kind === 2 ? parts.stderr : parts.stdout).push(body);
    off += 8 + size;
  }
  return { stdout: Buffer.concat(parts.stdout).toString('utf8'), stderr: Buffer.concat(parts.stderr).toString('utf8') };
}

/** The proxy's JSON lines with the given event, from its stdout. */
export function proxyEvents(stdout: string, event: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const v = JSON.parse(line) as Record<string, unknown>;
      if (v.event === event) out.push(v);
    } catch {
      // not one of its lines
    }
  }
  return out;
}

async function helperLogs(docker: Docker, name: string): Promise<{ stdout: string; stderr: string }> {
  try {
    return demuxLogs(await docker.getContainer(name).logs({ stdout: true, stderr: true, follow: false }));
  } catch {
    return { stdout: '', stderr: '' };
  }
}

const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

/** Stops (gracefully: the proxy drains) and removes the helper; says what it found. */
async function removeHelper(docker: Docker, name: string): Promise<{ action: string; counters?: Record<string, unknown> }> {
  const c = docker.getContainer(name);
  let running: boolean;
  try {
    running = (await c.inspect()).State.Running;
  } catch (err) {
    if (statusOf(err) === 404) return { action: 'no helper container' };
    throw err;
  }
  if (running) {
    try {
      await c.stop({ t: Math.ceil(PROXY_DRAIN_MS / 1000) + 3 });
    } catch (err) {
      if (statusOf(err) !== 304 && statusOf(err) !== 404) throw err;
    }
  }
  const exit = proxyEvents((await helperLogs(docker, name)).stdout, 'exit').at(-1);
  try {
    await c.remove({ force: true });
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
  return { action: running ? `stopped and removed helper ${name}` : `removed helper ${name} (it had already exited)`, ...(exit ? { counters: exit } : {}) };
}

export interface EstablishedSocket {
  /** The peer as ss prints it (`172.17.0.1:48680`, `[::ffff:172.17.0.1]:48680`). */
  peer: string;
  recvQ: number;
  sendQ: number;
  /** ms since the last send / receive; null when ss did not say. */
  lastsnd: number | null;
  lastrcv: number | null;
}

/** `ss -t -n -i -H` output: a line per socket, its TCP info on the indented line after. */
export function parseSsInfo(out: string): EstablishedSocket[] {
  const socks: EstablishedSocket[] = [];
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    const last = socks.at(-1);
    if (/^\s/.test(line) && last) {
      const snd = /\blastsnd:(\d+)/.exec(line);
      const rcv = /\blastrcv:(\d+)/.exec(line);
      if (snd) last.lastsnd = Number(snd[1]);
      if (rcv) last.lastrcv = Number(rcv[1]);
      continue;
    }
    const f = line.trim().split(/\s+/);
    // With a state filter ss leaves out the State column: Recv-Q Send-Q Local Peer.
    if (f.length >= 4 && /^\d+$/.test(f[0] as string)) socks.push({ recvQ: Number(f[0]), sendQ: Number(f[1]), peer: f[3] as string, lastsnd: null, lastrcv: null });
  }
  return socks;
}

/**
 * Between requests, as far as TCP can tell (server side): nothing queued either way; the node
 * sent last (after the request came in, by more than an immediate header send: an answer took
 * its time) and has sent nothing for quietMs (longer than a stream's gap between tokens).
 * A request being prefilled fails the second test (its last byte in is newer than, or as old as,
 * the headers sent at once); one being answered without streaming fails it too (nothing sent
 * since it came in). Unknown counts as busy.
 */
export function quiet(s: EstablishedSocket, quietMs = QUIET_MS): boolean {
  if (s.recvQ !== 0 || s.sendQ !== 0 || s.lastsnd === null || s.lastrcv === null) return false;
  return s.lastsnd >= quietMs && s.lastrcv - s.lastsnd >= ANSWERED_MS;
}

/** A connection is watched at least this long before it may be reset: a stall already under way at first sight shows itself by ending. */
const WATCH_MIN_MS = 300;
/** Quiet must last this many times the longest gap between a response's sends seen on the node while watching… */
const GAP_FACTOR = 3;
/** …but never more than this (a stream silent this long is stalled; the grace cuts it anyway). */
const QUIET_CAP_MS = 1_500;

/**
 * Decides, from successive `ss` snapshots of a node's established connections, which are between
 * requests. A fixed quiet threshold is fooled by a starved node: its streams can pause longer
 * than 200 ms between tokens, and a relay in front of it (docker-proxy) can still be delivering
 * what it sent before the pause. So the threshold follows the node's own pace: a send on a
 * connection with no new request since (lastsnd fell, lastrcv did not) ends a gap *within* a
 * response, and quiet must last GAP_FACTOR times the longest such gap seen on any of the node's
 * connections (a starved node is slow on all of them), at least QUIET_MS, at most QUIET_CAP_MS.
 * A gap ended by a new request is the time between requests and says nothing about pace.
 */
export class QuietWatch {
  private readonly seen = new Map<string, { firstAt: number; at: number; lastsnd: number | null; lastrcv: number | null }>();
  /** The longest gap between a response's sends seen so far, ms (a lower bound: snapshots are apart). */
  maxGapMs = 0;

  /** The quiet a connection needs now. */
  thresholdMs(): number {
    return Math.min(QUIET_CAP_MS, Math.max(QUIET_MS, GAP_FACTOR * this.maxGapMs));
  }

  /** Takes a snapshot made at `now` (ms); returns the peers that are between requests. */
  observe(now: number, socks: readonly EstablishedSocket[]): string[] {
    for (const s of socks) {
      const prev = this.seen.get(s.peer);
      if (prev && prev.lastsnd !== null && s.lastsnd !== null) {
        const elapsed = now - prev.at;
        const sent = s.lastsnd < prev.lastsnd + elapsed - 5;
        const received = prev.lastrcv !== null && s.lastrcv !== null && s.lastrcv < prev.lastrcv + elapsed - 5;
        if (sent && !received) this.maxGapMs = Math.max(this.maxGapMs, prev.lastsnd);
      }
      this.seen.set(s.peer, { firstAt: prev?.firstAt ?? now, at: now, lastsnd: s.lastsnd, lastrcv: s.lastrcv });
    }
    const need = this.thresholdMs();
    return socks.filter((s) => now - (this.seen.get(s.peer)?.firstAt ?? now) >= WATCH_MIN_MS && quiet(s, need)).map((s) => s.peer);
  }
}

/** ss filter: the node's established connections on port from outside the namespace (server side). */
const outsideFilter = (port: number): string[] => [
  'state', 'established', '(', 'sport', '=', `:${port}`, ')',
  'and', 'not', 'dst', '127.0.0.0/8', 'and', 'not', 'dst', '[::1]', 'and', 'not', 'dst', '[::ffff:127.0.0.1]',
];

/** Resets the given connections (server side, `ss -K`); returns how many ss reported. */
async function resetPeers(pid: number, port: number, peers: string[], ctx: FaultContext): Promise<number> {
  const { inNetns } = netnsOn(hostOf(ctx));
  let n = 0;
  for (let i = 0; i < peers.length; i += 50) {
    const or = peers.slice(i, i + 50).flatMap((p, k) => (k === 0 ? ['dst', p] : ['or', 'dst', p]));
    const r = await inNetns(pid, 'ss', ['-K', '-t', '-n', '-H', ...outsideFilter(port), 'and', '(', ...or, ')']);
    if (r.code === 0) n += r.stdout.split('\n').filter((l) => l.trim() !== '').length;
  }
  return n;
}

/**
 * A redirect applies to new connections only: the node's established connections from outside
 * (keep-alive pools) would go on undelayed. Each is reset once it is quiet (between requests, so
 * the client just reconnects, through the proxy); those still busy after the grace are cut.
 */
async function moveEstablished(pid: number, port: number, graceMs: number, ctx: FaultContext): Promise<{ idle: number; cut: number; quietMs?: number; note?: string }> {
  const { inNetns } = netnsOn(hostOf(ctx));
  const deadline = ctx.clock.now() + graceMs;
  const watch = new QuietWatch();
  let idle = 0;
  for (let i = 0; i <= Math.ceil(graceMs / QUIET_POLL_MS); i++) {
    const list = await inNetns(pid, 'ss', ['-t', '-n', '-i', '-H', ...outsideFilter(port)]);
    if (list.code !== 0) return { idle, cut: 0, quietMs: watch.thresholdMs(), note: `ss failed (${list.stderr.trim() || `exit ${list.code}`}): established connections keep bypassing the proxy` };
    const socks = parseSsInfo(list.stdout);
    if (socks.length === 0) return { idle, cut: 0, quietMs: watch.thresholdMs() };
    const ready = watch.observe(ctx.clock.now(), socks);
    if (ready.length > 0) idle += await resetPeers(pid, port, ready, ctx);
    if (ctx.clock.now() >= deadline) break;
    await ctx.clock.sleep(QUIET_POLL_MS);
  }
  const rest = await inNetns(pid, 'ss', ['-K', '-t', '-n', '-H', ...outsideFilter(port)]);
  const cut = rest.code === 0 ? rest.stdout.split('\n').filter((l) => l.trim() !== '').length : 0;
  return { idle, cut, quietMs: watch.thresholdMs() };
}

export const latency: FaultInjector<Params> = {
  kind: 'latency',
  description: "delay every client's traffic to the node for duration (netem in the container's network namespace, or Gauntlet's TCP fault proxy with bandwidth cap, stall and reset)",
  needsContainer: true,
  instant: false,
  holdMs: (p) => p.duration,
  params: Params,

  async unsupported(ctx) {
    if (!ctx.docker) return 'needs the Docker engine';
    const c = await caps(ctx);
    if (!c.nsenter) return `cannot enter a container's network namespace: ${c.notes.nsenter ?? 'nsenter unavailable'}`;
    if (c.netem) return null;
    if (!c.iptables) return `neither netem (${c.notes.netem ?? 'missing'}) nor iptables for the proxy (${c.notes.iptables ?? 'missing'})`;
    if (!existsSync(proxyBundlePath())) return `no netem (${c.notes.netem ?? 'missing'}), and the fault proxy ${proxyBundlePath()} is not built (npm run build)`;
    return null;
  },

  async describe(target, params, ctx) {
    const c = target.containerName ?? target.containerId;
    const chosen = chooseDriver(params, await caps(ctx));
    if ('refused' in chosen) return [`refused: ${chosen.refused}`];
    const jitter = params.jitter > 0 ? ` ± ${ms(params.jitter)}` : '';
    const rate = params.bandwidth_kbps !== undefined ? `, bandwidth ${params.bandwidth_kbps} kbit/s` : '';
    if (chosen.driver === 'netem') {
      return [
        `in the network namespace of ${c}: tc qdisc add dev <its default-route interface, e.g. eth0> root handle ${LATENCY_QDISC_HANDLE} ${netemArgs(params).join(' ')} (every packet the node sends waits ${ms(params.delay)}${jitter}${rate})`,
        `after ${formatDuration(params.duration)}: tc qdisc del … root handle ${LATENCY_QDISC_HANDLE} (revert)`,
      ];
    }
    let port = params.port === undefined ? '<its first exposed TCP port>' : String(params.port);
    if (params.port === undefined && ctx.docker && target.containerId) {
      try {
        port = String(exposedPort(await ctx.docker.getContainer(target.containerId).inspect()) ?? port);
      } catch {
        // described with the placeholder
      }
    }
    const toxics = [
      params.delay > 0 ? `delay ${ms(params.delay)}${jitter} per chunk on the ${directionWords(params.direction)}` : '',
      params.bandwidth_kbps !== undefined ? `bandwidth ${params.bandwidth_kbps} kbit/s` : '',
      params.stall ? 'stall (forward nothing)' : '',
      params.reset_probability ? `reset ${(params.reset_probability * 100).toFixed(1)} % of new connections` : '',
    ].filter(Boolean);
    const lines = [
      `build the helper image gauntlet-helper if missing (FROM scratch: node and the fault proxy)`,
      `start helper container ${helperName('<fault id>')} in the network namespace of ${c}: proxy 0.0.0.0:<free port> → 127.0.0.1:${port}, ${toxics.join(', ')}, for ${formatDuration(proxyDurationMs(params))} (then it passes traffic through)`,
      `in the network namespace of ${c}: iptables -t nat -A PREROUTING -p tcp --dport ${port} -m comment --comment ${ruleComment('<fault id>')} -j REDIRECT --to-ports <proxy port>`,
    ];
    if (params.existing_connections === 'reset') {
      lines.push(`in the network namespace of ${c}: ss -K each established connection to port ${port} from outside once it is quiet (between requests; they reconnect, through the proxy); cut those still busy after ${formatDuration(existingGraceMs(params))}`);
    }
    lines.push(`after ${formatDuration(params.duration)}: a RETURN rule in front turns new connections away from the proxy, the helper drains (up to ${formatDuration(PROXY_DRAIN_MS)}) and is removed, then the rules are deleted (revert)`);
    return lines;
  },

  async prepare(target: FaultTarget, params, ctx): Promise<UndoRecord> {
    const { inNetns, inNetnsOk, running } = netnsOn(hostOf(ctx));
    const docker = requireDocker(ctx);
    const refuse = (why: string): GauntletError => new GauntletError('GAUNTLET_FAULT_INJECT', ['latency', target.node, why]);
    const info = await docker.getContainer(target.containerId as string).inspect();
    if (!info.State.Running || info.State.Paused || !info.State.Pid) throw refuse(`container is ${info.State.Paused ? 'paused' : info.State.Status}, not running`);
    const pid = info.State.Pid;
    if (!(await running(pid))) throw refuse(`the container's main pid ${pid} is not visible here: Gauntlet must run in the Docker host's PID namespace`);
    if (info.HostConfig.NetworkMode === 'host') throw refuse("the container uses the host's network namespace: delaying traffic there would hit the whole host; refused");
    const chosen = chooseDriver(params, await caps(ctx));
    if ('refused' in chosen) throw refuse(chosen.refused);
    const faultId = ctx.faultId ?? 'manual';
    const base = { containerId: info.Id, containerName: info.Name.replace(/^\//, ''), pid, startedAt: info.State.StartedAt, driver: chosen.driver, faultId };

    if (chosen.driver === 'netem') {
      const route = await inNetns(pid, 'ip', ['-o', 'route', 'show', 'default']);
      const iface = /\bdev\s+(\S+)/.exec(route.stdout)?.[1] ?? 'eth0';
      const show = await inNetnsOk(pid, 'tc', ['qdisc', 'show', 'dev', iface]);
      if (show.includes(`netem ${LATENCY_QDISC_HANDLE}`)) throw refuse(`${iface} already has Gauntlet's latency qdisc: another latency fault is active on this node`);
      return { ...base, interface: iface, handle: LATENCY_QDISC_HANDLE };
    }

    const port = params.port ?? exposedPort(info);
    if (port === null) throw refuse('the container exposes no TCP port: give params.port (the port the node serves on inside the container)');
    const { v4, v6 } = await readNetTcp(pid, ctx);
    const upstream = upstreamFor(v4, v6, port);
    if (upstream === null) throw refuse(`nothing listens on TCP port ${port} in the container's network namespace${params.port === undefined ? ' (its first exposed port; give params.port)' : ''}`);
    const proxyPort = pickProxyPort(new Set([...v4, ...v6].map((s) => s.port)), faultId);
    if (proxyPort === null) throw refuse(`no free port for the proxy in ${PROXY_PORT_BASE}-${PROXY_PORT_BASE + PROXY_PORT_SPAN - 1} in the container's network namespace`);
    let image: string;
    try {
      image = await ensureHelperImage(docker, ctx.log);
    } catch (err) {
      throw new GauntletError('GAUNTLET_FAULT_INJECT', ['latency', target.node, `the proxy's helper image is not available: ${errorMessage(err)}`], { cause: err });
    }
    return { ...base, port, upstream, proxyPort, helperName: helperName(faultId), helperImage: image };
  },

  async inject(target, params, undo, ctx) {
    const { inNetns, inNetnsOk } = netnsOn(hostOf(ctx));
    const docker = requireDocker(ctx);
    const pid = undo.pid as number;
    const faultId = undo.faultId as string;
    const refuse = (why: string): GauntletError => new GauntletError('GAUNTLET_FAULT_INJECT', ['latency', target.node, why]);

    if (undo.driver === 'netem') {
      const iface = undo.interface as string;
      const at = ctx.clock.now();
      const r = await inNetns(pid, 'tc', ['qdisc', 'add', 'dev', iface, 'root', 'handle', LATENCY_QDISC_HANDLE, ...netemArgs(params)]);
      if (r.code !== 0) throw refuse(`tc qdisc add dev ${iface} … netem failed: ${r.stderr.trim()}${/File exists/.test(r.stderr) ? ' (the interface already has a root qdisc: another network fault on this node?)' : ''}`);
      return { at, driver: 'netem', detail: { interface: iface, handle: LATENCY_QDISC_HANDLE, delay_ms: params.delay, jitter_ms: params.jitter, bandwidth_kbps: params.bandwidth_kbps ?? null } };
    }

    // The namespace must still be the one prepare looked at: the proxy port was free there.
    const now = await docker.getContainer(undo.containerId as string).inspect();
    if (!now.State.Running || now.State.Pid !== pid) throw refuse(`the container restarted (pid ${pid} → ${now.State.Pid}) between prepare and inject`);
    const name = undo.helperName as string;
    const proxyPort = undo.proxyPort as number;
    const helper = await docker.createContainer({
      name,
      Image: undo.helperImage as string,
      Cmd: proxyArgs(params, proxyPort, undo.upstream as string, faultId),
      Labels: helperLabels(faultId, 'latency'),
      HostConfig: { NetworkMode: `container:${undo.containerId as string}`, AutoRemove: false, RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, Memory: 256 * 1024 * 1024 },
    });
    await helper.start();

    // Traffic goes to the proxy only once it listens: wait for its line (bounded), or see the
    // socket in the namespace (a logging driver Docker cannot read back shows no line).
    let listening: Record<string, unknown> | undefined;
    for (let i = 0; i < LISTEN_WAIT_MS / 100 && !listening; i++) {
      const logs = await helperLogs(docker, name);
      listening = proxyEvents(logs.stdout, 'listening')[0];
      if (!listening && (await readNetTcp(pid, ctx)).v4.some((s) => s.listening && s.port === proxyPort)) listening = { event: 'listening', port: proxyPort, seen: 'socket' };
      if (listening) break;
      const state = (await helper.inspect()).State;
      if (!state.Running) throw refuse(`the fault proxy exited (code ${state.ExitCode}) before listening: ${(logs.stderr.trim() || logs.stdout.trim()).slice(0, 500) || 'no output'}`);
      await ctx.clock.sleep(100);
    }
    if (!listening) throw refuse(`the fault proxy did not report listening within ${LISTEN_WAIT_MS / 1000} s`);

    const at = ctx.clock.now();
    await inNetnsOk(pid, 'iptables', [
      '-w', '5', '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', String(undo.port),
      '-m', 'comment', '--comment', ruleComment(faultId), '-j', 'REDIRECT', '--to-ports', String(proxyPort),
    ]);
    const existing =
      params.existing_connections === 'reset' ? await moveEstablished(pid, undo.port as number, existingGraceMs(params), ctx) : { idle: 0, cut: 0, note: 'established connections kept (they bypass the proxy)' };
    if (existing.note) ctx.log.warn({ node: target.node }, existing.note);
    if (existing.cut > 0) ctx.log.warn({ node: target.node, cut: existing.cut }, `${existing.cut} established connection(s) still busy after ${existingGraceMs(params)} ms were cut, to go through the proxy`);
    return {
      at,
      driver: 'proxy',
      detail: {
        helper: name,
        port: undo.port,
        proxy_port: proxyPort,
        upstream: undo.upstream,
        delay_ms: params.delay,
        jitter_ms: params.jitter,
        direction: params.direction,
        bandwidth_kbps: params.bandwidth_kbps ?? null,
        stall: params.stall ?? false,
        reset_probability: params.reset_probability ?? 0,
        existing_reset_idle: existing.idle,
        existing_cut_busy: existing.cut,
        ...('quietMs' in existing && existing.quietMs !== undefined ? { existing_quiet_ms: existing.quietMs } : {}),
        ...(existing.note ? { note: existing.note } : {}),
      },
    };
  },

  async revert(undo, ctx) {
    const { inNetns, inNetnsOk, listTaggedRules, deleteTaggedRules, running } = netnsOn(hostOf(ctx));
    const docker = requireDocker(ctx);
    let info: Docker.ContainerInspectInfo | null = null;
    try {
      info = await docker.getContainer(undo.containerId as string).inspect();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    const live = info !== null && info.State.Running && info.State.Pid > 1 && (await running(info.State.Pid));
    const restarted = info !== null && info.State.StartedAt !== undo.startedAt;
    const where = info === null ? 'the container no longer exists' : !live ? 'the container is not running' : 'the container restarted: its new namespace has none';

    if (undo.driver === 'netem') {
      if (!live || !info) return { action: `nothing: ${where} (its namespace, and the qdisc in it, are gone)` };
      const iface = String(undo.interface);
      const show = await inNetns(info.State.Pid, 'tc', ['qdisc', 'show', 'dev', iface]);
      if (show.code !== 0 || !show.stdout.includes(`netem ${LATENCY_QDISC_HANDLE}`)) return { action: restarted ? `nothing: ${where}` : 'nothing: no gauntlet latency qdisc (never landed or already removed)' };
      await inNetnsOk(info.State.Pid, 'tc', ['qdisc', 'del', 'dev', iface, 'root', 'handle', LATENCY_QDISC_HANDLE]);
      return { action: 'removed the netem qdisc' };
    }

    // Order matters. Deleting the REDIRECT rule also drops the NAT of the connections it
    // redirected (seen with iptables-nft here): their packets, a FIN included, no longer reach
    // the other end, so a keep-alive client is left with a dead connection it only finds out
    // about on its next request. So: a RETURN rule in front turns new connections away from
    // the proxy, the proxy drains (idle connections closed at once, with a FIN that still
    // gets through), and only then are the rules deleted.
    const actions: string[] = [];
    const faultId = undo.faultId as string;
    const pid = live && info ? info.State.Pid : null;
    if (pid !== null) {
      const rules = await listTaggedRules(pid, faultId);
      if (rules.some((r) => / -j REDIRECT\b/.test(r.spec)) && !rules.some((r) => / -j RETURN\b/.test(r.spec))) {
        await inNetnsOk(pid, 'iptables', ['-w', '5', '-t', 'nat', '-I', 'PREROUTING', '1', '-p', 'tcp', '--dport', String(undo.port), '-m', 'comment', '--comment', ruleComment(faultId), '-j', 'RETURN']);
        actions.push('new connections bypass the proxy');
      }
    }
    let helper: Awaited<ReturnType<typeof removeHelper>>;
    try {
      helper = await removeHelper(docker, String(undo.helperName));
    } catch (err) {
      throw new Error(`${actions.join('; ')}${actions.length ? '; ' : ''}removing helper ${String(undo.helperName)} failed: ${errorMessage(err)}`, { cause: err });
    }
    actions.push(helper.action);
    if (pid !== null) {
      const n = await deleteTaggedRules(pid, faultId);
      actions.push(n > 0 ? `removed ${n} iptables rule(s)` : restarted ? `no rule: ${where}` : 'no rule left (never landed or already removed)');
    } else actions.push(`no rule: ${where} (its namespace went with it)`);
    const c = helper.counters;
    const result = c
      ? { connections: c.connections, resets: c.resets, upstream_refused: c.upstream_refused, errors: c.errors, bytes_up: c.bytes_up, bytes_down: c.bytes_down, chunks_delayed: c.chunks_delayed, cut_at_stop: c.cut_connections }
      : undefined;
    return { action: actions.join('; '), ...(result ? { result } : {}) };
  },
};
