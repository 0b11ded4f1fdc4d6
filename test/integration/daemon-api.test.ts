// The daemon's API, in process (fastify's inject) and once on a real socket: the token on every
// route but /health and /metrics, 400 with the reason for bad input, runs started, queued,
// refused while busy, stopped (faults reverted, finished as aborted) and their reports served;
// the API listens on 127.0.0.1 unless told otherwise.
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { procStat } from '../../src/util/proc.js';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonConfig, parseDaemonConfig } from '../../src/daemon/config.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import type { LoadEngine } from '../../src/load/types.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { RealClock } from '../../src/util/clock.js';
import { useStandInServer } from '../helpers/servers.js';
import { tempDir } from '../helpers/tmp.js';

const clock = new RealClock();
const stand = useStandInServer();

/** An engine that sends nothing and lasts `ms` or until stopped: what the API tests need of a run. */
function idleEngine(ms: number): LoadEngine {
  return {
    name: 'idle',
    progress: { scheduled: 0, inFlight: 0, done: 0, ok: 0, failed: 0 },
    capabilities: { ttft: 'first_content_chunk', itl: true, queueDelay: true, notes: [] },
    async run(_w, signal, sink) {
      sink.started?.(clock.now());
      await clock.sleep(ms, signal).catch(() => undefined);
      sink.ended?.(clock.now());
    },
  };
}

function planText(name: string, duration = '30s'): string {
  return `name: ${name}\nduration: ${duration}\ntargets: [{ name: ext, endpoint: "${stand.endpoint}" }]\nload: { rate: 1, model: m }\nprobes: { interval: 1s }\ntelemetry: { interval: 0s }\n`;
}

describe('daemon API', () => {
  const dir = tempDir();
  let d: Daemon;
  let engineMs = 60_000;
  const auth = (): Record<string, string> => ({ authorization: `Bearer ${d.token}` });

  beforeAll(async () => {
    const config = { ...defaultDaemonConfig(dir), listen: { host: '127.0.0.1', port: 0 } };
    d = await startDaemon({ config, log: silentLogger, docker: null, cwd: dir, listen: false, engine: () => idleEngine(engineMs) });
  });
  afterAll(async () => {
    await d.close();
  });

  it('the token: 401 without it or with a wrong one (and says how to send it), /health open', async () => {
    expect((await d.app.inject({ url: '/health' })).statusCode).toBe(200);
    const none = await d.app.inject({ url: '/api/runs' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(none.json()).toMatchObject({ error: { code: 'GAUNTLET_API_UNAUTHORIZED' } });
    expect((await d.app.inject({ url: '/api/runs', headers: { authorization: `Bearer ${d.token}x` } })).statusCode).toBe(401);
    expect((await d.app.inject({ url: '/api/runs', headers: { authorization: d.token } })).statusCode).toBe(401);
    // unknown routes are behind the token too (no probing what exists)
    expect((await d.app.inject({ url: '/api/nope' })).statusCode).toBe(401);
    const ok = await d.app.inject({ url: '/api/runs', headers: auth() });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ runs: [] });
    // a malformed cookie is no token: 401, not a 500
    expect((await d.app.inject({ url: '/api/runs', headers: { cookie: 'gauntlet_token=%E0%A4%A' } })).statusCode).toBe(401);
    // the page's cookie is a token too
    expect((await d.app.inject({ url: '/api/runs', headers: { cookie: `gauntlet_token=${encodeURIComponent(d.token)}` } })).statusCode).toBe(200);
  });

  it('the live page: a login form without the token, /login sets an HttpOnly SameSite cookie for the right token only, /api/live behind it', async () => {
    const form = await d.app.inject({ url: '/' });
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('<form method="post" action="/login">');
    expect(form.body).not.toContain('/live.js');
    expect(form.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect((await d.app.inject({ url: '/api/live' })).statusCode).toBe(401);
    const login = (payload: string, type = 'application/x-www-form-urlencoded') => d.app.inject({ method: 'POST', url: '/login', headers: { 'content-type': type }, payload });
    for (const wrong of ['token=nope', 'token=', '', 'other=1', `token=${encodeURIComponent(d.token)}x`]) {
      const r = await login(wrong);
      expect(r.statusCode, wrong).toBe(401);
      expect(r.headers['set-cookie'], wrong).toBeUndefined();
      expect(r.body).toContain('id="login-error"');
    }
    const ok = await login(`token=${encodeURIComponent(d.token)}`);
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/');
    const cookie = String(ok.headers['set-cookie']);
    expect(cookie).toMatch(/^gauntlet_token=[^;]+; HttpOnly; SameSite=Strict; Path=\//);
    const jar = cookie.split(';')[0] as string;
    const page = await d.app.inject({ url: '/', headers: { cookie: jar } });
    expect(page.body).toContain('<script src="/live.js"></script>');
    const live = await d.app.inject({ url: '/api/live', headers: { cookie: jar } });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toMatchObject({ current: null, runs: [] });
  });

  it('bad input gets 400 with the reason', async () => {
    const post = (body: unknown, url = '/api/runs') => d.app.inject({ method: 'POST', url, headers: { ...auth(), 'content-type': 'application/json' }, payload: typeof body === 'string' ? body : JSON.stringify(body) });
    const cases: [unknown, RegExp, string?][] = [
      [{}, /give exactly one of "plan" \(a file\) or "plan_text"/],
      [{ plan: 'a.yaml', plan_text: 'x' }, /give exactly one of/],
      [{ plan_text: 'name: x\n' }, /GAUNTLET_PLAN_INVALID|invalid/],
      [{ plan_text: planText('x'), colour: 'red' }, /Unrecognized key.*colour|colour/],
      [{ plan_text: planText('x'), queue: 'yes' }, /queue/],
      [{ plan: 'missing.yaml' }, /cannot read plan .*missing\.yaml.*ENOENT/],
      // the API is no file reader: plans only, from the daemon's folder only
      [{ plan: '/etc/passwd' }, /a plan file \(\.yaml, \.yml, \.json\) under the daemon's folder/],
      [{ plan: '../outside.yaml' }, /under the daemon's folder/],
      ['{"plan_text": ', /request: .*JSON/i],
      [{ kind: 'explode', target: 'x' }, /kind: expected one of/, '/api/drills'],
      [{ kind: 'oom', target: 'x', rate: -1 }, /rate/, '/api/drills'],
    ];
    for (const [body, reason, url] of cases) {
      const r = await post(body, url);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.message, JSON.stringify(body)).toMatch(reason);
    }
    const badId = await d.app.inject({ url: '/api/runs/..%2Fetc', headers: auth() });
    expect(badId.statusCode).toBe(400);
    expect(badId.json().error.message).toMatch(/run id/);
    const badFile = await d.app.inject({ url: '/api/runs/x/report/secrets.txt', headers: auth() });
    expect(badFile.statusCode).toBe(400);
    expect(badFile.json().error.message).toMatch(/expected one of report\.md/);
    expect((await d.app.inject({ url: '/api/runs/no-such-run', headers: auth() })).statusCode).toBe(404);
    expect((await d.app.inject({ url: '/api/runs?limit=0', headers: auth() })).statusCode).toBe(400);
  });

  it('a plan sent over the API may not run k6 on SSH hosts (it would log in with the daemon\'s keys)', async () => {
    const text = planText('ssh').replace('load: { rate: 1, model: m }', 'load: { engine: k6, rate: 1, model: m, k6_hosts: [{ host: "ssh://g@loadgen-1" }] }');
    const r = await d.app.inject({ method: 'POST', url: '/api/runs', headers: auth(), payload: { plan_text: text } });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.message).toMatch(/plans sent over the API may not run k6 on SSH hosts/);
    expect(d.store.listRuns(50).some((x) => x.plan_name === 'ssh')).toBe(false);
  });

  it('a plan sent over the API may not name other Docker engines (their keys are the daemon\'s files; faults there run as root)', async () => {
    const text = `${planText('engines')}engines: [{ name: rack-b, host: "tcp://10.0.0.5:2376", tls: { ca: /etc/ssl/ca.pem, cert: c.pem, key: k.pem } }]\n`;
    const r = await d.app.inject({ method: 'POST', url: '/api/runs', headers: auth(), payload: { plan_text: text } });
    expect(r.statusCode, r.body).toBe(409);
    expect(r.json().error.message).toMatch(/plans sent over the API may not name Docker engines/);
    expect(d.store.listRuns(50).some((x) => x.plan_name === 'engines')).toBe(false);
  });

  it('starts a run, refuses a second while it runs (409) unless queued, stops it (aborted, with a report), then runs the queued one', async () => {
    engineMs = 60_000;
    const post = (body: unknown) => d.app.inject({ method: 'POST', url: '/api/runs', headers: auth(), payload: body as Record<string, unknown> });
    writeFileSync(join(dir, 'first.yaml'), planText('first'));
    const a = await post({ plan: 'first.yaml' });
    expect(a.statusCode).toBe(202);
    const first = a.json() as { id: string; state: string };
    expect(first.state).toBe('running');
    // a run in its start: seen live, then in the store
    for (let i = 0; i < 100 && d.store.getRun(first.id)?.phase !== 'steady'; i++) await clock.sleep(50);
    const live = (await d.app.inject({ url: `/api/runs/${first.id}`, headers: auth() })).json();
    expect(live).toMatchObject({ id: first.id, plan: 'first', status: 'running', phase: 'steady', live: { state: 'running' } });
    const busy = await post({ plan_text: planText('second') });
    expect(busy.statusCode).toBe(409);
    expect(busy.json().error.message).toMatch(new RegExp(`run ${first.id} \\(first\\) is under way`));
    engineMs = 300;
    const queued = await post({ plan_text: planText('second'), queue: true });
    expect(queued.statusCode).toBe(202);
    const second = queued.json() as { id: string; state: string };
    expect(second.state).toBe('queued');
    expect((await d.app.inject({ url: '/api/runs', headers: auth() })).json().runs.map((r: { id: string }) => r.id)).toEqual(expect.arrayContaining([first.id, second.id]));
    const stop = await d.app.inject({ method: 'POST', url: `/api/runs/${first.id}/stop`, headers: auth() });
    expect(stop.statusCode).toBe(202);
    await d.runs.wait(first.id);
    expect(d.store.getRun(first.id)).toMatchObject({ status: 'aborted', phase: 'done' });
    const md = await d.app.inject({ url: `/api/runs/${first.id}/report/report.md`, headers: auth() });
    expect(md.statusCode).toBe(200);
    expect(md.headers['content-type']).toMatch(/markdown/);
    expect(md.body).toContain(first.id);
    const json = await d.app.inject({ url: `/api/runs/${first.id}/report/report.json`, headers: auth() });
    expect(json.json().run.status).toBe('aborted');
    // the queued run went next, and completed
    await d.runs.wait(second.id);
    for (let i = 0; i < 100 && d.runs.running !== null; i++) await clock.sleep(50);
    expect(d.store.getRun(second.id)).toMatchObject({ status: 'completed', phase: 'done' });
    // a run of another Gauntlet (a CLI run, whose process lives) on the same database is not raced
    const ppidStart = procStat(process.ppid)?.startTime;
    d.store.createRun({ id: 'cli-run-1', plan_name: 'by-hand', plan_json: '{}', plan_source: null, status: 'running', started_at: clock.now(), load_started_at: null, load_ended_at: null, ended_at: null, time_scale: 1, seed: 1, error: null, host: hostname(), gauntlet_version: 'x', engine: null, phase: 'steady', phase_at: clock.now(), owner: `${hostname()}|${process.ppid}|${ppidStart}` });
    const raced = await post({ plan_text: planText('fourth'), queue: true });
    expect(raced.statusCode).toBe(409);
    expect(raced.json().error.message).toMatch(/run cli-run-1 \(by-hand\) is under way in another Gauntlet on this database/);
    d.store.updateRun('cli-run-1', { status: 'aborted', phase: 'done', ended_at: clock.now() });
    // a schedule that keeps firing while a run is under way queues one run, not one per fire
    engineMs = 60_000;
    const third = await post({ plan_text: planText('third') });
    expect(third.statusCode).toBe(202);
    const thirdId = (third.json() as { id: string }).id;
    for (let i = 0; i < 100 && d.store.getRun(thirdId)?.phase !== 'steady'; i++) await clock.sleep(50);
    const nightly = { plan: parsePlanText(planText('nightly')), planSource: null, origin: { kind: 'schedule' as const, name: 'nightly' }, whenBusy: 'queue' as const };
    expect(d.runs.submit(nightly).state).toBe('queued');
    const again = d.runs.submit(nightly);
    expect(again.state).toBe('skipped');
    expect(again.reason).toMatch(/of this schedule is already queued/);
    await d.runs.close('end of test');
    expect(d.store.getRun(thirdId)?.status).toBe('aborted');
    // stopping what is not live: 409 for a finished run, 404 for none
    expect((await d.app.inject({ method: 'POST', url: `/api/runs/${first.id}/stop`, headers: auth() })).statusCode).toBe(409);
    expect((await d.app.inject({ method: 'POST', url: '/api/runs/nope/stop', headers: auth() })).statusCode).toBe(404);
  }, 60_000);
});

describe('daemon listening', () => {
  const dir = tempDir();

  it('listens on 127.0.0.1 by default and answers over a real socket', async () => {
    const config = parseDaemonConfig('listen: { port: 0 }\n', 'gauntlet.yaml', dir);
    expect(config.listen.host).toBe('127.0.0.1');
    const d = await startDaemon({ config, log: silentLogger, docker: null });
    try {
      expect(d.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await request(`${d.address}/health`);
      expect(health.statusCode).toBe(200);
      expect(((await health.body.json()) as { ok: boolean }).ok).toBe(true);
      const runs = await request(`${d.address}/api/runs`);
      expect(runs.statusCode).toBe(401);
      await runs.body.dump();
    } finally {
      await d.close();
    }
  });

  it('a second daemon on the same data folder is refused while the first lives', async () => {
    const first = await startDaemon({ config: parseDaemonConfig('listen: { port: 0 }\ndata_dir: shared\n', 'gauntlet.yaml', dir), log: silentLogger, docker: null });
    try {
      // (the same process here: what the check reads is daemon.json's live pid, which must not be this one's)
      const { writeDaemonInfo } = await import('../../src/daemon/client.js');
      writeDaemonInfo(join(dir, 'shared'), { pid: process.ppid, address: first.address as string, started_at: new Date().toISOString() });
      await expect(startDaemon({ config: parseDaemonConfig('listen: { port: 0 }\ndata_dir: shared\n', 'gauntlet.yaml', dir), log: silentLogger, docker: null })).rejects.toThrow(/a daemon runs on .*shared: pid \d+ .* one daemon per database/);
    } finally {
      await first.close();
    }
  });

  it('a port that is taken: said, and nothing left open', async () => {
    const first = await startDaemon({ config: parseDaemonConfig('listen: { port: 0 }\n', 'gauntlet.yaml', dir), log: silentLogger, docker: null });
    try {
      const port = Number(new URL(first.address as string).port);
      const config = parseDaemonConfig(`listen: { port: ${port} }\ndata_dir: other\n`, 'gauntlet.yaml', dir);
      await expect(startDaemon({ config, log: silentLogger, docker: null })).rejects.toThrow(/GAUNTLET_DAEMON_LISTEN|cannot listen on 127\.0\.0\.1:\d+.*EADDRINUSE/);
    } finally {
      await first.close();
    }
  });

  it('runs a killed Gauntlet left that are not taken up are ended as aborted with the reason, their reports written', async () => {
    const { openStore } = await import('../../src/store/store.js');
    const { existsSync } = await import('node:fs');
    const folder = join(dir, 'cutoff');
    const store = openStore(join(folder, 'gauntlet.db'));
    const dead = `${hostname()}|999999|0`;
    const plan = (resume: boolean) => parsePlanText(`name: cut\nduration: 1h\ntargets: [{ name: a, endpoint: "http://127.0.0.1:9" }]\nload: { rate: 1, model: m }\nresume: ${resume}\n`, 'cut.yaml');
    const row = (id: string, resume: boolean, over: Record<string, unknown>) => ({
      id, plan_name: 'cut', plan_json: JSON.stringify(plan(resume)), plan_source: null, status: 'running' as const, started_at: 1000, load_started_at: 2000, load_ended_at: null, ended_at: null,
      time_scale: 1, seed: 1, error: null, host: hostname(), gauntlet_version: 'test', engine: null, phase: 'steady' as const, phase_at: 2000, planned_end_at: Date.now() + 3_600_000, owner: dead, ...over,
    });
    store.createRun(row('no-resume', false, {}));
    store.createRun(row('past-end', true, { planned_end_at: 5000 }));
    store.createRun(row('finishing', true, { phase: 'finalize' }));
    store.addRunEvent({ run_id: 'no-resume', at: 4321, kind: 'note', message: 'last row', detail: null });
    store.close();
    const d = await startDaemon({ config: parseDaemonConfig('listen: { port: 0 }\ndata_dir: cutoff\nreports_dir: cutoff/reports\n', 'gauntlet.yaml', dir), log: silentLogger, docker: null, listen: false });
    try {
      const got = Object.fromEntries(['no-resume', 'past-end', 'finishing'].map((id) => [id, d.store.getRun(id)]));
      for (const r of Object.values(got)) expect(r).toMatchObject({ status: 'aborted', phase: 'done' });
      expect(got['no-resume']?.error).toMatch(/Gauntlet was killed \(its record stops at 1970-01-01T00:00:04\.321Z\); not taken up: its plan says resume: false/);
      expect(got['no-resume']?.load_ended_at).toBe(4321);
      expect(got['past-end']?.error).toMatch(/its planned end 1970-01-01T00:00:05\.000Z has passed/);
      expect(got['finishing']?.error).toMatch(/cut off in its finalize phase, not under load/);
      for (const id of Object.keys(got)) expect(existsSync(join(folder, 'reports', id, 'report.json')), id).toBe(true);
      expect(d.runs.running).toBeNull();
    } finally {
      await d.close();
    }
  });
});
