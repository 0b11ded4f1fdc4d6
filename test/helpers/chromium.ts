// Headless Chromium (Debian's) driven over the DevTools protocol, for tests of what a person
// sees: a page loaded, its text and console read, a screenshot taken.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request, WebSocket } from 'undici';
import { until } from './cli.js';
import { packageRoot } from '../../src/util/paths.js';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

export /** One page over CDP: commands by id, events collected. */
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

/** A headless Chromium with one page open over CDP (Runtime, Log and Page enabled). */
export async function openChromium(profileDir: string, size = '1200,1000'): Promise<{ browser: ChildProcess; cdp: Cdp; navigate(url: string): Promise<void>; errors(): { method: string; params: Record<string, unknown> }[]; close(): Promise<void> }> {
  if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install -y chromium)');
  mkdirSync(profileDir, { recursive: true });
  // a process group of its own: Chromium's helpers (renderer, GPU, zygote) outlive a SIGKILL of
  // the browser alone and keep writing to the profile, which the test's teardown then cannot remove
  const browser = spawn(CHROMIUM, ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--remote-debugging-port=0', `--user-data-dir=${profileDir}`, `--window-size=${size}`, 'about:blank'], { stdio: 'ignore', detached: true });
  const exited = new Promise<void>((resolve) => browser.once('exit', () => resolve()));
  const killAll = (): void => {
    try {
      if (browser.pid !== undefined) process.kill(-browser.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  try {
    const portFile = join(profileDir, 'DevToolsActivePort');
    await until('Chromium to open its DevTools port', () => existsSync(portFile) && readFileSync(portFile, 'utf8').includes('\n'), 30_000);
    const port = readFileSync(portFile, 'utf8').split('\n')[0];
    const list = (await (await request(`http://127.0.0.1:${port}/json/list`)).body.json()) as { type: string; webSocketDebuggerUrl: string }[];
    const target = list.find((t) => t.type === 'page');
    if (!target) throw new Error('no page target in Chromium');
    const cdp = await Cdp.open(target.webSocketDebuggerUrl);
    await cdp.send('Runtime.enable');
    await cdp.send('Log.enable');
    await cdp.send('Page.enable');
    return {
      browser,
      cdp,
      async navigate(url: string): Promise<void> {
        const before = cdp.events.filter((e) => e.method === 'Page.loadEventFired').length;
        await cdp.send('Page.navigate', { url });
        await until('the page to load', () => cdp.events.filter((e) => e.method === 'Page.loadEventFired').length > before, 20_000);
      },
      errors: () => cdp.events.filter((e) => e.method === 'Runtime.exceptionThrown' || (e.method === 'Runtime.consoleAPICalled' && e.params.type === 'error') || (e.method === 'Log.entryAdded' && (e.params.entry as { level: string }).level === 'error')),
      async close(): Promise<void> {
        cdp.close();
        killAll();
        await exited;
      },
    };
  } catch (err) {
    killAll();
    await exited;
    throw err;
  }
}

/** The page from its top down to `maxHeight` px as a PNG kept in test/artifacts/<name> (CI keeps that folder). */
export async function keepScreenshot(cdp: Cdp, name: string, width: number, maxHeight: number): Promise<void> {
  const metrics = await cdp.send<{ cssContentSize: { height: number } }>('Page.getLayoutMetrics');
  const shot = await cdp.send<{ data: string }>('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true, clip: { x: 0, y: 0, width, height: Math.min(metrics.cssContentSize.height, maxHeight), scale: 1 } });
  const outDir = join(packageRoot(), 'test', 'artifacts');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, name), Buffer.from(shot.data, 'base64'));
}
