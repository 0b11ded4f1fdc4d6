// The daemon's live page in a real browser: headless Chromium (Debian's) driven over the DevTools
// protocol. Without the cookie `/` is a login form; a wrong token is refused; the right one sets
// an HttpOnly cookie and the page shows the run under way (its nodes, faults, episodes and the
// latest windows as charts), refreshing itself, with no console error. A screenshot is kept.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request, WebSocket } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonConfig } from '../../src/daemon/config.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { packageRoot } from '../../src/util/paths.js';
import { startSimProcess, type SimProcess } from '../helpers/sim-process.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/cli.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const inCi = process.env.CI === 'true';

/** One page over CDP: commands by id, events collected. */
class Cdp {
  private next = 0;
  private readonly pending = new Map<number, (r: { result?: unknown; error?: { message: string } }) => void>();
  readonly events: { method: string; params: Record<string, unknown> }[] = [];
  constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (m) => {
      const msg = JSON.parse(String(m.data)) as { id?: number; method?: string; params?: Record<string, unknown>; result?: unknown; error?: { message: string } };
      if (msg.id !== undefined) this.pending.get(msg.id)?.(msg);
      else if (msg.method) this.events.push({ method: msg.method, params: msg.params ?? {} });
    });
  }
  static async open(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve, { once: true });
      ws.addEventListener('error', reject, { once: true });
    });
    return new Cdp(ws);
  }
  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.next;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`CDP ${method}: no answer in 20 s`)), 20_000);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        this.pending.delete(id);
        if (r.error) reject(new Error(`CDP ${method}: ${r.error.message}`));
        else resolve(r.result as T);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
  async eval<T>(expression: string): Promise<T> {
    const r = await this.send<{ result: { value: T }; exceptionDetails?: unknown }>('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(`evaluate ${expression}: ${JSON.stringify(r.exceptionDetails)}`);
    return r.result.value;
  }
  close(): void {
    this.ws.close();
  }
}

describe.skipIf(!CHROMIUM && !inCi)('the live page in headless Chromium', () => {
  const dir = tempDir();
  let d: Daemon;
  let browser: ChildProcess;
  let cdp: Cdp;
  let sim: SimProcess;

  beforeAll(async () => {
    if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install -y chromium): CI must run the live page test');
    sim = await startSimProcess(['--gpus', '2', '--load-ms', '0', '--ttft-ms', '20', '--itl-ms', '5', '--spontaneous-kind', 'errors', '--spontaneous-mtbf-s', '3', '--spontaneous-duration-ms', '1500']);
    const config = { ...defaultDaemonConfig(dir), listen: { host: '127.0.0.1', port: 0 } };
    d = await startDaemon({ config, log: silentLogger, docker: null, cwd: dir });
    const profile = join(dir, 'chromium');
    mkdirSync(profile, { recursive: true });
    browser = spawn(CHROMIUM, ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--remote-debugging-port=0', `--user-data-dir=${profile}`, '--window-size=1200,1000', 'about:blank'], { stdio: 'ignore' });
    const portFile = join(profile, 'DevToolsActivePort');
    await until('Chromium to open its DevTools port', () => existsSync(portFile) && readFileSync(portFile, 'utf8').includes('\n'), 30_000);
    const port = readFileSync(portFile, 'utf8').split('\n')[0];
    const list = (await (await request(`http://127.0.0.1:${port}/json/list`)).body.json()) as { type: string; webSocketDebuggerUrl: string }[];
    const target = list.find((t) => t.type === 'page');
    if (!target) throw new Error('no page target in Chromium');
    cdp = await Cdp.open(target.webSocketDebuggerUrl);
    await cdp.send('Runtime.enable');
    await cdp.send('Log.enable');
    await cdp.send('Page.enable');
  }, 60_000);

  afterAll(async () => {
    cdp?.close();
    browser?.kill('SIGKILL');
    await d?.close();
    sim?.kill();
  });

  const navigate = async (url: string): Promise<void> => {
    const before = cdp.events.filter((e) => e.method === 'Page.loadEventFired').length;
    await cdp.send('Page.navigate', { url });
    await until('the page to load', () => cdp.events.filter((e) => e.method === 'Page.loadEventFired').length > before, 20_000);
  };

  it('login form, wrong token refused, right token → the run under way with nodes, windows as charts; no console errors; screenshot', async () => {
    const plan = parsePlanText(`name: live\nduration: 60s\ntargets: [{ name: ext, endpoint: "${sim.endpoint}" }]\nload: { rate: 5, model: sim-llama, stream: true, max_tokens: 4, window: 1s }\nprobes: { interval: 500ms }\ntelemetry: { interval: 0s }\n`, 'live.yaml');
    const a = d.runs.submit({ plan, planSource: null, origin: { kind: 'api' }, whenBusy: 'skip' });
    expect(a.state).toBe('running');
    const base = d.address as string;

    await navigate(`${base}/`);
    expect(await cdp.eval<boolean>("!!document.querySelector('form input#token')")).toBe(true);
    // a wrong token: refused, still the form
    await cdp.eval("document.querySelector('#token').value = 'wrong'; document.querySelector('form').submit(); true");
    await until('the refusal', async () => (await cdp.eval<boolean>("!!document.querySelector('#login-error')").catch(() => false)), 20_000);
    // the right one: the cookie, then the live page
    await cdp.eval(`document.querySelector('#token').value = ${JSON.stringify(d.token)}; document.querySelector('form').submit(); true`);
    await until('the run under way on the page', async () => (await cdp.eval<string>("document.querySelector('#current h2')?.textContent ?? ''").catch(() => '')).includes(a.id as string), 20_000);
    // the cookie is HttpOnly: the page's script cannot read it
    expect(await cdp.eval<string>('document.cookie')).toBe('');
    // windows arrive and are drawn (three charts with a line), nodes listed with their state
    await until('the charts to have lines', async () => (await cdp.eval<number>("document.querySelectorAll('#charts svg polyline').length")) === 3, 20_000).catch(async (e: Error) => {
      const live = await (await request(`${base}/api/live`, { headers: { authorization: `Bearer ${d.token}` } })).body.text();
      throw new Error(`${e.message}; /api/live: ${live.slice(0, 1500)}`);
    });
    // the node's own bursts of 500s (the simulator's, about every 3 s) are episodes on the page
    await until('an episode on the page', async () => /Episodes\s+node\s+cause[\s\S]*ext\s+spontaneous/.test(await cdp.eval<string>('document.body.innerText')), 30_000);
    const text = await cdp.eval<string>('document.body.innerText');
    expect(text).toMatch(/Nodes\s+node\s+state\s+since\s+ext\s+(up|busy|degraded|down|recovering)\s/);
    expect(text).toMatch(/rate: \d+(\.\d)? req\/s/);
    expect(text).toMatch(new RegExp(`Runs[\\s\\S]*${a.id}\\s+live\\s+running`));
    // it refreshes itself
    const first = await cdp.eval<string>("document.querySelector('#updated').textContent");
    await until('a refresh', async () => (await cdp.eval<string>("document.querySelector('#updated').textContent")) !== first, 10_000);

    const shot = await cdp.send<{ data: string }>('Page.captureScreenshot', { format: 'png' });
    const outDir = join(packageRoot(), 'test', 'artifacts');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'live-page.png'), Buffer.from(shot.data, 'base64'));

    const errors = cdp.events.filter((e) => e.method === 'Runtime.exceptionThrown' || (e.method === 'Runtime.consoleAPICalled' && e.params.type === 'error') || (e.method === 'Log.entryAdded' && (e.params.entry as { level: string; url?: string; text: string }).level === 'error'));
    // (the refused login's 401 is the only network error the page may log)
    const unexpected = errors.filter((e) => !(e.method === 'Log.entryAdded' && /401/.test((e.params.entry as { text: string }).text)));
    expect(unexpected.map((e) => JSON.stringify(e.params).slice(0, 300))).toEqual([]);
    d.runs.stop(a.id as string, 'test over');
    await d.runs.wait(a.id as string);
  }, 120_000);
});
