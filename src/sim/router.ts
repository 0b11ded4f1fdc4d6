// A small router in front of several inference nodes, as a service endpoint would be (nginx,
// Envoy, a Kubernetes Service with readiness checks): a seeded random choice among the backends
// it believes healthy (like Envoy's random policy or kube-proxy: no round-robin pointer shared by
// every client, which would make one client's requests decide where another's go), an active health check of each every --router-check-ms (taken out after three failed
// checks in a row, as load balancers' unhealthy thresholds do, so one slow answer on a busy
// machine does not take a healthy backend out), a backend taken out at once when a connection
// to it fails, and a request retried on the next backend when it failed
// before any byte of the answer came back (a stream already under way cannot be retried: the
// client sees it cut). Writes TRUTH lines for what the client saw: each request it could not
// serve (client_error) and each backend it took out or put back.
import { request as httpRequest, type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { seededRandom } from '../util/random.js';

export interface RouterOptions {
  backends: URL[];
  checkMs: number;
  checkTimeoutMs: number;
  seed: number;
}

interface Backend {
  url: URL;
  healthy: boolean;
  failedChecks: number;
}

/** Failed health checks in a row that take a backend out. */
const UNHEALTHY_THRESHOLD = 3;

export function createRouter(opts: RouterOptions, truth: (event: string, detail?: Record<string, unknown>) => void): Server {
  const backends: Backend[] = opts.backends.map((url) => ({ url, healthy: true, failedChecks: 0 }));
  const rng = seededRandom(opts.seed);
  const mark = (b: Backend, healthy: boolean, why: string): void => {
    if (b.healthy === healthy) return;
    b.healthy = healthy;
    truth(healthy ? 'backend_up' : 'backend_down', { backend: b.url.host, why });
  };
  const checked = (b: Backend, ok: boolean, why: string): void => {
    b.failedChecks = ok ? 0 : b.failedChecks + 1;
    if (ok) mark(b, true, why);
    else if (b.failedChecks >= UNHEALTHY_THRESHOLD) mark(b, false, why);
  };
  const check = (b: Backend): void => {
    let done = false;
    const once = (ok: boolean, why: string): void => {
      if (done) return;
      done = true;
      checked(b, ok, why);
    };
    const req = httpRequest(new URL('/health', b.url), { method: 'GET', timeout: opts.checkTimeoutMs, agent: false }, (res) => {
      res.resume();
      once(res.statusCode === 200, `health check HTTP ${res.statusCode}`);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.checkTimeoutMs} ms`)));
    req.on('error', (err) => once(false, `health check: ${err.message}`));
    req.end();
  };
  const timer = setInterval(() => backends.forEach(check), opts.checkMs);
  timer.unref();

  const pick = (tried: Set<Backend>): Backend | null => {
    const candidates = backends.filter((b) => b.healthy && !tried.has(b));
    return candidates[Math.floor(rng.next() * candidates.length)] ?? null;
  };

  const forward = (req: IncomingMessage, body: Buffer, res: ServerResponse, tried: Set<Backend>): void => {
    const b = pick(tried);
    if (!b) {
      truth('client_error', { path: req.url, why: 'no healthy backend' });
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 503, message: 'no healthy backend', type: 'unavailable_error' } }));
      return;
    }
    tried.add(b);
    let answered = false;
    const up = httpRequest(new URL(req.url ?? '/', b.url), { method: req.method, headers: { ...req.headers, host: b.url.host }, agent: false }, (r) => {
      answered = true;
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
      r.on('error', () => res.destroy());
      r.on('aborted', () => {
        truth('client_error', { path: req.url, why: `stream from ${b.url.host} cut` });
        res.destroy();
      });
    });
    up.on('error', (err) => {
      if (answered) {
        truth('client_error', { path: req.url, why: `stream from ${b.url.host} cut: ${err.message}` });
        return void res.destroy();
      }
      // nothing came back yet: take the backend out and try the next one
      b.failedChecks = UNHEALTHY_THRESHOLD;
      mark(b, false, `request: ${err.message}`);
      forward(req, body, res, tried);
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    up.end(body);
  };

  const server = createServer((req, res) => {
    if (req.url === '/health') {
      const any = backends.some((b) => b.healthy);
      res.writeHead(any ? 200 : 503, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ status: any ? 'ok' : 'no healthy backend' }));
    }
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => forward(req, Buffer.concat(parts), res, new Set()));
  });
  server.on('close', () => clearInterval(timer));
  return server;
}
