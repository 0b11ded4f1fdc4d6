// The Docker engine restarted in the middle of a run, against real containers: a dockerd of the
// test's own (live-restore, so its containers keep running, as in production) is stopped and
// started again while Gauntlet follows its events. The node crashes once before the restart
// and once the moment the engine is back (before Gauntlet's event stream has reopened). The
// ground truth is the engine's own event log read independently (a stream of the test's until
// the engine stops, then the log since the restart): Gauntlet's docker_events must hold each of
// those events exactly once, and each crash must be one episode.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureSimImage, startSimContainer } from '../../src/docker/sim-image.js';
import { parseDockerEvent } from '../../src/docker/events.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { runPlan } from '../../src/run/runner.js';
import { openStore, type Store } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { describeDocker } from '../helpers/docker.js';
import { SecondEngine } from '../helpers/second-dockerd.js';
import { tempDir, testTmp } from '../helpers/tmp.js';

const NAME = 'gauntlet-it-engine-restart';
const clock = new RealClock();

interface Truth {
  action: string;
  at: number;
  key: string;
}

/** The engine's events for one container, parsed as Gauntlet parses them, from a finite or live stream. */
function collect(stream: NodeJS.ReadableStream, into: Map<string, Truth>): Promise<void> {
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      const p = parseDockerEvent(line);
      if (p.ok && p.event) {
        const key = `${p.event.rawAction}:${(JSON.parse(line) as { timeNano: number }).timeNano}`;
        into.set(key, { action: p.event.rawAction, at: p.event.at, key });
      }
    }
  });
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
}

async function until(what: string, fn: () => Promise<boolean>, ms: number): Promise<void> {
  for (let i = 0; i < ms / 100; i++) {
    if (await fn()) return;
    await clock.sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function loadStarted(store: Store): Promise<void> {
  await until('the load to start', async () => store.listRuns().some((r) => r.load_started_at !== null), 30_000);
}

describeDocker('the Docker engine restarted mid-run (a dockerd of the test’s own, live-restore)', () => {
  const dir = tempDir();
  const engine = new SecondEngine(mkdtempSync(join(testTmp(), 'gd2-')));
  const d2 = engine.docker;
  let port = 0;
  const hasDocker0 = (): boolean => {
    try {
      execFileSync('ip', ['link', 'show', 'docker0'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  let docker0 = false;

  beforeAll(async () => {
    docker0 = hasDocker0();
    await engine.start();
    const image = await ensureSimImage(d2, silentLogger);
    port = await freePort();
    await startSimContainer(d2, image, { name: NAME, targetLabel: 'it-engine-restart', gpus: 1, loadMs: 300, ttftMs: 20, itlMs: 5, hostPort: port, hostNetwork: true });
  }, 180_000);

  afterAll(async () => {
    await engine.destroy();
  }, 120_000);

  it('every container event is recorded once across the restart, and each crash is one episode', async () => {
    const store = openStore(join(dir, 'restart.db'));
    const plan = parsePlanText(`
name: engine-restart
duration: 40s
targets:
  - { name: node, container: ${NAME}, endpoint: "http://127.0.0.1:${port}" }
load: { rate: 8, arrival: constant, api: chat, stream: true, prompt_tokens: 16, max_tokens: 4, timeout: 5s, model: sim-llama }
probes: { interval: 1s, timeout: 500ms, failures: 2, fast_interval: 100ms }
telemetry: { interval: 0s }
recovery_limit: 15s
ready_timeout: 30s
`);
    const id = (await d2.getContainer(NAME).inspect()).Id;
    const truth = new Map<string, Truth>();
    const filters = { type: ['container' as const], container: [id] };
    const before = collect(await d2.getEvents({ filters }), truth);
    const restarts = async (): Promise<number> => (await d2.getContainer(NAME).inspect()).RestartCount;
    const crash = async (): Promise<void> => {
      // as node-kill does it: SIGKILL of the main process from the host, so the restart policy applies
      process.kill((await d2.getContainer(NAME).inspect()).State.Pid, 'SIGKILL');
    };
    let stoppedAt = 0;
    let backAt = 0;
    let scriptDone = 0;
    const script = (async () => {
      await loadStarted(store);
      await clock.sleep(4000);
      await crash();
      await until('the first restart', async () => (await restarts()) >= 1 && (await d2.getContainer(NAME).inspect()).State.Running, 30_000);
      await clock.sleep(2000);
      stoppedAt = clock.now();
      await engine.stop();
      await before; // the test's own stream ends with the engine
      await engine.start();
      backAt = clock.now();
      // at once: Gauntlet's stream is still reopening (its backoff), only `since` can bring this back
      await crash();
      await until('the second restart', async () => (await restarts()) >= 2 && (await d2.getContainer(NAME).inspect()).State.Running, 30_000);
      scriptDone = clock.now();
    })();
    const result = await runPlan(plan, null, { store, clock, log: silentLogger, docker: d2, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });
    await script;
    // the engine's own log since it came back (it forgets what came before a restart)
    const after = new Map<string, Truth>();
    await collect(await d2.getEvents({ since: Math.floor(backAt / 1000) - 1, until: Math.ceil(clock.now() / 1000) + 1, filters }), after);
    for (const [k, v] of after) truth.set(k, v);
    const run = store.getRun(result.runId);
    const from = run?.started_at ?? 0;
    const to = run?.ended_at ?? clock.now();
    const expected = [...truth.values()].filter((t) => t.at >= from && t.at <= to).map((t) => `${t.action}@${t.at}`).sort();
    const recorded = store.dockerEvents(result.runId).map((e) => `${e.action}@${e.at}`).sort();
    const episodes = store.episodes(result.runId);
    const lines = [
      `engine down ${backAt - stoppedAt} ms, script done ${scriptDone > 0 ? scriptDone - from : '-'} ms in`,
      `truth ${expected.join(' ')}`,
      `recorded ${recorded.join(' ')}`,
      `episodes ${episodes.map((e) => `${e.cause}/${e.status}: ${e.first_evidence}`).join('; ')}`,
      `journal ${store.runEvents(result.runId).map((j) => j.kind).join(',')}`,
    ];
    process.stderr.write(`engine restart: ${lines.join(' | ')}\n`);
    expect(result.status, lines.join(' | ')).toBe('completed');
    expect(scriptDone, lines.join(' | ')).toBeGreaterThan(0);
    expect(scriptDone, lines.join(' | ')).toBeLessThan(to);
    // both crashes are in the truth (a die and a start each)
    expect(expected.filter((e) => e.startsWith('die@')), lines.join(' | ')).toHaveLength(2);
    expect(expected.filter((e) => e.startsWith('start@')), lines.join(' | ')).toHaveLength(2);
    // nothing missed, nothing twice
    expect(recorded, lines.join(' | ')).toEqual(expected);
    expect(new Set(recorded).size, lines.join(' | ')).toBe(recorded.length);
    // the restart itself is the orchestrator's blindness, said in the journal
    expect(store.runEvents(result.runId).map((j) => j.kind), lines.join(' | ')).toContain('orchestrator_blind');
    // each crash one episode, both recovered
    expect(episodes, lines.join(' | ')).toHaveLength(2);
    for (const e of episodes) expect(e.status, lines.join(' | ')).toBe('recovered');
    // and the machine's own engine kept its bridge (a second dockerd must not take it)
    expect(hasDocker0()).toBe(docker0);
    store.close();
  }, 150_000);
});
