// A load generator that cannot keep up must be reported as saturated, not as a slow server:
// `gauntlet run` with the real k6 at a rate far beyond what k6 can start on this machine (and
// VUs capped, so arrivals are dropped) exits 3, and the report names the windows and why.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateK6, probeK6 } from '../../src/load/k6/binary.js';
import { runCli } from '../helpers/cli.js';
import { startSimProcess, type SimProcess } from '../helpers/sim-process.js';
import { tempDir } from '../helpers/tmp.js';

const k6 = locateK6();
const real = k6 !== null && (await probeK6(k6)).version.indexOf('fake') === -1 && !k6.includes('fake-k6');
if (!real) process.stderr.write('\n*** SKIPPED generator.test.ts: no real k6 binary (set K6_BIN). ***\n\n');

describe.runIf(real)('a saturated load generator (real k6)', () => {
  const dir = tempDir();
  let sim: SimProcess;
  let endpoint: string;
  beforeAll(async () => {
    sim = await startSimProcess(['--gpus', '1', '--load-ms', '0', '--ttft-ms', '20', '--itl-ms', '400', '--jitter', '0', '--max-batch', '100000']);
    endpoint = sim.endpoint;
  });
  afterAll(() => sim?.kill());

  it('is reported as generator-saturated (exit 3, the windows and why), not as server latency', async () => {
    // 200 streams/s of 2 s each need ~400 VUs; max_in_flight gives k6 20: most arrivals cannot start.
    const plan = join(dir, 'saturated.yaml');
    writeFileSync(
      plan,
      `name: saturated\nduration: 6s\ntargets: [{ name: n, endpoint: "${endpoint}" }]\n` +
        `load: { engine: k6, rate: 200, arrival: constant, max_in_flight: 20, api: chat, stream: true, max_tokens: 6, prompt_tokens: 8, model: sim-llama, window: 2s }\n` +
        `probes: { interval: 1s }\n`,
    );
    const r = await runCli(['run', plan, '--db', join(dir, 'g.db'), '--reports', join(dir, 'reports')], { K6_BIN: k6 as string });
    const id = /^run (\S+):/m.exec(r.stdout)?.[1] as string;
    expect(id, r.stdout + r.stderr).toBeTruthy();
    const report = JSON.parse(readFileSync(join(dir, 'reports', id, 'report.json'), 'utf8')) as {
      run: { status: string; started_at: string; load_started_at: string; load_ended_at: string };
      exposure_node_hours: number;
      journal: { kind: string; message: string }[];
      generator: { kept_up: boolean; behind_share: number; behind_windows: { why: string[] }[] };
      requests: { schedule_misses: number; accounting: { planned: number; sent: number; missed: number; interrupted: number; cancelled: number } | null };
    };
    process.stderr.write(`saturated k6: exit ${r.code}; generator ${JSON.stringify({ ...report.generator, behind_windows: report.generator.behind_windows.slice(0, 2) })}; accounting ${JSON.stringify(report.requests.accounting)}\n`);
    expect(report.run.status).toBe('completed');
    expect(report.generator.kept_up).toBe(false);
    expect(report.generator.behind_share).toBeGreaterThan(0.5);
    expect(report.generator.behind_windows[0]?.why.join(' ')).toMatch(/arrivals not started/);
    expect(r.stdout).toMatch(/LOAD GENERATOR SATURATED: behind \d+\.\d% of the load/);
    expect(r.code).toBe(3);
    const md = readFileSync(join(dir, 'reports', id, 'report.md'), 'utf8');
    expect(md).toContain('**Load generator saturated**');
    // Every arrival accounted for, the dropped ones included.
    const a = report.requests.accounting;
    expect(a).not.toBeNull();
    expect(a?.missed).toBeGreaterThan(400);
    expect((a?.sent ?? 0) + (a?.missed ?? 0) + (a?.interrupted ?? 0) + (a?.cancelled ?? 0)).toBe(a?.planned);
    // The load's clock starts at k6's first arrival, not when Gauntlet launched k6 (bundle, VU
    // start-up), and ends with its last request: exposure is the plan's 6 s, not 6 s + k6's start.
    const began = report.journal.find((j) => j.kind === 'load_started');
    expect(began?.message, JSON.stringify(report.journal)).toMatch(/^k6 began the load .* after Gauntlet launched it/);
    const loadStart = Date.parse(report.run.load_started_at);
    const loadEnd = Date.parse(report.run.load_ended_at);
    expect(loadStart - Date.parse(report.run.started_at)).toBeGreaterThan(100); // readiness, then k6's own start
    expect(loadEnd - loadStart, JSON.stringify(report.run)).toBeGreaterThan(5_500);
    expect(loadEnd - loadStart, JSON.stringify(report.run)).toBeLessThan(6_000 + 2_000 + 500); // + the longest stream (2 s) still ending
    // (exposure is reported to 1e-4 h: within 180 ms)
    expect(Math.abs(report.exposure_node_hours * 3_600_000 - (loadEnd - loadStart))).toBeLessThanOrEqual(181);
  }, 90_000);
});
