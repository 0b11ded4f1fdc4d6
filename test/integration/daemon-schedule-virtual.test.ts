// The daemon's schedules on the virtual clock, against an in-process simulated node: a cron
// schedule fires a run at its time; one that comes due while a run is under way follows its
// when_busy policy (skip: recorded with the reason; queue: started when the run ends); the API
// shows each schedule's next fire time and its last fires; closing the daemon stops the run
// under way (finished as aborted).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parseDaemonConfig } from '../../src/daemon/config.js';
import { startDaemon } from '../../src/daemon/daemon.js';
import { METRIC_NAMES } from '../../src/daemon/metrics.js';
import { silentLogger } from '../../src/log.js';
import { VirtualClock } from '../../src/util/clock.js';
import { seededRandom } from '../../src/util/random.js';
import { tempDir } from '../helpers/tmp.js';
import { VirtualCluster } from '../helpers/virtual-cluster.js';

const dir = tempDir();
const iso = (t: number): string => new Date(t).toISOString();

function plan(name: string, duration: string): string {
  return `name: ${name}\nduration: ${duration}\nseed: 3\ntargets: [{ name: node, endpoint: "http://127.0.0.1:18031" }]\nload: { rate: 0.2, api: chat, stream: true, prompt_tokens: 16, max_tokens: 8, model: sim-llama }\nprobes: { interval: 10s }\ntelemetry: { interval: 0s }\nready_timeout: 1m\n`;
}

it('a schedule fires a run at its time; fires during a run are skipped (recorded) or queued per when_busy', async () => {
  writeFileSync(join(dir, 'soak.yaml'), plan('soak', '15m'));
  writeFileSync(join(dir, 'short.yaml'), plan('short', '3m'));
  const config = parseDaemonConfig(
    [
      'schedules:',
      '  - { name: every-10, cron: "*/10 * * * *", plan: soak.yaml, when_busy: skip }',
      '  - { name: at-0205, cron: "5 2 * * *", timezone: UTC, plan: short.yaml, when_busy: queue }',
    ].join('\n'),
    'gauntlet.yaml',
    dir,
  );
  const start = Date.UTC(2026, 11, 2, 1, 59, 0);
  const clock = new VirtualClock(start);
  const cluster = new VirtualCluster(clock);
  cluster.add({ name: 'virtual-a', label: 'node-a', port: 18_031 });
  const d = await startDaemon({ config, log: silentLogger, docker: null, clock, listen: false, random: seededRandom(1), http: { load: cluster.http, probes: cluster.http } });
  const auth = { authorization: `Bearer ${d.token}` };
  const before = (await d.app.inject({ url: '/api/schedules', headers: auth })).json() as { schedules: { name: string; next_fire_at: string }[] };
  expect(before.schedules.map((s) => `${s.name} ${s.next_fire_at}`)).toEqual(['every-10 2026-12-02T02:00:00.000Z', 'at-0205 2026-12-02T02:05:00.000Z']);
  // 01:59 → 02:21, event by event
  const until = Date.UTC(2026, 11, 2, 2, 21, 0);
  for (let steps = 0; clock.now() < until && steps < 5_000_000; steps++) {
    const next = clock.nextDue();
    await clock.advance(next === null ? 1000 : Math.max(0, Math.min(next, until) - clock.now()));
  }
  const fires = (name: string) => d.store.scheduleFires(name).reverse().map((f) => ({ due: iso(f.due_at), outcome: f.outcome, run: f.run_id, reason: f.reason }));
  const every10 = fires('every-10');
  const at0205 = fires('at-0205');
  const runs = d.store.listRuns().reverse();
  const lines = [`every-10 ${JSON.stringify(every10)}`, `at-0205 ${JSON.stringify(at0205)}`, `runs ${runs.map((r) => `${r.id} ${r.plan_name} ${r.status} ${iso(r.started_at)}..${r.ended_at ? iso(r.ended_at) : '-'}`).join('; ')}`].join(' | ');
  expect(every10.map((f) => `${f.due} ${f.outcome}`), lines).toEqual(['2026-12-02T02:00:00.000Z started', '2026-12-02T02:10:00.000Z skipped', '2026-12-02T02:20:00.000Z started']);
  const [first, , third] = every10;
  expect(every10[1]?.reason, lines).toMatch(new RegExp(`run ${first?.run} \\(soak\\) is under way`));
  expect(at0205.map((f) => `${f.due} ${f.outcome}`), lines).toEqual(['2026-12-02T02:05:00.000Z queued']);
  // the runs: the 02:00 soak completed, the queued short run went right after it, the 02:20 soak is under way
  expect(runs.map((r) => `${r.plan_name} ${r.status}`), lines).toEqual(['soak completed', 'short completed', 'soak running']);
  const [soak1, short, soak2] = runs as [(typeof runs)[number], (typeof runs)[number], (typeof runs)[number]];
  expect(soak1.id, lines).toBe(first?.run);
  expect(short.id, lines).toBe(at0205[0]?.run);
  expect(soak2.id, lines).toBe(third?.run);
  expect(soak1.started_at - Date.UTC(2026, 11, 2, 2, 0), lines).toBeLessThan(1000);
  expect(short.started_at - (soak1.ended_at as number), lines).toBeGreaterThanOrEqual(0);
  expect(short.started_at - (soak1.ended_at as number), lines).toBeLessThan(1000);
  // the API: next fire times and the last fires
  const after = (await d.app.inject({ url: '/api/schedules', headers: auth })).json() as { schedules: { name: string; next_fire_at: string; last_fires: { outcome: string }[] }[] };
  expect(after.schedules.map((s) => `${s.name} ${s.next_fire_at} ${s.last_fires.map((f) => f.outcome).join(',')}`)).toEqual([
    'every-10 2026-12-02T02:30:00.000Z started,skipped,started',
    'at-0205 2026-12-03T02:05:00.000Z queued',
  ]);
  // /metrics, open without the token: what the runs did, as Prometheus reads it
  const m = await d.app.inject({ url: '/metrics' });
  expect(m.statusCode).toBe(200);
  expect(m.headers['content-type']).toMatch(/text\/plain/);
  for (const name of METRIC_NAMES) expect(m.body, name).toContain(`# TYPE ${name} `);
  const value = (re: RegExp): number => Number(re.exec(m.body)?.[1] ?? Number.NaN);
  const okRequests = value(/^gauntlet_requests_total\{node="node",outcome="ok"\} (\d+)$/m);
  const recorded = d.store.loadTotals(soak1.id).concat(d.store.loadTotals(short.id), d.store.loadTotals(soak2.id)).reduce((a, w) => a + w.ok, 0);
  expect(okRequests, lines).toBeGreaterThan(100);
  // every ok request of the runs so far, less those of the run under way not yet in a closed window
  expect(okRequests).toBeGreaterThanOrEqual(recorded);
  expect(value(/^gauntlet_ttft_seconds_count\{node="node"\} (\d+)$/m)).toBe(okRequests);
  expect(value(/^gauntlet_runs_total\{status="completed"\} (\d+)$/m)).toBe(2);
  expect(value(/^gauntlet_run_active (\d+)$/m)).toBe(1);
  expect(value(/^gauntlet_mtbf_lower_bound_hours\{plan="short",confidence="0.8"\} ([\d.]+)$/m)).toBeGreaterThan(0);
  // closing the daemon stops the run under way: load stopped, finished as aborted
  const closing = d.close();
  for (let steps = 0; d.runs.running !== null && steps < 1_000_000; steps++) {
    const next = clock.nextDue();
    await clock.advance(next === null ? 1000 : Math.max(0, next - clock.now()));
  }
  await closing;
  const { openStore } = await import('../../src/store/store.js');
  const store = openStore(join(config.data_dir, 'gauntlet.db'));
  expect(store.getRun(soak2.id)).toMatchObject({ status: 'aborted', phase: 'done' });
  store.close();
}, 120_000);
