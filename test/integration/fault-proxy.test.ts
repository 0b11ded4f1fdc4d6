// The built fault proxy (dist/helpers/proxy.cjs) as a real process between a client and local
// servers on 127.0.0.1: what it delays is measured against direct connections in the same run
// (never against fixed speeds), bytes are compared exactly, and its own JSON lines and counters
// say what it did.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/util/paths.js';
import { freePort } from '../../src/util/ports.js';
import { quantile } from '../helpers/timing.js';

const PROXY = join(packageRoot(), 'dist', 'helpers', 'proxy.cjs');
const BIG = Buffer.alloc(16 * 1024 * 1024);
for (let i = 0; i < BIG.length; i += 4) BIG.writeUInt32LE((i * 2654435761) >>> 0, i);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

type Line = Record<string, unknown> & { event: string };

interface RunningProxy {
  port: number;
  proc: ChildProcess;
  lines: Line[];
  stderr: () => string;
  /** Waits (bounded) for an event line. */
  event(name: string, limitMs?: number): Promise<Line>;
  /** SIGTERM, then the exit code and the exit line. */
  stop(): Promise<{ code: number | null; exit: Line | undefined }>;
}

const running = new Set<ChildProcess>();

async function startProxy(args: string[]): Promise<RunningProxy> {
  const proc = spawn(process.execPath, [PROXY, '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  const lines: Line[] = [];
  let err = '';
  let buf = '';
  proc.stdout?.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, i)) as Line);
      buf = buf.slice(i + 1);
    }
  });
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => (running.delete(proc), r(code))));
  const event = async (name: string, limitMs = 10_000): Promise<Line> => {
    for (let waited = 0; waited <= limitMs; waited += 10) {
      const l = lines.find((x) => x.event === name);
      if (l) return l;
      if (proc.exitCode !== null) throw new Error(`proxy exited (${proc.exitCode}) before "${name}": ${err}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no "${name}" line from the proxy within ${limitMs} ms: ${err}`);
  };
  const listening = await event('listening');
  return {
    port: listening.port as number,
    proc,
    lines,
    stderr: () => err,
    event,
    async stop() {
      proc.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => (proc.kill('SIGKILL'), r(null)), 10_000))]);
      return { code, exit: lines.find((l) => l.event === 'exit') };
    },
  };
}

/** One HTTP request on a fresh connection: status, body, time from the request to the last byte (ms). */
function fetchOnce(port: number, path: string, body?: Buffer, timeoutMs = 20_000): Promise<{ status: number; body: Buffer; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = httpRequest({ host: '127.0.0.1', port, path, method: body ? 'POST' : 'GET', agent: false, timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

describe('the fault proxy (dist/helpers/proxy.cjs) against local servers', () => {
  let http: Server;
  let httpPort: number;
  let echoPort: number;
  const echo = createTcpServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.pipe(s); // echoes, and ends its side when the client ends its own (half-close)
  });

  beforeAll(async () => {
    if (!existsSync(PROXY)) throw new Error(`${PROXY} is missing: run npm run build first`);
    http = createHttpServer((req, res) => {
      if (req.method === 'POST') {
        const parts: Buffer[] = [];
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => res.end(Buffer.concat(parts)));
        return;
      }
      req.resume();
      if (req.url === '/big') return void res.end(BIG);
      if (req.url?.startsWith('/size/')) return void res.end(BIG.subarray(0, Number(req.url.slice(6))));
      res.end('ok');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    httpPort = (http.address() as AddressInfo).port;
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const p of running) p.kill('SIGKILL');
    await new Promise((r) => http?.close(r));
    await new Promise((r) => echo.close(r));
  });

  it('a bad flag exits 2, naming it', async () => {
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const p = spawn(process.execPath, [PROXY, '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--duration-ms', '1', '--latency', '5'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr?.on('data', (d: Buffer) => (err += d.toString('utf8')));
      p.on('exit', (code) => resolve({ code, err }));
    });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^proxy: unknown flag --latency\n/);
  });

  it('latency: every response is later than a direct one by at least the delay; after the duration it passes through', async () => {
    const DELAY = 300;
    const proxy = await startProxy(['--upstream', `127.0.0.1:${httpPort}`, '--duration-ms', '60000', '--latency-ms', String(DELAY)]);
    const direct: number[] = [];
    const proxied: number[] = [];
    // Interleaved, so both see the same machine.
    for (let i = 0; i < 7; i++) {
      direct.push((await fetchOnce(httpPort, '/')).ms);
      const r = await fetchOnce(proxy.port, '/');
      expect(r.body.toString()).toBe('ok');
      proxied.push(r.ms);
    }
    const shift = quantile(proxied, 0.5) - quantile(direct, 0.5);
    process.stderr.write(`fault-proxy latency ${DELAY} ms: direct p50 ${quantile(direct, 0.5).toFixed(1)} ms, proxied p50 ${quantile(proxied, 0.5).toFixed(1)} ms (min ${Math.min(...proxied).toFixed(1)}), shift ${shift.toFixed(1)} ms\n`);
    for (const ms of proxied) expect(ms).toBeGreaterThanOrEqual(DELAY - 1);
    expect(shift).toBeGreaterThanOrEqual(DELAY - 1);
    const { code, exit } = await proxy.stop();
    expect(code).toBe(0);
    expect(exit).toMatchObject({ connections: 7, active: 0, errors: 0, resets: 0 });
    expect(exit?.chunks_delayed as number).toBeGreaterThanOrEqual(7);
  }, 60_000);

  it('after --duration-ms: fault_ended, then a transparent pass-through (nothing more delayed)', async () => {
    const DELAY = 300;
    const proxy = await startProxy(['--upstream', `127.0.0.1:${httpPort}`, '--duration-ms', '1500', '--latency-ms', String(DELAY)]);
    const during = await fetchOnce(proxy.port, '/');
    expect(during.ms).toBeGreaterThanOrEqual(DELAY - 1);
    const ended = await proxy.event('fault_ended', 10_000);
    expect(ended).toMatchObject({ why: 'duration', connections: 1 });
    expect(ended.after_ms as number).toBeGreaterThanOrEqual(1500);
    const direct: number[] = [];
    const after: number[] = [];
    for (let i = 0; i < 5; i++) {
      direct.push((await fetchOnce(httpPort, '/')).ms);
      const r = await fetchOnce(proxy.port, '/');
      expect(r.body.toString()).toBe('ok');
      after.push(r.ms);
    }
    process.stderr.write(`fault-proxy after the fault: during ${during.ms.toFixed(1)} ms; after p50 ${quantile(after, 0.5).toFixed(1)} ms vs direct p50 ${quantile(direct, 0.5).toFixed(1)} ms\n`);
    // The proxy's own count is the evidence: no chunk was delayed after the end.
    const { exit } = await proxy.stop();
    expect(exit).toMatchObject({ connections: 6, chunks_delayed: ended.chunks_delayed });
    expect(exit?.bytes_down as number).toBeGreaterThan(ended.bytes_down as number);
    // And in time, next to ground truth: at least one request came back sooner than the delay would allow.
    expect(Math.min(...after)).toBeLessThan(Math.max(...direct) + DELAY);
  }, 60_000);

  it('forwards a large payload byte for byte both ways, in order, with jitter and backpressure', async () => {
    const proxy = await startProxy(['--upstream', `127.0.0.1:${httpPort}`, '--duration-ms', '60000', '--latency-ms', '3', '--jitter-ms', '3', '--direction', 'both', '--seed', '9']);
    const down = await fetchOnce(proxy.port, '/big');
    expect(down.body.length).toBe(BIG.length);
    expect(sha(down.body)).toBe(sha(BIG));
    const upload = BIG.subarray(0, 4 * 1024 * 1024);
    const up = await fetchOnce(proxy.port, '/echo', upload);
    expect(sha(up.body)).toBe(sha(upload));
    const { exit } = await proxy.stop();
    expect(exit).toMatchObject({ errors: 0, bytes_up: expect.any(Number) });
    expect(exit?.bytes_down as number).toBeGreaterThan(BIG.length + upload.length);
    expect(exit?.bytes_up as number).toBeGreaterThan(upload.length);
    process.stderr.write(`fault-proxy payload: 16 MiB down in ${down.ms.toFixed(0)} ms, 4 MiB up and back in ${up.ms.toFixed(0)} ms, ${String(exit?.chunks_delayed)} chunks delayed\n`);
  }, 60_000);

  it('bandwidth cap: a 64 KiB answer takes at least its size over the rate', async () => {
    const KBPS = 1024; // 128 KiB/s
    const size = 64 * 1024;
    const proxy = await startProxy(['--upstream', `127.0.0.1:${httpPort}`, '--duration-ms', '60000', '--bandwidth-kbps', String(KBPS)]);
    const direct = await fetchOnce(httpPort, `/size/${size}`);
    const r = await fetchOnce(proxy.port, `/size/${size}`);
    expect(sha(r.body)).toBe(sha(BIG.subarray(0, size)));
    const floor = (size * 8) / KBPS; // ms
    process.stderr.write(`fault-proxy bandwidth ${KBPS} kbit/s: 64 KiB in ${r.ms.toFixed(0)} ms (floor ${floor.toFixed(0)} ms; direct ${direct.ms.toFixed(1)} ms)\n`);
    expect(r.ms).toBeGreaterThanOrEqual(floor * 0.95);
    await proxy.stop();
  }, 30_000);

  it('stall: the connection is accepted, nothing forwarded until the fault ends, then released', async () => {
    const STALL = 3000;
    const proxy = await startProxy(['--upstream', `127.0.0.1:${httpPort}`, '--duration-ms', String(STALL), '--stall']);
    const seenListening = performance.now();
    let answeredAt: number | null = null;
    const pending = fetchOnce(proxy.port, '/').then((r) => ((answeredAt = performance.now()), r));
    await new Promise((r) => setTimeout(r, 1000));
    // The fault ends STALL ms after the proxy listened, which was before we saw its line.
    const heldFor = performance.now() - seenListening;
    if (heldFor < STALL) expect(answeredAt, `answered while the stall should hold (${heldFor.toFixed(0)} ms in)`).toBeNull();
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('ok');
    const ended = await proxy.event('fault_ended');
    expect(ended).toMatchObject({ stalled: 1 });
    process.stderr.write(`fault-proxy stall ${STALL} ms: held ${r.ms.toFixed(0)} ms (checked still held at ${heldFor.toFixed(0)} ms)\n`);
    await proxy.stop();
  }, 30_000);

  it('reset probability 1: every new connection is reset; the proxy lives on', async () => {
    const proxy = await startProxy(['--upstream', `127.0.0.1:${httpPort}`, '--duration-ms', '60000', '--reset-probability', '1']);
    for (let i = 0; i < 3; i++) {
      const code = await new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: proxy.port }, () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        s.on('close', () => resolve('closed without error'));
        s.setTimeout(5000, () => resolve('timeout'));
      });
      expect(code).toBe('ECONNRESET');
    }
    const { code, exit } = await proxy.stop();
    expect(code).toBe(0);
    expect(exit).toMatchObject({ connections: 3, resets: 3 });
  }, 30_000);

  it('half-close: the client ends its side, the answer still comes back through the delayed direction', async () => {
    const proxy = await startProxy(['--upstream', `127.0.0.1:${echoPort}`, '--duration-ms', '60000', '--latency-ms', '100', '--direction', 'both']);
    const got = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true }, () => s.end('hello, half-closed'));
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString()));
      s.on('end', () => resolve(data));
      s.on('error', reject);
      s.setTimeout(10_000, () => reject(new Error('no answer')));
    });
    expect(got).toBe('hello, half-closed');
    const { exit } = await proxy.stop();
    expect(exit).toMatchObject({ connections: 1, active: 0, errors: 0 });
  }, 30_000);

  it('upstream refused: the client is closed, the proxy counts it and goes on', async () => {
    const dead = await freePort();
    const proxy = await startProxy(['--upstream', `127.0.0.1:${dead}`, '--duration-ms', '60000', '--latency-ms', '10']);
    const outcome = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: proxy.port }, () => s.write('x'));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      s.on('close', () => resolve('closed'));
      s.setTimeout(5000, () => resolve('timeout'));
    });
    expect(['closed', 'ECONNRESET']).toContain(outcome);
    await proxy.event('connection_error');
    expect(proxy.proc.exitCode).toBeNull();
    const { code, exit } = await proxy.stop();
    expect(code).toBe(0);
    expect(exit).toMatchObject({ connections: 1, upstream_refused: 1 });
  }, 30_000);

  it('SIGTERM with a connection held open: it drains, cuts what is left, prints its counters and exits 0', async () => {
    const proxy = await startProxy(['--upstream', `127.0.0.1:${echoPort}`, '--duration-ms', '60000', '--drain-ms', '500']);
    const s = connect({ host: '127.0.0.1', port: proxy.port });
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write('ping');
    await new Promise<void>((r) => s.once('data', () => r()));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    const { code, exit } = await proxy.stop();
    await closed;
    expect(code).toBe(0);
    expect(exit).toMatchObject({ signal: 'SIGTERM', connections: 1 });
  }, 30_000);
});
