// The daemon's live page in a real browser: headless Chromium (Debian's) driven over the DevTools
// protocol. Without the cookie `/` is a login form; a wrong token is refused; the right one sets
// an HttpOnly cookie and the page shows the run under way (its nodes, faults, episodes and the
// latest windows as charts), refreshing itself, with no console error. A screenshot is kept.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonConfig } from '../../src/daemon/config.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { packageRoot } from '../../src/util/paths.js';
import { startSimProcess, type SimProcess } from '../helpers/sim-process.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/cli.js';
import { CHROMIUM, openChromium, type Cdp } from '../helpers/chromium.js';

const inCi = process.env.CI === 'true';

describe.skipIf(!CHROMIUM && !inCi)('the live page in headless Chromium', () => {
  const dir = tempDir();
  let d: Daemon;
  let chrome: Awaited<ReturnType<typeof openChromium>>;
  let cdp: Cdp;
  let sim: SimProcess;

  beforeAll(async () => {
    if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install -y chromium): CI must run the live page test');
    sim = await startSimProcess(['--gpus', '2', '--load-ms', '0', '--ttft-ms', '20', '--itl-ms', '5', '--spontaneous-kind', 'errors', '--spontaneous-mtbf-s', '3', '--spontaneous-duration-ms', '1500']);
    const config = { ...defaultDaemonConfig(dir), listen: { host: '127.0.0.1', port: 0 } };
    d = await startDaemon({ config, log: silentLogger, docker: null, cwd: dir });
    chrome = await openChromium(join(dir, 'chromium'));
    cdp = chrome.cdp;
  }, 60_000);

  afterAll(async () => {
    await chrome?.close();
    await d?.close();
    sim?.kill();
  });

  const navigate = (url: string): Promise<void> => chrome.navigate(url);

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

    const errors = chrome.errors();
    // (the refused login's 401 is the only network error the page may log)
    const unexpected = errors.filter((e) => !(e.method === 'Log.entryAdded' && /401/.test((e.params.entry as { text: string }).text)));
    expect(unexpected.map((e) => JSON.stringify(e.params).slice(0, 300))).toEqual([]);
    d.runs.stop(a.id as string, 'test over');
    await d.runs.wait(a.id as string);
  }, 120_000);
});
