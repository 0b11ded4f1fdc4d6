// A crash of a simulator container, measured by Gauntlet and, independently, by this test:
// its own Docker event stream, its own 25 ms inference poller and the node's own log. They
// must agree to within what one probe cycle takes on this machine during this run (the
// poller measures that too), not to within a fixed number of ms: on a busy machine an
// inference simply takes longer.
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
import { watchLateness, type Lateness } from '../helpers/timing.js';
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
  /** The poller's answered inferences after the crash: when each was sent and answered. */
  const answered: { sentAt: number; answeredAt: number }[] = [];
  let lateness: Lateness;
  const RECOVERY_INTERVAL_MS = 50;

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
probes: { interval: 500ms, timeout: 500ms, fast_interval: ${RECOVERY_INTERVAL_MS}ms }
recovery_limit: 20s
ready_timeout: 30s
`);
    const clock = new RealClock();
    // The independent poller: one-token inferences every 25 ms from the crash until the node
    // has answered a few; it notes when the first 200 arrived (a request sent during the outage
    // can be held and answered after the restart, so its send time would say nothing) and how
    // long the ones after it took: what one inference costs on this machine right then.
    let stop = false;
    const poller = (async () => {
      for (let i = 0; i < 2000 && !stop && answered.length < 6; i++) {
        const sentAt = clock.now();
        const die = seen.find((e) => e.action === 'die');
        try {
          const r = await request(`${endpoint}/v1/completions`, { method: 'POST', body: '{"prompt":"x","max_tokens":1}', signal: AbortSignal.timeout(5000) });
          const answeredAt = clock.now();
          await r.body.dump();
          if (r.statusCode === 200 && die && sentAt > die.at) {
            firstOkAfterDie ??= answeredAt;
            answered.push({ sentAt, answeredAt });
          }
        } catch {
          // refused or reset while the node is down
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    // And how late this process ran its timers meanwhile (Gauntlet's prober runs in it).
    const timers = watchLateness(() => clock.now());
    result = await runPlan(plan, null, { store, clock, log: silentLogger, docker, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });
    lateness = timers.stop();
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

  it("its recovery agrees with Docker's events, the node's own log and an independent probe, to within one probe cycle as this run measured it", async () => {
    const ep = store.episodes(result.runId)[0];
    const fault = store.faults(result.runId)[0];
    const die = seen.find((e) => e.action === 'die');
    const restart = seen.find((e) => e.action === 'start' && die && e.at > die.at);
    expect(ep && fault?.planned_at && die && restart && firstOkAfterDie).toBeTruthy();
    if (!ep || !fault?.planned_at || !die || !restart || firstOkAfterDie === null) return;
    const plannedAt = fault.planned_at;
    const servingAgain = ep.serving_again_at as number;
    const measured = servingAgain - ep.started_at;
    const independent = firstOkAfterDie - die.at;
    // The simulator's own word: the ISO-stamped "ready" line of the restarted process (same host
    // clock, truncated to the ms: at most 1 ms early against ours).
    const logs = await tailLogs(docker, NAME, 50);
    const readyLine = logs.map((l) => ({ at: Date.parse(l.slice(0, 24)), l })).find((x) => x.l.includes('loaded; ready') && x.at > die.at);
    expect(readyLine, logs.join('\n')).toBeDefined();
    const readyAt = readyLine?.at as number;
    // One inference right after the recovery, as the poller timed it (the first answer is left
    // out: it may have been held through the outage), and the longest this process was busy
    // between the node's "ready" and the later of the two first answers.
    expect(answered.length, 'the poller got fewer than two answers after the crash').toBeGreaterThanOrEqual(2);
    const inference = Math.max(...answered.slice(1).map((a) => a.answeredAt - a.sentAt));
    const busy = lateness.worst(readyAt, Math.max(servingAgain, firstOkAfterDie));
    const cycle = RECOVERY_INTERVAL_MS + busy + 2 * inference;
    const why = `episode ${JSON.stringify({ ...ep, evidence: JSON.parse(ep.evidence).signals })}; fault planned at ${plannedAt}; die at ${die.at}; ready at ${readyAt}; inference ${inference.toFixed(0)} ms; busy ${busy.toFixed(0)} ms`;
    process.stderr.write(
      `crash test: gauntlet recovery ${measured.toFixed(0)} ms; independent probe ${independent.toFixed(0)} ms; node log says ready at ${(readyAt - die.at).toFixed(0)} ms; ` +
        `restart ${(restart.at - die.at).toFixed(0)} ms; episode start ${(ep.started_at - die.at).toFixed(0)} ms from die (fault planned at ${(plannedAt - die.at).toFixed(0)}); ` +
        `gauntlet saw it serving ${(servingAgain - readyAt).toFixed(0)} ms after "ready", ${(servingAgain - firstOkAfterDie).toFixed(0)} ms after the poller (allowed ${cycle.toFixed(0)}: inference ${inference.toFixed(0)}, loop busy ${busy.toFixed(0)})\n`,
    );
    // Start: the first evidence, which can come neither before the fault was set in motion
    // nor after Docker saw the process die (a stream cut by the kill can come before it).
    expect(ep.started_at, why).toBeGreaterThanOrEqual(plannedAt);
    expect(ep.started_at, why).toBeLessThanOrEqual(die.at);
    // Running again: Docker's own start event, exactly.
    expect(Math.abs((ep.running_again_at as number) - restart.at), why).toBeLessThan(1);
    // Serving again: never before the node said it was ready (nor did the poller see that) ...
    expect(servingAgain, why).toBeGreaterThanOrEqual(readyAt - 1);
    expect(firstOkAfterDie, why).toBeGreaterThanOrEqual(readyAt - 1);
    // ... and no more than one probe cycle after the poller first got an answer: the probe
    // interval, the answer to the probe in flight and to the next one, and however long this
    // process could not run. (Not counted from "ready": on a busy machine the first answers can
    // come a few hundred ms after that line, to Gauntlet and to the poller alike.)
    expect(servingAgain - firstOkAfterDie, why).toBeLessThanOrEqual(cycle);
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
