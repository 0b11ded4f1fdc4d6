// The node prober against real sockets: a fixed schedule that never waits for an earlier probe,
// the fast pace when a probe goes unanswered or the node fails, a fresh connection per probe,
// and "serving again" pinned down to one fast interval behind a stand-in for Docker's userland
// port proxy (it accepts connections before the server listens and holds them ~1 s).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createConnection, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeProber, probeDispatcher, type ProbePace, type ProbeResult } from '../../src/detect/probes.js';
import { RealClock } from '../../src/util/clock.js';
import { watchLateness } from '../helpers/timing.js';

const clock = new RealClock();
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const chatAnswer = JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'x' }, finish_reason: 'length' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });

/** An HTTP server; `health` decides what /health does (answer, or hold forever). Counts sockets. */
async function server(health: 'ok' | 'hold', port = 0): Promise<{ server: Server; port: number; sockets: Set<Socket>; requests: number }> {
  const state = { sockets: new Set<Socket>(), requests: 0 };
  const held: ServerResponse[] = [];
  const s = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.requests++;
    state.sockets.add(req.socket);
    if (req.url === '/health') {
      if (health === 'hold') return void held.push(res);
      return void res.end('{"status":"ok"}');
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(chatAnswer);
    });
  });
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  closers.push(
    () =>
      new Promise<void>((r) => {
        for (const h of held) h.destroy();
        s.closeAllConnections();
        s.close(() => r());
      }),
  );
  return { server: s, port: (s.address() as AddressInfo).port, ...state, get requests() { return state.requests; } };
}

function prober(port: number, cfg: Partial<{ intervalMs: number; timeoutMs: number; fastIntervalMs: number; canaryIntervalMs: number }>, pace: () => ProbePace) {
  const results: ProbeResult[] = [];
  const p = new NodeProber(
    {
      endpoint: `http://127.0.0.1:${port}`,
      healthPath: '/health',
      intervalMs: cfg.intervalMs ?? 1000,
      timeoutMs: cfg.timeoutMs ?? 1000,
      fastIntervalMs: cfg.fastIntervalMs ?? 100,
      canaryIntervalMs: cfg.canaryIntervalMs ?? 60_000,
      canaryTimeoutMs: cfg.timeoutMs ?? 1000,
      api: 'chat',
      model: 'm',
    },
    clock,
    probeDispatcher(),
    (r) => results.push(r),
    pace,
  );
  closers.push(() => p.stop());
  return { p, results };
}

describe('NodeProber on real sockets', () => {
  it('keeps its schedule while /health answers nothing: probes overlap, each unanswered one is a timeout, and the pace turns fast', async () => {
    const srv = await server('hold');
    const { p, results } = prober(srv.port, { intervalMs: 1000, timeoutMs: 600, fastIntervalMs: 100 }, () => 'normal');
    const t0 = clock.now();
    p.start();
    await clock.sleep(1500);
    await p.stop();
    const health = results.filter((r) => r.kind === 'health');
    // Sequential probes (wait for each answer) would have sent 2 in 1.5 s. On a fixed schedule
    // that turns fast once the first is 100 ms overdue: one at 0, then every 100 ms from ~100.
    expect(health.length).toBeGreaterThanOrEqual(6);
    expect(health.every((r) => !r.ok)).toBe(true);
    const timedOut = health.filter((r) => r.timedOut);
    expect(timedOut.length).toBeGreaterThanOrEqual(4);
    for (const r of timedOut) expect(r.latencyMs).toBeGreaterThanOrEqual(600 - 1);
    // overlap: the second was sent before the first had ended
    const sorted = [...health].sort((a, b) => a.sentAt - b.sentAt);
    const [a, b] = sorted as [ProbeResult, ProbeResult];
    expect(b.sentAt).toBeLessThan(a.sentAt + a.latencyMs);
    expect(a.sentAt - t0).toBeLessThan(500);
  });

  it('opens a fresh connection for every probe', async () => {
    const srv = await server('ok');
    const { p, results } = prober(srv.port, { intervalMs: 100, fastIntervalMs: 100, canaryIntervalMs: 300 }, () => 'normal');
    p.start();
    await clock.sleep(1000);
    await p.stop();
    expect(results.filter((r) => r.ok).length).toBeGreaterThanOrEqual(5);
    expect(results.some((r) => r.kind === 'inference' && r.ok)).toBe(true);
    expect(srv.sockets.size).toBe(srv.requests);
  });

  it('hurry() switches to the fast pace at once', async () => {
    const srv = await server('ok');
    let pace: ProbePace = 'normal';
    const { p, results } = prober(srv.port, { intervalMs: 5000, fastIntervalMs: 100 }, () => pace);
    p.start();
    await clock.sleep(300);
    expect(results.filter((r) => r.kind === 'health')).toHaveLength(1);
    const lateness = watchLateness(() => clock.now());
    pace = 'down';
    const at = clock.now();
    p.hurry();
    await clock.sleep(450);
    await p.stop();
    const l = lateness.stop();
    const after = results.filter((r) => r.sentAt >= at);
    const firstHealth = after.find((r) => r.kind === 'health');
    const firstCanary = after.find((r) => r.kind === 'inference');
    expect(firstHealth).toBeDefined();
    expect(firstCanary).toBeDefined();
    // The first fast probes go out at once (one interval at most, plus however late the loop ran).
    expect((firstHealth as ProbeResult).sentAt - at).toBeLessThanOrEqual(100 + l.worst(at, at + 200) + 5);
    expect(after.filter((r) => r.kind === 'health').length).toBeGreaterThanOrEqual(3);
  });
});

/**
 * Docker's userland proxy, as seen during a restart: it accepts on the published port while
 * the server does not listen yet and holds those connections; `holdMs` after the server
 * listens it connects them through. Connections accepted after that go straight through.
 */
async function portProxy(backendPort: () => number | null, holdMs: number): Promise<{ port: number; listening(at: number): void; held: number }> {
  let listeningAt: number | null = null;
  const waiting: Socket[] = [];
  const pipe = (client: Socket, port: number): void => {
    const up = createConnection({ host: '127.0.0.1', port });
    client.pipe(up).pipe(client);
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  };
  const state = { held: 0 };
  const srv: TcpServer = createTcpServer((client) => {
    const port = backendPort();
    if (port !== null && listeningAt !== null) return pipe(client, port);
    state.held++;
    client.pause();
    waiting.push(client);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(
    () =>
      new Promise<void>((r) => {
        for (const w of waiting) w.destroy();
        srv.close(() => r());
      }),
  );
  return {
    port: (srv.address() as AddressInfo).port,
    get held() {
      return state.held;
    },
    listening(at: number) {
      listeningAt = at;
      setTimeout(() => {
        const port = backendPort() as number;
        for (const c of waiting.splice(0)) {
          pipe(c, port);
          c.resume();
        }
      }, holdMs);
    },
  };
}

describe('serving again behind a port proxy that holds early connections', () => {
  it('the earliest answer among concurrent canaries on fresh connections is within one fast interval of the server listening', async () => {
    let backend: number | null = null;
    const proxy = await portProxy(() => backend, 1000);
    const fast = 100;
    const { p, results } = prober(proxy.port, { intervalMs: 1000, timeoutMs: 3000, fastIntervalMs: fast }, () => 'down');
    const lateness = watchLateness(() => clock.now());
    p.start();
    await clock.sleep(500);
    // The node's server starts listening now: ground truth for "serving again".
    const srv = await server('ok');
    backend = srv.port;
    const listenedAt = clock.now();
    proxy.listening(listenedAt);
    await clock.sleep(2000);
    await p.stop();
    const l = lateness.stop();
    const canaries = results.filter((r) => r.kind === 'inference' && r.ok && r.respondedAt !== null);
    const first = Math.min(...canaries.map((r) => r.respondedAt as number));
    // (one sent just before the server listened may reach the proxy just after: not held)
    const held = canaries.filter((r) => r.sentAt < listenedAt - 100);
    // The stand-in did hold the early ones: answered a whole hold after the server listened.
    expect(proxy.held).toBeGreaterThanOrEqual(3);
    expect(held.length).toBeGreaterThanOrEqual(3);
    for (const r of held) expect(r.respondedAt as number).toBeGreaterThanOrEqual(listenedAt + 1000 - 5);
    // One inference's own time, measured on the same path after the hold.
    const direct = canaries.filter((r) => r.sentAt > listenedAt + 1100).map((r) => (r.respondedAt as number) - r.sentAt);
    const inference = Math.max(...direct);
    const error = first - listenedAt;
    console.log(`probes behind a holding proxy: serving again seen ${error.toFixed(1)} ms after the server listened (fast interval ${fast} ms, one inference ≤ ${inference.toFixed(1)} ms, loop late ≤ ${l.worst(listenedAt, first).toFixed(1)} ms); ${held.length} canaries held until +1000 ms`);
    expect(error).toBeGreaterThanOrEqual(0);
    expect(error).toBeLessThanOrEqual(fast + inference + l.worst(listenedAt, first) + 5);
  });
});
