// The plan's safety settings against a real container: the blast radius skips an injection
// (recorded with the reason), and the halt condition stops injecting when the error rate
// outside fault windows is too high — everything recorded, nothing left active.
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dockerClient } from '../../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { runPlan } from '../../src/run/runner.js';
import { openStore, type Store } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const NAME = 'gauntlet-it-safety';

describeDocker('safety: blast radius and halt (real Docker)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  let store: Store;
  let broken: Server;
  let brokenUrl = '';

  beforeAll(async () => {
    store = openStore(join(dir, 'g.db'));
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    await startSimContainer(docker, image, { name: NAME, targetLabel: 'it-safety', gpus: 1, loadMs: 200, hostPort: await freePort() });
    // A second "node" that is healthy to probes and fails every inference: errors outside any fault.
    broken = createServer((req, res) => {
      if (req.url === '/health') return void res.writeHead(200).end('{}');
      if (req.url === '/v1/models') return void res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"data":[{"id":"sim-llama"}]}');
      req.resume();
      req.on('end', () => res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"error":{"message":"broken on purpose"}}'));
    });
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
    brokenUrl = `http://127.0.0.1:${(broken.address() as { port: number }).port}`;
  }, 60_000);

  afterAll(async () => {
    store?.close();
    broken?.close();
    await removeContainers(docker, [NAME]);
  });

  const run = (yaml: string) =>
    runPlan(parsePlanText(yaml), null, { store, clock: new RealClock(), log: silentLogger, docker, reportsDir: join(dir, 'reports'), signal: new AbortController().signal, progressIntervalMs: 250 });

  it('blast radius: a second fault while one is active, and a fault that would leave too few healthy nodes, are skipped and recorded', async () => {
    const result = await run(`
name: blast
duration: 6s
targets: [{ name: a, container: ${NAME} }, { name: b, endpoint: "${brokenUrl}" }]
load: { rate: 4, max_tokens: 4, timeout: 3s, model: sim-llama }
faults:
  - { kind: hang, target: a, at: 1s, params: { duration: 3s } }
  - { kind: hang, target: a, at: 2s, params: { duration: 1s } }
safety: { max_concurrent_faults: 1 }
probes: { interval: 500ms, timeout: 500ms }
`);
    const faults = store.faults(result.runId);
    expect(faults.map((f) => f.state)).toEqual(['reverted', 'skipped']);
    expect(faults[1]?.error).toMatch(/blast radius: 1 fault\(s\) already active \(safety.max_concurrent_faults: 1\)/);
    expect(store.runEvents(result.runId).map((e) => e.kind)).toEqual(['fault_skipped', 'baseline']); // the baseline the run judged 'degraded' by comes last
    expect((await docker.getContainer(NAME).inspect()).State.Paused).toBe(false);

    const r2 = await run(`
name: healthy
duration: 5s
targets: [{ name: a, container: ${NAME} }, { name: b, endpoint: "${brokenUrl}" }]
load: { rate: 6, max_tokens: 4, timeout: 3s, model: sim-llama }
faults: [{ kind: hang, target: a, at: 3s, params: { duration: 1s } }]
safety: { min_healthy_nodes: 1 }
detection: { error_burst: 2 }
probes: { interval: 500ms, timeout: 500ms }
`);
    const f2 = store.faults(r2.runId);
    expect(f2.map((f) => f.state)).toEqual(['skipped']);
    expect(f2[0]?.error).toMatch(/only 0 other node\(s\) healthy \(safety.min_healthy_nodes: 1\)/);
  }, 60_000);

  it('halt: errors outside fault windows above the threshold stop the injections; the rest are recorded as skipped', async () => {
    const result = await run(`
name: halt
duration: 7s
targets: [{ name: a, container: ${NAME} }, { name: b, endpoint: "${brokenUrl}" }]
load: { rate: 8, max_tokens: 4, timeout: 3s, model: sim-llama }
faults:
  - { kind: hang, target: a, at: 4s, params: { duration: 1s } }
  - { kind: hang, target: a, at: 6s, params: { duration: 1s } }
safety: { halt: { error_rate: 0.3, for: 2s, min_requests: 5 } }
probes: { interval: 500ms, timeout: 500ms }
`);
    expect(result.status).toBe('completed');
    const events = store.runEvents(result.runId);
    expect(events[0]).toMatchObject({ kind: 'halt' });
    expect(events[0]?.message).toMatch(/error rate outside fault windows \d+\.\d % \(\d+\/\d+\) over the last 2\.00s, above safety.halt.error_rate 30\.0 %/);
    const faults = store.faults(result.runId);
    expect(faults.map((f) => f.state)).toEqual(['skipped', 'skipped']);
    expect(faults.every((f) => /^halted: /.test(f.error ?? ''))).toBe(true);
    expect((await docker.getContainer(NAME).inspect()).State.Paused).toBe(false);
  }, 60_000);
});
