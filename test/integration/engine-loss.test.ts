// Losing the Docker engine mid-run, against a real engine: Gauntlet talks to Docker through a
// relay socket in front of /var/run/docker.sock, and the test cuts the relay (every connection
// dropped, the socket gone: what a client sees when dockerd dies) for 6 s. While Gauntlet is
// blind the node crashes (its main process SIGKILLed from the host; its restart policy brings it back).
// The run must say it lost its view: the failure it saw then is orchestrator blindness, not a
// node failure; the blind time is left out of exposure; and once the engine answers again the
// events it missed are read back, so the restart is counted.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { withDeadlines } from '../../src/docker/deadline.js';
import { dockerClient, RECONNECT_MAX_MS } from '../../src/docker/engine.js';
import { revertLeftovers } from '../../src/fault/ledger.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { runPlan } from '../../src/run/runner.js';
import { openStore, type Store } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { describeDocker } from '../helpers/docker.js';
import { Relay } from '../helpers/relay.js';
import { tempDir, testTmp } from '../helpers/tmp.js';

const NAME = 'gauntlet-it-engine-loss';

/** Until the store holds a run whose load has begun (at most 30 s). */
async function loadStarted(store: Store, clock: RealClock): Promise<void> {
  for (let i = 0; i < 300 && !store.listRuns().some((r) => r.load_started_at !== null); i++) await clock.sleep(100);
}

describeDocker('the Docker engine lost mid-run (real engine behind a relay that is cut)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const relay = new Relay(join(mkdtempSync(join(testTmp(), 'gauntlet-relay-')), 'docker.sock'));

  beforeAll(async () => {
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    await startSimContainer(docker, image, { name: NAME, targetLabel: 'it-engine-loss', gpus: 1, loadMs: 300, ttftMs: 20, itlMs: 5, hostPort: await freePort() });
    await relay.up();
  }, 120_000);

  afterAll(async () => {
    await relay.cut();
    await removeContainers(docker, [NAME]);
  });

  it('failures while blind are orchestrator blindness, the blind time is not exposure, and missed restarts are read back', async () => {
    const store = openStore(join(dir, 'loss.db'));
    const plan = parsePlanText(`
name: engine-loss
duration: 24s
targets:
  - { name: node, container: ${NAME} }
load: { rate: 8, arrival: constant, api: chat, stream: true, prompt_tokens: 16, max_tokens: 4, timeout: 5s, model: sim-llama }
probes: { interval: 1s, timeout: 500ms, failures: 2, fast_interval: 100ms }
telemetry: { interval: 1s }
recovery_limit: 10s
ready_timeout: 30s
`);
    const viaRelay = new Dockerode({ socketPath: relay.path });
    const clock = new RealClock();
    const ac = new AbortController();
    let cutAt = 0;
    let restoredAt = 0;
    const script = (async () => {
      // Wait for the run to be under way (its load started), then cut, crash, restore.
      await loadStarted(store, clock);
      await clock.sleep(5000);
      cutAt = clock.now();
      await relay.cut();
      await clock.sleep(1000);
      // A crash, as node-kill does it: SIGKILL of the main process from the host, so the
      // restart policy applies (a kill through the API counts as a manual stop).
      process.kill((await docker.getContainer(NAME).inspect()).State.Pid, 'SIGKILL');
      await clock.sleep(5000);
      await relay.up();
      restoredAt = clock.now();
    })();
    const result = await runPlan(plan, null, { store, clock, log: silentLogger, docker: viaRelay, reportsDir: join(dir, 'reports'), signal: ac.signal });
    await script;
    expect(result.status).toBe('completed');
    const journal = store.runEvents(result.runId).map((j) => j.kind);
    expect(journal).toContain('orchestrator_blind');
    expect(journal).toContain('orchestrator_restored');
    const episodes = store.episodes(result.runId);
    const report = (await import('node:fs')).readFileSync(join(result.reportDir, 'report.json'), 'utf8');
    const r = JSON.parse(report) as { failures: Record<string, number>; availability?: unknown; orchestrator_blind_ms?: number; exposure?: { node_hours?: number }; nodes?: { node: string; restarts?: number | null }[] };
    const info = await docker.getContainer(NAME).inspect();
    const lines = [
      `container ${info.State.Status}, restarts ${info.RestartCount}`,
      `episodes at ${episodes.map((e) => `start ${e.started_at - cutAt} detected ${e.detected_at - cutAt} running ${e.running_again_at === null ? '-' : e.running_again_at - cutAt} serving ${e.serving_again_at === null ? '-' : e.serving_again_at - cutAt}`).join('; ')} (ms from the cut)`,
      `blind for ${String(r.orchestrator_blind_ms)} ms (relay cut ${restoredAt - cutAt} ms)`,
      `episodes ${episodes.map((e) => `${e.cause}/${e.status}: ${e.first_evidence}`).join('; ')}`,
      `failures ${JSON.stringify(r.failures)}`,
    ];
    process.stderr.write(`engine loss: ${lines.join(' | ')}\n`);
    // The crash Gauntlet saw while blind is the orchestrator's, counted apart and not in MTBF.
    expect(r.failures.orchestrator, lines.join(' | ')).toBeGreaterThanOrEqual(1);
    expect(r.failures.counted_for_mtbf, lines.join(' | ')).toBe(0);
    expect(r.failures.recovery_failed, lines.join(' | ')).toBe(0);
    for (const e of episodes) expect(e.cause, lines.join(' | ')).toBe('orchestrator');
    // The blind time: from when the stream broke to when it opened again, within a reconnect backoff.
    expect(r.orchestrator_blind_ms as number).toBeGreaterThanOrEqual(restoredAt - cutAt - 200);
    expect(r.orchestrator_blind_ms as number).toBeLessThanOrEqual(restoredAt - cutAt + RECONNECT_MAX_MS + 500);
    // Read back once the engine answered: the restart it missed, and serving again from the first
    // request the restarted node answered, not from when Gauntlet learnt of the restart.
    const e = episodes[0] as (typeof episodes)[number];
    expect(e.running_again_at, lines.join(' | ')).not.toBeNull();
    expect((e.serving_again_at as number) - (e.running_again_at as number), lines.join(' | ')).toBeLessThan(3000);
    expect(e.serving_again_at as number, lines.join(' | ')).toBeLessThan(restoredAt);
    store.close();
  }, 120_000);

  it('an engine that goes silent during a fault (accepts, never answers): the run ends on time, says why, and the fault is reverted once it answers', async () => {
    await relay.up();
    const store = openStore(join(dir, 'silent.db'));
    const plan = parsePlanText(`
name: engine-silent
duration: 12s
targets:
  - { name: node, container: ${NAME} }
load: { rate: 4, arrival: constant, api: chat, stream: true, prompt_tokens: 16, max_tokens: 4, timeout: 3s, model: sim-llama }
faults:
  - { kind: hang, target: node, at: 3s, params: { duration: 4s } }
probes: { interval: 1s, timeout: 500ms, failures: 2, fast_interval: 200ms }
telemetry: { interval: 0s }
recovery_limit: 10s
ready_timeout: 30s
`);
    // Every call through the relay has a 2 s deadline (GAUNTLET_DOCKER_TIMEOUT_MS in a real run).
    const viaRelay = withDeadlines(new Dockerode({ socketPath: relay.path }), 2000);
    const clock = new RealClock();
    let hushedAt = 0;
    const script = (async () => {
      await loadStarted(store, clock);
      // the freeze goes in at 3 s; the engine goes silent a second later, before its revert
      for (let i = 0; i < 100 && !store.listRuns().some((r) => store.faults(r.id).some((f) => f.state === 'active')); i++) await clock.sleep(100);
      await clock.sleep(1000);
      hushedAt = clock.now();
      relay.hush();
    })();
    const started = clock.now();
    const result = await runPlan(plan, null, { store, clock, log: silentLogger, docker: viaRelay, reportsDir: join(dir, 'reports-silent'), signal: new AbortController().signal });
    const tookMs = clock.now() - started;
    await script;
    const ledger = store.faults(result.runId);
    const lines = [`run ${result.status} in ${tookMs.toFixed(0)} ms (error: ${result.error})`, `hushed ${hushedAt - started} ms in`, `ledger ${ledger.map((f) => `${f.kind} ${f.state}: ${f.error ?? ''}`).join('; ')}`];
    process.stderr.write(`engine silent: ${lines.join(' | ')}\n`);
    expect(hushedAt, lines.join(' | ')).toBeGreaterThan(0);
    // on time: the plan's 12 s, the wait for the targets, and the reverts' bounded tries
    expect(tookMs, lines.join(' | ')).toBeLessThan(12_000 + 30_000);
    // it says why: the fault is still held, the revert timed out against a silent engine
    const held = ledger.find((f) => f.kind === 'hang');
    expect(held?.state, lines.join(' | ')).toBe('active');
    expect(`${held?.error ?? ''} ${result.error ?? ''}`, lines.join(' | ')).toMatch(/no answer within|did not answer|timed out|timeout/i);
    expect((await docker.getContainer(NAME).inspect()).State.Paused).toBe(true);
    // and once the engine answers again, the leftover is reverted (what `gauntlet revert` or the next run does)
    await relay.up();
    // (force: the ledger names this test process, still alive, as the fault's owner; `gauntlet
    // revert` after the run is another process and needs no force. The sweep looks into this
    // test's container only: other tests' faults may be active beside it.)
    const self = (await docker.getContainer(NAME).inspect()).Id;
    const done = await revertLeftovers(store, { docker, log: silentLogger, clock }, { force: true, containers: [self] });
    expect(done.join('; ')).toMatch(/hang/);
    expect((await docker.getContainer(NAME).inspect()).State.Paused).toBe(false);
    expect(store.faults(result.runId).find((f) => f.kind === 'hang')?.state).toBe('reverted');
    store.close();
  }, 120_000);
});
