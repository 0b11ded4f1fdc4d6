// The latency fault through its proxy driver against a real simulator container: requests to
// the published port (so through Docker's port publishing, like any client) are measured before,
// during and after the fault in the same run; after revert no rule, no helper container and no
// delay are left — also when the target restarted, or was removed, in the middle of the fault.
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { FAULTS } from '../../faults/index.js';
import { LATENCY_QDISC_HANDLE } from '../../faults/latency.js';
import { dockerClient } from '../../src/docker/engine.js';
import { ensureHelperImage, ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { isGauntletError } from '../../src/errors.js';
import { detectHostCaps } from '../../src/fault/host.js';
import { injectFault, type ActiveFault } from '../../src/fault/ledger.js';
import { inNetnsOk, listTaggedRules } from '../../src/fault/netns.js';
import type { FaultContext, FaultTarget } from '../../src/fault/types.js';
import { silentLogger } from '../../src/log.js';
import { openStore, type Store } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { until } from '../helpers/cli.js';
import { describeDocker } from '../helpers/docker.js';
import { quantile } from '../helpers/timing.js';
import { tempDir } from '../helpers/tmp.js';

const NAME = 'gauntlet-it-latency';
const GONE = 'gauntlet-it-latency-gone';
const DELAY = 300;

const BODY = JSON.stringify({ model: 'sim', prompt: 'hello', max_tokens: 4 });

/** One completion; e2e = request to the last byte of the answer (ms). A fresh connection unless a dispatcher is given. */
async function completion(endpoint: string, dispatcher?: Agent): Promise<number> {
  const t0 = performance.now();
  const r = await request(`${endpoint}/v1/completions`, {
    method: 'POST',
    body: BODY,
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(20_000),
    ...(dispatcher ? { dispatcher } : { reset: true }),
  });
  await r.body.text();
  if (r.statusCode !== 200) throw new Error(`completion answered ${r.statusCode}`);
  return performance.now() - t0;
}

/** Time to the first SSE event of a streamed completion (ms), on a fresh connection. */
async function ttft(endpoint: string): Promise<number> {
  const t0 = performance.now();
  const r = await request(`${endpoint}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ model: 'sim', prompt: 'hello', max_tokens: 4, stream: true }),
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(20_000),
    reset: true,
  });
  let first: number | null = null;
  for await (const chunk of r.body) if (first === null && String(chunk).includes('data:')) first = performance.now() - t0;
  if (first === null) throw new Error('no SSE event');
  return first;
}

/** A whole streamed completion of `tokens` tokens on a fresh connection: its text and duration. */
/** A whole stream; on failure, when it failed and how long it had been silent before (the ground truth of "quiet"). */
async function streamToEnd(endpoint: string, tokens: number): Promise<{ text: string; ms: number; silentMs?: number }> {
  const t0 = performance.now();
  let last = t0;
  let text = '';
  try {
    const r = await request(`${endpoint}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'sim', prompt: 'hello', max_tokens: tokens, stream: true }),
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(30_000),
      reset: true,
    });
    for await (const chunk of r.body) {
      last = performance.now();
      text += (chunk as Buffer).toString('utf8');
    }
    return { text, ms: performance.now() - t0 };
  } catch (err) {
    const at = performance.now();
    return { text: `failed: ${String(err)}`, ms: at - t0, silentMs: at - last };
  }
}

async function sample(n: number, f: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
}

const p50 = (xs: number[]): number => quantile(xs, 0.5);
const spread = (xs: number[]): number => Math.max(...xs) - Math.min(...xs);
const fmt = (xs: number[]): string => `p50 ${p50(xs).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;

describeDocker('latency fault through the proxy driver (real Docker)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const ctx: FaultContext = { docker, log: silentLogger, clock: new RealClock() };
  let store: Store;
  let endpoint: string;
  let target: FaultTarget;
  let seq = 0;

  const injected: ActiveFault[] = [];
  const inject = async (t: FaultTarget, params: Record<string, unknown>): Promise<ActiveFault> => {
    const injector = FAULTS.latency;
    if (!injector) throw new Error('latency is not registered in faults/index.ts');
    const f = await injectFault(store, 'it', injector, t, injector.params.parse(params), ctx, `it-lat${++seq}-${process.pid}`);
    injected.push(f);
    return f;
  };

  // A test that failed half-way leaves nothing behind for the next (revert is idempotent).
  afterEach(async () => {
    for (const f of injected.splice(0)) await f.revert().catch(() => undefined);
  });
  const pid = async (name = NAME): Promise<number> => (await docker.getContainer(name).inspect()).State.Pid;
  const helpers = async (faultId?: string) => docker.listContainers({ all: true, filters: { label: [faultId ? `gauntlet.fault=${faultId}` : 'gauntlet.fault'] } });
  const serving = () =>
    until(
      'the node to serve',
      async () => {
        try {
          return (await completion(endpoint)) > 0;
        } catch {
          return false;
        }
      },
      30_000,
    );

  beforeAll(async () => {
    store = openStore(join(dir, 'g.db'));
    const image = await ensureSimImage(docker, silentLogger);
    await ensureHelperImage(docker, silentLogger); // so injection is quick: a keep-alive connection stays open across it
    await removeContainers(docker, [NAME, GONE]);
    const port = await freePort();
    const info = await startSimContainer(docker, image, { name: NAME, targetLabel: 'it-latency', gpus: 1, loadMs: 200, ttftMs: 30, itlMs: 5, hostPort: port, memoryMb: 256 });
    endpoint = `http://127.0.0.1:${port}`;
    target = { node: 'node', containerId: info.Id, containerName: NAME };
    await serving();
  }, 180_000);

  afterAll(async () => {
    store?.close();
    // Whatever a failed test left: helpers of this file's faults, then the targets.
    for (const h of await helpers()) if ((h.Labels['gauntlet.fault'] ?? '').endsWith(`-${process.pid}`)) await docker.getContainer(h.Id).remove({ force: true }).catch(() => undefined);
    await removeContainers(docker, [NAME, GONE]);
  });

  it('requests to the published port are later by at least the delay; revert leaves no rule, no helper, no delay', async () => {
    await serving();
    const keepAlive = new Agent({ keepAliveTimeout: 60_000, connections: 1 });
    const before = await sample(5, () => completion(endpoint));
    const ttftBefore = await sample(5, () => ttft(endpoint));
    const pooledBefore = await completion(endpoint, keepAlive); // a connection established before the fault, kept open

    // A stream under way when the fault lands is not cut: its connection is left alone while busy.
    const t0 = performance.now();
    const crossing = streamToEnd(endpoint, 200);
    await new Promise((r) => setTimeout(r, 200));
    const injectedAt = performance.now();
    const f = await inject(target, { delay: `${DELAY}ms`, duration: '60s', driver: 'proxy' });
    expect(f.driver).toBe('proxy');
    const crossed = await crossing;
    // It is left alone while busy. (1 s of tokens normally; on a saturated machine it can still be
    // streaming when the 3 s grace ends, and then it is cut, as documented; or a starved node can
    // leave it silent past the quiet threshold (200 ms), and then it counts as between requests —
    // its own chunk times say which. Never cut while it was streaming within the grace.)
    const graceMs = 3000;
    const cut = !crossed.text.includes('data: [DONE]');
    const cutAfterGrace = cut && t0 + crossed.ms >= injectedAt + graceMs;
    const resetWhileSilent = cut && !cutAfterGrace && (crossed.silentMs ?? 0) >= 200 - 20;
    if (cut) process.stderr.write(`fault-latency: the crossing stream was cut ${(t0 + crossed.ms - injectedAt).toFixed(0)} ms after the injection, silent ${crossed.silentMs?.toFixed(0)} ms before (${cutAfterGrace ? 'after the grace' : resetWhileSilent ? 'quiet by the rule' : 'while streaming'})\n`);
    if (!cutAfterGrace && !resetWhileSilent) expect(crossed.text).toContain('data: [DONE]');
    const row = store.faults('it').at(-1);
    expect(row).toMatchObject({ kind: 'latency', state: 'active', driver: 'proxy' });
    const detail = JSON.parse(row?.detail ?? '{}') as Record<string, unknown>;
    expect(detail).toMatchObject({ port: 8000, upstream: '127.0.0.1:8000', helper: `gauntlet-fault-${f.id}` });
    // The keep-alive connection was reset between requests, none cut in the middle of one.
    expect(detail).toMatchObject({ existing_reset_idle: resetWhileSilent ? 2 : 1, existing_cut_busy: cutAfterGrace ? 1 : 0 });
    expect(await listTaggedRules(await pid(), f.id)).toEqual([expect.objectContaining({ table: 'nat', spec: expect.stringMatching(/-A PREROUTING -p tcp -m tcp --dport 8000 .*-j REDIRECT --to-ports \d+/) })]);
    expect((await helpers(f.id)).map((h) => h.State)).toEqual(['running']);

    const during = await sample(5, () => completion(endpoint));
    const ttftDuring = await sample(5, () => ttft(endpoint));
    // The keep-alive connection from before was reset at injection; the pool reconnects through the proxy.
    const pooledDuring = await completion(endpoint, keepAlive);

    const shift = p50(during) - p50(before);
    process.stderr.write(
      `fault-latency ${DELAY} ms (proxy): e2e before ${fmt(before)}, during ${fmt(during)}, shift ${shift.toFixed(1)} ms; ` +
        `ttft before ${fmt(ttftBefore)}, during ${fmt(ttftDuring)}; keep-alive connection before ${pooledBefore.toFixed(1)} ms, during ${pooledDuring.toFixed(1)} ms; ` +
        `established connections at injection: reset between requests ${String(detail.existing_reset_idle)}, cut ${String(detail.existing_cut_busy)}, quiet needed ${String(detail.existing_quiet_ms)} ms\n`,
    );
    // Each delayed request takes at least the delay; the medians differ by the delay give or
    // take how much the same requests vary by themselves (the node's own noise, seen in the spread).
    for (const ms of [...during, ...ttftDuring, pooledDuring]) expect(ms).toBeGreaterThanOrEqual(DELAY);
    expect(shift).toBeGreaterThanOrEqual(DELAY - Math.max(spread(before), spread(during)));
    expect(p50(ttftDuring) - p50(ttftBefore)).toBeGreaterThanOrEqual(DELAY - Math.max(spread(ttftBefore), spread(ttftDuring)));

    // A stream still running through the proxy when the fault is reverted finishes whole.
    const streaming = streamToEnd(endpoint, 300);
    await new Promise((r) => setTimeout(r, DELAY + 300));
    const action = await f.revert();
    const stream = await streaming;
    expect(stream.text).toContain('data: [DONE]');
    expect(stream.text).toContain('"finish_reason":"length"');
    expect(action).toMatch(/^new connections bypass the proxy; stopped and removed helper gauntlet-fault-\S+; removed 2 iptables rule\(s\)$/);
    expect(await listTaggedRules(await pid())).toEqual([]);
    expect(await helpers(f.id)).toEqual([]);
    const reverted = store.faults('it').at(-1);
    expect(reverted).toMatchObject({ state: 'reverted', revert_action: action });
    const counters = JSON.parse(reverted?.result ?? '{}') as Record<string, number>;
    expect(counters.connections).toBeGreaterThanOrEqual(10);
    expect(counters.cut_at_stop).toBe(0);
    expect(counters.chunks_delayed).toBeGreaterThanOrEqual(9);

    const after = await sample(5, () => completion(endpoint));
    const pooledAfter = await completion(endpoint, keepAlive);
    process.stderr.write(`fault-latency after revert: e2e ${fmt(after)}; keep-alive ${pooledAfter.toFixed(1)} ms; a 300-token stream across the revert took ${stream.ms.toFixed(0)} ms and ended whole; proxy counters ${JSON.stringify(counters)}\n`);
    // Back to what it was, judged against the same run's ground truth rather than a fixed speed.
    expect(Math.min(...after)).toBeLessThan(p50(before) + DELAY);
    expect(p50(after)).toBeLessThan(p50(during));
    expect(await f.revert()).toBe(action); // idempotent
    await keepAlive.close();
  }, 120_000);

  it('the target restarts mid-fault: its new namespace has no rule, the orphaned helper is removed, no delay', async () => {
    await serving();
    const f = await inject(target, { delay: `${DELAY}ms`, duration: '60s', driver: 'proxy' });
    const oldPid = await pid();
    expect(await listTaggedRules(oldPid, f.id)).toHaveLength(1);
    await docker.getContainer(NAME).restart({ t: 1 });
    await serving();
    expect(await pid()).not.toBe(oldPid);
    expect(await listTaggedRules(await pid())).toEqual([]);
    const helperState = (await helpers(f.id)).map((h) => h.State);
    const action = await f.revert();
    process.stderr.write(`fault-latency restart mid-fault: helper was ${JSON.stringify(helperState)}; revert: ${action}\n`);
    expect(action).toMatch(/^(stopped and removed|removed) helper gauntlet-fault-\S+ ?(\(it had already exited\))?; no rule: the container restarted: its new namespace has none$/);
    expect(await helpers(f.id)).toEqual([]);
    expect(await listTaggedRules(await pid())).toEqual([]);
    const after = await sample(3, () => completion(endpoint));
    expect(Math.min(...after)).toBeLessThan(DELAY);
  }, 120_000);

  it('the target is removed mid-fault: revert still removes the helper', async () => {
    const image = await ensureSimImage(docker, silentLogger);
    const port = await freePort();
    const info = await startSimContainer(docker, image, { name: GONE, targetLabel: 'it-latency-gone', gpus: 1, loadMs: 100, hostPort: port, memoryMb: 256, restart: 'no' });
    await until('the second node to listen', async () => (await completion(`http://127.0.0.1:${port}`).catch(() => 0)) > 0, 30_000);
    const f = await inject({ node: 'gone', containerId: info.Id, containerName: GONE }, { delay: '100ms', duration: '60s', driver: 'proxy' });
    expect(await helpers(f.id)).toHaveLength(1);
    await docker.getContainer(GONE).remove({ force: true });
    const action = await f.revert();
    process.stderr.write(`fault-latency target removed mid-fault: revert: ${action}\n`);
    expect(action).toMatch(/^(stopped and removed|removed) helper gauntlet-fault-.*; no rule: the container no longer exists \(its namespace went with it\)$/);
    expect(await helpers(f.id)).toEqual([]);
  }, 120_000);

  it('driver netem where the kernel has none: refused with the reason, nothing recorded as active, nothing left', async () => {
    const caps = await detectHostCaps();
    const f = inject(target, { delay: `${DELAY}ms`, duration: '10s', driver: 'netem' });
    if (caps.netem) {
      // A host with netem: the qdisc lands in the target's namespace and revert removes it.
      const fault = await f;
      expect(fault.driver).toBe('netem');
      expect(await inNetnsOk(await pid(), 'tc', ['qdisc', 'show'])).toContain(`netem ${LATENCY_QDISC_HANDLE}`);
      await fault.revert();
      expect(await inNetnsOk(await pid(), 'tc', ['qdisc', 'show'])).not.toContain(LATENCY_QDISC_HANDLE);
      return;
    }
    const err = await f.catch((e: unknown) => e);
    expect(isGauntletError(err, 'GAUNTLET_FAULT_INJECT')).toBe(true);
    expect((err as Error).message).toMatch(/injecting latency into node failed: driver netem asked for, but the kernel has no netem qdisc/);
    expect(store.faults('it').at(-1)).toMatchObject({ kind: 'latency', state: 'failed' });
    expect((await helpers()).filter((h) => (h.Labels['gauntlet.fault'] ?? '').endsWith(`-${process.pid}`))).toEqual([]);
  }, 60_000);
});
