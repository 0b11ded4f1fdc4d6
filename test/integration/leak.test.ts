// The simulator's memory-leak mode under a container memory limit: the node leaks with every
// request until the kernel OOM-kills it. Gauntlet must record a spontaneous episode with the OOM
// kill as evidence, its telemetry must show the memory rising towards the limit before it, and
// the node's recovery is checked against its own ground truth (TRUTH lines).
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dockerClient } from '../../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { runPlan } from '../../src/run/runner.js';
import { openStore } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { describeDocker, readTruth } from '../helpers/docker.js';
import { watchLateness } from '../helpers/timing.js';
import { tempDir } from '../helpers/tmp.js';

const NAME = 'gauntlet-it-leak';
const LIMIT_MB = 160;

describeDocker('a leaking node OOM-killed by its memory limit (real Docker)', () => {
  const docker = dockerClient();
  const dir = tempDir();

  beforeAll(async () => {
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    await startSimContainer(docker, image, {
      name: NAME,
      targetLabel: 'it-leak',
      gpus: 1,
      loadMs: 300,
      ttftMs: 20,
      itlMs: 5,
      memoryMb: LIMIT_MB,
      hostPort: await freePort(),
      extraArgs: ['--leak-kb-per-request', '1024'],
    });
  }, 120_000);

  afterAll(() => removeContainers(docker, [NAME]));

  it('a spontaneous episode with the OOM kill as evidence, memory seen rising before it, recovery against the truth', async () => {
    const store = openStore(join(dir, 'leak.db'));
    const plan = parsePlanText(`
name: leak
duration: 30s
targets:
  - { name: leaky, container: ${NAME} }
load: { rate: 10, arrival: constant, api: chat, stream: true, prompt_tokens: 16, max_tokens: 4, timeout: 5s, model: sim-llama }
probes: { interval: 1s, timeout: 500ms, failures: 2, fast_interval: 100ms }
telemetry: { interval: 1s }
recovery_limit: 20s
ready_timeout: 30s
`);
    const clock = new RealClock();
    const lateness = watchLateness(() => clock.now());
    const result = await runPlan(plan, null, { store, clock, log: silentLogger, docker, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });
    const late = lateness.stop();
    expect(result.status).toBe('completed');
    const truth = await readTruth(docker, NAME);
    const episodes = store.episodes(result.runId);
    const info = await docker.getContainer(NAME).inspect();
    const oom = episodes.filter((e) => (JSON.parse(e.evidence) as { oomKilled?: boolean }).oomKilled === true);
    const memory = store.telemetry(result.runId, 'leaky', 'container_memory_bytes');
    const first = oom[0];
    const lines = [
      `restarts ${info.RestartCount}`,
      `episodes ${episodes.map((e) => `${e.cause} ${e.first_evidence}`).join('; ')}`,
      `leak truth ${truth.filter((t) => t.event === 'leak').map((t) => t.held_mib).join(',')} MiB`,
    ];
    expect(oom.length, lines.join(' | ')).toBeGreaterThanOrEqual(1);
    for (const e of episodes) expect(e.cause, lines.join(' | ')).toBe('spontaneous');
    // The leak was in the truth, and the node was killed for it (not for anything else).
    expect(truth.some((t) => t.event === 'leak')).toBe(true);
    const e = first as (typeof oom)[number];
    // Telemetry saw it coming: memory before the kill well above where the run began, near the limit.
    const before = memory.filter((m) => m.at < e.started_at);
    expect(before.length).toBeGreaterThanOrEqual(3);
    const start = (before[0] as { value: number }).value;
    const peak = Math.max(...before.map((m) => m.value));
    lines.push(`memory ${(start / 2 ** 20).toFixed(0)} → ${(peak / 2 ** 20).toFixed(0)} MiB of ${LIMIT_MB} before the kill`);
    expect(peak).toBeGreaterThan(start + 32 * 2 ** 20);
    expect(peak).toBeGreaterThan(0.6 * LIMIT_MB * 2 ** 20);
    const snap = (JSON.parse(e.evidence) as { telemetry?: Record<string, { value: number }> }).telemetry;
    expect(snap?.container_memory_bytes?.value ?? 0, 'the episode keeps the telemetry just before it').toBeGreaterThan(0.5 * LIMIT_MB * 2 ** 20);
    // Serving again against the node's own word: its first response start after it listened again.
    const relisten = truth.find((t) => t.event === 'listening' && t.at > e.started_at);
    const served = relisten ? truth.find((t) => t.event === 'served' && t.at > relisten.at) : undefined;
    if (e.serving_again_at !== null && served) {
      const error = e.serving_again_at - served.at;
      const busy = late.worst(served.at, e.serving_again_at);
      lines.push(`serving again ${error.toFixed(1)} ms from the node's first response (loop late ≤ ${busy.toFixed(0)} ms)`);
      expect(Math.abs(error)).toBeLessThanOrEqual(100 + busy);
    }
    process.stderr.write(`leak: ${lines.join(' | ')}\n`);
    store.close();
  }, 120_000);
});
