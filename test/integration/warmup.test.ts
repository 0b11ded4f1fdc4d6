// Healthy is not serving: a vLLM-profile simulator container answers /health 200 as soon as its
// model is loaded, and serves ten times slower for its first 3 s (warm-up). After a crash,
// Gauntlet's "ready" (health ok) comes first and "serving again" only with the first token, as
// the node's own ground truth says.
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

const NAME = 'gauntlet-it-warmup';

describeDocker('a node that is healthy before it serves well (vLLM profile, real Docker)', () => {
  const docker = dockerClient();
  const dir = tempDir();

  beforeAll(async () => {
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    await startSimContainer(docker, image, { name: NAME, targetLabel: 'it-warmup', gpus: 2, loadMs: 500, ttftMs: 60, itlMs: 10, hostPort: await freePort(), extraArgs: ['--profile', 'vllm', '--jitter', '0'] });
  }, 120_000);

  afterAll(() => removeContainers(docker, [NAME]));

  it('after a crash: ready (health ok) well before serving again, and serving again at the first token, within 100 ms of the truth', async () => {
    const store = openStore(join(dir, 'w.db'));
    const plan = parsePlanText(`
name: warmup
duration: 14s
targets: [{ name: v, container: ${NAME} }]
load: { rate: 10, arrival: constant, api: chat, stream: true, prompt_tokens: 16, max_tokens: 8, timeout: 10s, model: sim-llama }
faults: [{ kind: node-kill, target: v, at: 5s, params: { mode: crash } }]
probes: { interval: 1s, timeout: 2s, failures: 2, fast_interval: 100ms }
recovery_limit: 20s
ready_timeout: 30s
`);
    const clock = new RealClock();
    const lateness = watchLateness(() => clock.now());
    const result = await runPlan(plan, null, { store, clock, log: silentLogger, docker, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });
    const late = lateness.stop();
    const [ep] = store.episodes(result.runId);
    expect(ep).toBeDefined();
    if (!ep) return;
    const truth = await readTruth(docker, NAME, 2000);
    const ready = truth.find((t) => t.event === 'ready' && t.at > ep.started_at) as { at: number };
    const served = truth.find((t) => t.event === 'served' && t.at > ep.started_at) as { at: number };
    const busy = late.worst(ready.at, ep.serving_again_at as number);
    process.stderr.write(
      `warm-up: node ready (health ok) ${((ep.ready_at as number) - ep.started_at).toFixed(0)} ms, serving again ${((ep.serving_again_at as number) - ep.started_at).toFixed(0)} ms after the crash; the node's truth: ready +${(ready.at - ep.started_at).toFixed(0)} ms, first token +${(served.at - ep.started_at).toFixed(0)} ms; error ${((ep.serving_again_at as number) - served.at).toFixed(1)} ms (loop late ≤ ${busy.toFixed(0)} ms)\n`,
    );
    expect(ep.cause).toMatch(/^injected:/);
    // 60 ms prefill × 10 while warming: the first token comes ≥ 0.5 s after health said ok
    expect(served.at - ready.at).toBeGreaterThanOrEqual(500);
    expect((ep.serving_again_at as number) - (ep.ready_at as number)).toBeGreaterThanOrEqual(400);
    expect(Math.abs((ep.serving_again_at as number) - served.at)).toBeLessThanOrEqual(100 + busy);
    store.close();
  }, 90_000);
});
