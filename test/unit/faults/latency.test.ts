// latency without Docker: params, the driver choice on hosts with and without netem, the
// commands it would run, reading a namespace's sockets from /proc, and the dry-run description.
import { describe, expect, it } from 'vitest';
import { chooseDriver, demuxLogs, existingGraceMs, latency, netemArgs, parseProcNetTcp, parseSsInfo, pickProxyPort, proxyArgs, proxyDurationMs, proxyEvents, quiet, QuietWatch, upstreamFor } from '../../../faults/latency.js';
import type { FaultContext, HostCaps } from '../../../src/fault/types.js';
import { silentLogger } from '../../../src/log.js';
import { VirtualClock } from '../../../src/util/clock.js';

const WITH_NETEM: HostCaps = { netem: true, iptables: true, nsenter: true, notes: {} };
const NO_NETEM: HostCaps = { netem: false, iptables: true, nsenter: true, notes: { netem: 'the kernel has no netem qdisc (module sch_netem)' } };
const NOTHING: HostCaps = { netem: false, iptables: false, nsenter: true, notes: { netem: 'no netem', iptables: 'no iptables' } };

const parse = (p: Record<string, unknown>) => latency.params.parse(p);
const ctx = (caps: HostCaps): FaultContext => ({ docker: null, log: silentLogger, clock: new VirtualClock(), caps });

/** /proc/<pid>/net/tcp of a simulator container: 0.0.0.0:8000 listening, a client on 41234, a proxy on 127.0.0.1:20001. */
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 020011AC:1F40 010011AC:A112 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:4E21 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`;
const TCP6_ANY = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`;
const TCP6_LOOP = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`;

describe('latency params', () => {
  it('durations as plans write them; defaults', () => {
    expect(parse({ delay: '300ms', duration: '10s' })).toEqual({ delay: 300, duration: 10_000, jitter: 0, direction: 'down', driver: 'auto', existing_connections: 'reset' });
    expect(parse({ delay: 0.2, duration: 30, jitter: '20ms', direction: 'both', bandwidth_kbps: 800, stall: true, reset_probability: 0.1, port: 8000, driver: 'proxy' })).toMatchObject({
      delay: 200,
      duration: 30_000,
      jitter: 20,
      bandwidth_kbps: 800,
    });
    expect(parse({ duration: '5s', stall: true })).toMatchObject({ delay: 0, stall: true });
  });

  it.each([
    [{ delay: '300ms' }, /duration/],
    [{ delay: '3 parsecs', duration: '5s' }, /expected delay as a duration/],
    [{ duration: '5s' }, /nothing to inject/],
    [{ delay: '100ms', duration: '5s', reset_probability: 2 }, /reset_probability at most 1/],
    [{ delay: '100ms', duration: '5s', direction: 'in' }, /direction/],
    [{ delay: '100ms', duration: '5s', driver: 'tc' }, /driver/],
    [{ delay: '100ms', duration: '5s', rate: 5 }, /rate/],
    [{ jitter: '10ms', duration: '5s', stall: true }, /jitter is around a delay/],
  ])('%j is refused', (p, message) => {
    const r = latency.params.safeParse(p);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(message);
  });

  it('is held for its duration', () => {
    expect(latency.instant).toBe(false);
    expect(latency.holdMs?.(parse({ delay: '1ms', duration: '42s' }))).toBe(42_000);
  });
});

describe('latency driver', () => {
  it('auto: netem where the kernel has it and netem can do what is asked; else the proxy', () => {
    expect(chooseDriver(parse({ delay: '300ms', duration: '10s' }), WITH_NETEM)).toEqual({ driver: 'netem' });
    expect(chooseDriver(parse({ delay: '300ms', duration: '10s' }), NO_NETEM)).toEqual({ driver: 'proxy' });
    expect(chooseDriver(parse({ delay: '300ms', duration: '10s', direction: 'up' }), WITH_NETEM)).toEqual({ driver: 'proxy' });
    expect(chooseDriver(parse({ duration: '10s', stall: true }), WITH_NETEM)).toEqual({ driver: 'proxy' });
    expect(chooseDriver(parse({ duration: '10s', reset_probability: 0.5 }), WITH_NETEM)).toEqual({ driver: 'proxy' });
    expect(chooseDriver(parse({ delay: '300ms', duration: '10s', driver: 'proxy' }), WITH_NETEM)).toEqual({ driver: 'proxy' });
  });

  it('refusals say why', () => {
    expect(chooseDriver(parse({ delay: '300ms', duration: '10s', driver: 'netem' }), NO_NETEM)).toEqual({ refused: expect.stringMatching(/driver netem asked for, but the kernel has no netem/) });
    expect(chooseDriver(parse({ delay: '300ms', duration: '10s', driver: 'netem', stall: true }), WITH_NETEM)).toEqual({ refused: expect.stringMatching(/netem cannot do stall; use driver proxy/) });
    expect(chooseDriver(parse({ delay: '300ms', duration: '10s' }), NOTHING)).toEqual({ refused: expect.stringMatching(/needs iptables .* no iptables; no netem either \(no netem\)/) });
  });

  it('unsupported: only when neither driver can run', async () => {
    expect(await latency.unsupported?.({ ...ctx(NOTHING), docker: {} as never })).toMatch(/neither netem \(no netem\) nor iptables/);
    expect(await latency.unsupported?.({ ...ctx(WITH_NETEM), docker: {} as never })).toBeNull();
    expect(await latency.unsupported?.(ctx(WITH_NETEM))).toMatch(/Docker/);
  });
});

describe('latency commands', () => {
  it('netem: delay and jitter in µs, rate, a queue long enough for delayed packets', () => {
    expect(netemArgs(parse({ delay: '300ms', duration: '10s' }))).toEqual(['netem', 'delay', '300000us', 'limit', '100000']);
    expect(netemArgs(parse({ delay: '1.5ms', jitter: '0.5ms', bandwidth_kbps: 800, duration: '10s' }))).toEqual(['netem', 'delay', '1500us', '500us', 'rate', '800kbit', 'limit', '100000']);
  });

  it('proxy: the flags the helper runs with, seeded by the fault id; it outlasts the fault by a margin', () => {
    const p = parse({ delay: '300ms', jitter: '20ms', duration: '10s', direction: 'both', bandwidth_kbps: 64, stall: true, reset_probability: 0.5 });
    const args = proxyArgs(p, 20001, '127.0.0.1:8000', 'f1');
    // 10 s of fault, up to 3 s of grace for established connections, 2 s of margin.
    expect(args.slice(0, 6)).toEqual(['--listen', '0.0.0.0:20001', '--upstream', '127.0.0.1:8000', '--duration-ms', '15000']);
    expect(args.join(' ')).toMatch(/--latency-ms 300 --jitter-ms 20 --direction both --per-chunk --bandwidth-kbps 64 --stall --reset-probability 0.5 --seed \d+ --drain-ms 5000/);
    expect(proxyArgs(p, 20001, '127.0.0.1:8000', 'f1')).toEqual(args);
    expect(proxyArgs(p, 20001, '127.0.0.1:8000', 'f2')).not.toEqual(args);
  });
});

describe("the node's established connections (ss)", () => {
  /** `ss -t -n -i -H state established '( sport = :8000 )'` in a simulator container: one between requests, one streaming. */
  const SS = `0      0      172.17.0.4:8000 172.17.0.1:53824
\t bbr wscale:10,10 rto:204 rtt:0.028/0.013 bytes_sent:170 bytes_received:33 send 4550857143bps lastsnd:808 lastrcv:812 lastack:808 pacing_rate 12732827120bps
0      1448   172.17.0.4:8000 [::ffff:172.17.0.1]:53822
\t bbr wscale:10,10 rto:204 rtt:0.067/0.033 send 1728955224bps lastsnd:3 lastrcv:900 lastack:3 delivered:1
`;

  it('parses each socket with its queues and how long it has been quiet', () => {
    expect(parseSsInfo(SS)).toEqual([
      { recvQ: 0, sendQ: 0, peer: '172.17.0.1:53824', lastsnd: 808, lastrcv: 812 },
      { recvQ: 0, sendQ: 1448, peer: '[::ffff:172.17.0.1]:53822', lastsnd: 3, lastrcv: 900 },
    ]);
    expect(parseSsInfo('')).toEqual([]);
  });

  it('between requests: the node answered (its last byte out well after the last in) and has been quiet since', () => {
    const sock = (lastsnd: number | null, lastrcv: number | null, sendQ = 0) => ({ recvQ: 0, sendQ, peer: 'x', lastsnd, lastrcv });
    const [, streaming] = parseSsInfo(SS);
    expect(quiet(streaming!)).toBe(false); // bytes in flight, last sent 3 ms ago
    expect(quiet(sock(250, 900))).toBe(true); // answered for 650 ms, quiet for 250
    expect(quiet(sock(150, 900))).toBe(false); // a long gap between tokens, maybe
    expect(quiet(sock(800, 812))).toBe(false); // headers sent at once, prefill under way (or an unused connection)
    expect(quiet(sock(900, 300))).toBe(false); // a request in, nothing out since: being answered
    expect(quiet(sock(null, 900))).toBe(false);
  });

  it("the quiet needed follows the node's pace: a starved stream's long pause is not taken for the end of its answer", () => {
    const sock = (peer: string, lastsnd: number, lastrcv: number) => ({ recvQ: 0, sendQ: 0, peer, lastsnd, lastrcv });
    const w = new QuietWatch();
    // At first sight an idle keep-alive connection (quiet 250 ms) and a stream paused 210 ms look alike: neither is reset yet.
    expect(w.observe(0, [sock('idle', 250, 900), sock('stream', 210, 2000)])).toEqual([]);
    // 150 ms on, the stream sent again with no new request: a 210+ ms gap within a response.
    expect(w.observe(150, [sock('idle', 400, 1050), sock('stream', 2, 2150)])).toEqual([]);
    expect(w.maxGapMs).toBe(210);
    expect(w.thresholdMs()).toBe(630);
    // Watched long enough: the idle one, quiet 650 ms ≥ 630, is reset; the stream paused 250 ms again is not.
    expect(w.observe(400, [sock('idle', 650, 1300), sock('stream', 250, 2400)])).toEqual(['idle']);
    // Quiet past three times its longest pause: between requests.
    expect(w.observe(900, [sock('stream', 750, 2900)])).toEqual(['stream']);
  });

  it('a gap ended by a new request is the time between requests, not a pause within one; the cap bounds the quiet needed', () => {
    const sock = (peer: string, lastsnd: number, lastrcv: number) => ({ recvQ: 0, sendQ: 0, peer, lastsnd, lastrcv });
    const w = new QuietWatch();
    w.observe(0, [sock('pool', 2000, 2100)]);
    w.observe(100, [sock('pool', 1, 30)]); // a new request came in and was answered
    expect(w.maxGapMs).toBe(0);
    expect(w.thresholdMs()).toBe(200);
    w.observe(200, [sock('s', 900, 5000)]);
    w.observe(300, [sock('s', 1, 5100)]);
    expect(w.thresholdMs()).toBe(1500);
  });

  it('the grace before busy ones are cut: a third of the fault, at most 3 s; none when kept', () => {
    expect(existingGraceMs(parse({ delay: '1ms', duration: '3s' }))).toBe(1000);
    expect(existingGraceMs(parse({ delay: '1ms', duration: '60s' }))).toBe(3000);
    expect(existingGraceMs(parse({ delay: '1ms', duration: '60s', existing_connections: 'keep' }))).toBe(0);
    expect(proxyDurationMs(parse({ delay: '1ms', duration: '60s', existing_connections: 'keep' }))).toBe(62_000);
  });
});

describe("the target's sockets, from /proc", () => {
  it('parses listening and connected sockets with their local ports', () => {
    expect(parseProcNetTcp(TCP)).toEqual([
      { addr: '00000000', port: 8000, listening: true },
      { addr: '020011AC', port: 8000, listening: false },
      { addr: '0100007F', port: 20001, listening: true },
    ]);
  });

  it('the proxy reaches the node on 127.0.0.1 when it listens on any address; else where it listens', () => {
    const v4 = parseProcNetTcp(TCP);
    expect(upstreamFor(v4, [], 8000)).toBe('127.0.0.1:8000');
    expect(upstreamFor([{ addr: '020011AC', port: 8000, listening: true }], [], 8000)).toBe('172.17.0.2:8000');
    expect(upstreamFor(v4, parseProcNetTcp(TCP6_ANY), 8080)).toBe('127.0.0.1:8080');
    expect(upstreamFor([], parseProcNetTcp(TCP6_LOOP), 8080)).toBe('[::1]:8080');
    expect(upstreamFor(v4, [], 9000)).toBeNull();
  });

  it('the proxy port: free in the namespace, below the ephemeral range, stable per fault id', () => {
    const a = pickProxyPort(new Set(), 'f1');
    expect(a).toBeGreaterThanOrEqual(20_000);
    expect(a).toBeLessThan(30_000);
    expect(pickProxyPort(new Set(), 'f1')).toBe(a);
    const b = pickProxyPort(new Set([a as number]), 'f1');
    expect(b).not.toBe(a);
    expect(pickProxyPort(new Set(Array.from({ length: 10_000 }, (_, i) => 20_000 + i)), 'f1')).toBeNull();
  });
});

describe("the helper's output", () => {
  it("splits Docker's multiplexed log stream and finds the proxy's events", () => {
    const frame = (kind: number, text: string): Buffer => {
      const body = Buffer.from(text);
      const head = Buffer.alloc(8);
      head[0] = kind;
      head.writeUInt32BE(body.length, 4);
      return Buffer.concat([head, body]);
    };
    const logs = demuxLogs(Buffer.concat([frame(1, '{"event":"listening","port":20001}\n'), frame(2, 'warning\n'), frame(1, 'noise\n{"event":"exit","connections":3}\n')]));
    expect(logs.stderr).toBe('warning\n');
    expect(proxyEvents(logs.stdout, 'listening')).toEqual([{ event: 'listening', port: 20001 }]);
    expect(proxyEvents(logs.stdout, 'exit')).toEqual([{ event: 'exit', connections: 3 }]);
  });
});

describe('latency --dry-run description', () => {
  const target = { node: 'node', containerId: null, containerName: 'gauntlet-n1' };

  it('netem: the qdisc and its removal', async () => {
    const lines = await latency.describe(target, parse({ delay: '300ms', duration: '10s' }), ctx(WITH_NETEM));
    expect(lines.join('\n')).toMatch(/in the network namespace of gauntlet-n1: tc qdisc add dev .* root handle 6a18: netem delay 300000us/);
    expect(lines.at(-1)).toMatch(/after 10.0s: tc qdisc del/);
  });

  it('proxy: the helper, the redirect, the reset of established connections, the revert', async () => {
    const lines = await latency.describe(target, parse({ delay: '300ms', duration: '10s', port: 8000 }), ctx(NO_NETEM));
    const text = lines.join('\n');
    expect(text).toMatch(/start helper container gauntlet-fault-<fault id> in the network namespace of gauntlet-n1: proxy 0\.0\.0\.0:<free port> → 127\.0\.0\.1:8000, delay 300ms per chunk on the responses/);
    expect(text).toMatch(/iptables -t nat -A PREROUTING -p tcp --dport 8000 -m comment --comment gauntlet:<fault id> -j REDIRECT --to-ports <proxy port>/);
    expect(text).toMatch(/ss -K each established connection to port 8000 from outside once it is quiet .* cut those still busy after 3.00s/);
    expect(lines.at(-1)).toMatch(/after 10.0s: a RETURN rule in front turns new connections away from the proxy, the helper drains .* and is removed, then the rules are deleted \(revert\)/);
  });

  it('a refusal is described as one', async () => {
    expect(await latency.describe(target, parse({ delay: '300ms', duration: '10s', driver: 'netem' }), ctx(NO_NETEM))).toEqual([expect.stringMatching(/^refused: driver netem asked for/)]);
  });
});
