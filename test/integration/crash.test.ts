// A crash of a simulator container, measured by Gauntlet and, independently, by this test:
// its own Docker event stream and its own 25 ms inference poller. The two must agree.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dockerClient, tailLogs, watchContainerEvents, type EventWatch } from '../../src/docker/engine.js';
import type { ContainerEvent } from '../../src/docker/events.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { runPlan, type RunResult } from '../../src/run/runner.js';
import { openStore, type Store } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const NAME = 'gauntlet-it-crash';

describeDocker('crash of a simulator container (real Docker)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  let store: Store;
  let endpoint: string;
  let result: RunResult;
  const seen: ContainerEvent[] = [];
  let watch: EventWatch;
  let restartsBefore: number;
  let firstOkAfterDie: number | null = null;

  beforeAll(async () => {
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    const port = await freePort();
    const info = await startSimContainer(docker, image, { name: NAME, targetLabel: 'it-crash', gpus: 4, loadMs: 500, hostPort: port });
    restartsBefore = info.RestartCount;
    endpoint = `http://127.0.0.1:${port}`;
    watch = watchContainerEvents(docker, [info.Id], (e) => seen.push(e), silentLogger);
    await watch.ready;
    store = openStore(join(dir, 'g.db'));
    const plan = parsePlanText(`
name: it-crash
duration: 9s
seed: 7
targets: [{ name: node, container: ${NAME} }]
load: { rate: 6, arrival: constant, max_tokens: 16, prompt_tokens: 32, timeout: 5s }
faults: [{ kind: node-kill, target: node, at: 3s }]
probes: { interval: 500ms, timeout: 500ms, recovery_interval: 50ms }
recovery_limit: 20s
ready_timeout: 30s
`);
    const clock = new RealClock();
    // The independent poller: one-token inferences every 25 ms until the node serves after the
    // crash; it notes when the first 200 arrived (a request sent during the outage can be held
    // and answered after the restart, so its send time would say nothing).
    let stop = false;
    const poller = (async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        const sentAt = clock.now();
        const die = seen.find((e) => e.action === 'die');
        try {
          const r = await request(`${endpoint}/v1/completions`, { method: 'POST', body: '{"prompt":"x","max_tokens":1}', signal: AbortSignal.timeout(5000) });
          const answeredAt = clock.now();
          await r.body.dump();
          if (r.statusCode === 200 && die && sentAt > die.at) {
            firstOkAfterDie = answeredAt;
            return;
          }
        } catch {
          // refused or reset while the node is down
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    result = await runPlan(plan, null, { store, clock, log: silentLogger, docker, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });
    stop = true;
    await poller;
  }, 120_000);

  afterAll(async () => {
    watch?.stop();
    store?.close();
    await removeContainers(docker, [NAME]);
  });

  it('the run completes and the ledger shows the fault injected and reverted', () => {
    expect(result.status).toBe('completed');
    const faults = store.faults(result.runId);
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatchObject({ kind: 'node-kill', state: 'reverted' });
    expect(faults[0]?.revert_action).toMatch(/restarted by its restart policy/);
  });

  it('produces exactly one episode, caused by the fault', () => {
    const eps = store.episodes(result.runId);
    expect(eps).toHaveLength(1);
    expect(eps[0]).toMatchObject({ cause: `injected:${result.runId}-f1`, status: 'recovered' });
    expect(JSON.parse(eps[0]?.evidence ?? '{}')).toMatchObject({ exitCode: 137 });
  });

  it("its recovery time agrees with Docker's events, an independent probe and the node's own log to within 200 ms", async () => {
    const ep = store.episodes(result.runId)[0];
    const die = seen.find((e) => e.action === 'die');
    const restart = seen.find((e) => e.action === 'start' && die && e.at > die.at);
    expect(ep && die && restart && firstOkAfterDie).toBeTruthy();
    if (!ep || !die || !restart || firstOkAfterDie === null) return;
    const measured = (ep.serving_again_at as number) - ep.started_at;
    const independent = firstOkAfterDie - die.at;
    const why = `episode ${JSON.stringify({ ...ep, evidence: JSON.parse(ep.evidence).signals })}; die at ${die.at}`;
    // The simulator's own word: the ISO-stamped "ready" line of the restarted process.
    const logs = await tailLogs(docker, NAME, 50);
    const readyLine = logs.map((l) => ({ at: Date.parse(l.slice(0, 24)), l })).find((x) => x.l.includes('loaded; ready') && x.at > die.at);
    expect(readyLine, logs.join('\n')).toBeDefined();
    const nodeSaysReady = (readyLine?.at as number) - die.at;
    process.stderr.write(
      `crash test: gauntlet recovery ${measured.toFixed(0)} ms; independent probe ${independent.toFixed(0)} ms; node log says ready at ${nodeSaysReady.toFixed(0)} ms; restart ${(restart.at - die.at).toFixed(0)} ms\n`,
    );
    expect(Math.abs(measured - nodeSaysReady), why).toBeLessThan(200);
    expect(Math.abs(ep.started_at - die.at), why).toBeLessThan(200);
    expect(Math.abs((ep.running_again_at as number) - restart.at), why).toBeLessThan(1);
    expect(Math.abs(measured - independent), why).toBeLessThan(200);
    // and the report says the same
    const report = JSON.parse(readFileSync(join(result.reportDir, 'report.json'), 'utf8')) as { episodes: { recovery_ms: number }[] };
    expect(report.episodes[0]?.recovery_ms).toBeCloseTo(measured, 0);
  });

  it('the restart count grew by one', async () => {
    const info = await docker.getContainer(NAME).inspect();
    expect(info.RestartCount).toBe(restartsBefore + 1);
    expect(store.nodes(result.runId)[0]).toMatchObject({ restart_count_start: restartsBefore, restart_count_end: restartsBefore + 1 });
    expect(store.dockerEvents(result.runId).map((e) => e.action)).toEqual(expect.arrayContaining(['die', 'start']));
  });
});
