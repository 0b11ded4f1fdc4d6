// The run supervisor on a bare endpoint (no Docker): a failure inside the run ends it through
// the normal path — status failed, the error recorded, the report written.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LoadEngine } from '../../src/load/types.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { runPlan } from '../../src/run/runner.js';
import { openStore } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { useStandInServer } from '../helpers/servers.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
const stand = useStandInServer();

describe('runPlan', () => {
  it('an engine that fails mid-run ends the run as failed, with the error and a report', async () => {
    const clock = new RealClock();
    const engine: LoadEngine = {
      name: 'broken',
      progress: { scheduled: 0, inFlight: 0, done: 0, ok: 0, failed: 0 },
      capabilities: { ttft: 'first_content_chunk', itl: true, queueDelay: true, notes: [] },
      async run(w, _signal, sink) {
        const t = clock.now();
        sink.record({ node: w.targets[0]?.node ?? '', seq: 1, attempt: 1, final: true, mix: 'default', promptTokens: 1, maxTokens: 1, gaps: [], scheduledAt: t, sentAt: t, respondedAt: t + 1, firstTokenAt: t + 5, endAt: t + 10, ttftMs: 5, e2eMs: 10, queueDelayMs: 0, outcome: 'ok', status: 200, outputTokens: 1, tokensSource: 'usage', chunks: 1, itlMaxMs: null, error: null });
        throw new Error('k6 exited with code 107');
      },
    };
    const store = openStore(join(dir, 'r.db'));
    const plan = parsePlanText(`name: broken\nduration: 30s\ntargets: [{ name: ext, endpoint: "${stand.endpoint}" }]\nload: { rate: 1 }\nprobes: { interval: 100ms }\n`);
    const result = await runPlan(plan, null, { store, clock, log: silentLogger, docker: null, reportsDir: join(dir, 'reports'), signal: new AbortController().signal, engine });
    expect(result).toMatchObject({ status: 'failed', error: 'load engine: k6 exited with code 107' });
    const report = JSON.parse(readFileSync(join(result.reportDir, 'report.json'), 'utf8'));
    expect(report.run).toMatchObject({ status: 'failed', error: 'load engine: k6 exited with code 107' });
    expect(report.requests.total).toBe(1);
    store.close();
  });

  it('a failure in the start phase, once the run exists, ends it through finalize: failed with the reason, done, a report, and no load sent', async () => {
    const clock = new RealClock();
    let ran = false;
    const engine: LoadEngine = {
      name: 'never',
      progress: { scheduled: 0, inFlight: 0, done: 0, ok: 0, failed: 0 },
      capabilities: { ttft: 'first_content_chunk', itl: true, queueDelay: true, notes: [] },
      async run() {
        ran = true;
      },
    };
    const store = openStore(join(dir, 'start.db'));
    store.addNode = () => {
      throw new Error('disk I/O error');
    };
    const plan = parsePlanText(`name: start-fails\nduration: 30s\ntargets: [{ name: ext, endpoint: "${stand.endpoint}" }]\nload: { rate: 1 }\nprobes: { interval: 100ms }\n`);
    const result = await runPlan(plan, null, { store, clock, log: silentLogger, docker: null, reportsDir: join(dir, 'reports-start'), signal: new AbortController().signal, engine });
    expect(result).toMatchObject({ status: 'failed', error: 'starting the run: disk I/O error' });
    expect(ran).toBe(false);
    expect(store.getRun(result.runId)).toMatchObject({ status: 'failed', phase: 'done', error: 'starting the run: disk I/O error' });
    expect(store.getRun(result.runId)?.ended_at).not.toBeNull();
    // no load was launched: it has no start and no end
    expect(store.getRun(result.runId)).toMatchObject({ load_started_at: null, load_ended_at: null });
    expect(store.probes(result.runId)).toHaveLength(0);
    expect(JSON.parse(readFileSync(join(result.reportDir, 'report.json'), 'utf8')).run.status).toBe('failed');
    store.close();
  });

  it('a failure before the run exists (its row cannot be written) is thrown as it is, and leaves no run behind', async () => {
    const store = openStore(join(dir, 'create.db'));
    store.createRun = () => {
      throw new Error('database is locked');
    };
    const plan = parsePlanText(`name: create-fails\nduration: 30s\ntargets: [{ name: ext, endpoint: "${stand.endpoint}" }]\nload: { rate: 1 }\n`);
    await expect(runPlan(plan, null, { store, clock: new RealClock(), log: silentLogger, docker: null, reportsDir: join(dir, 'reports-create'), signal: new AbortController().signal })).rejects.toThrow('database is locked');
    expect(store.listRuns()).toHaveLength(0);
    store.close();
  });
});
