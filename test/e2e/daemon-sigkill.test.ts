// The daemon SIGKILLed in the middle of a run while every fault kind is in effect (one kind per
// node, all at once), then started again: it reverts what the ledger and the labels show, records
// the gap (its last row → the restart) as orchestrator downtime, takes the run up until its
// planned end and completes it, and the report's exposure leaves the gap out. Real Docker, real
// processes; the fault's effect is checked from outside (docker inspect, the netns, ps).
import Database from 'better-sqlite3';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DAEMON_FILE } from '../../src/daemon/client.js';
import { dockerClient } from '../../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { inNetnsOk, listTaggedRules } from '../../src/fault/netns.js';
import { silentLogger } from '../../src/log.js';
import { freePort } from '../../src/util/ports.js';
import { startCli, until, type CliRun } from '../helpers/cli.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

interface Case {
  node: string;
  kind: string;
  params: string;
  inEffect: (name: string) => Promise<boolean>;
}

describeDocker('SIGKILL of the daemon during every fault kind, then a restart: reverted, gap recorded, run resumed and completed', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const data = join(dir, 'data');
  const db = join(data, 'gauntlet.db');
  const ports = new Map<string, number>();
  const inspect = (name: string) => docker.getContainer(name).inspect();
  const processes = async (name: string): Promise<string> => ((await docker.getContainer(name).top({ ps_args: '-eo pid,args' })) as { Processes: string[][] }).Processes.flat().join('\n');
  const workers = async (name: string): Promise<number> => (await processes(name)).split('\n').filter((l) => l.includes('--worker ')).length;
  const helpers = async () => docker.listContainers({ all: true, filters: { label: ['gauntlet.fault'] } });
  const serves = async (name: string): Promise<boolean> => {
    try {
      const r = await request(`http://127.0.0.1:${ports.get(name)}/v1/completions`, { method: 'POST', body: '{"prompt":"x","max_tokens":1}', signal: AbortSignal.timeout(1500), reset: true });
      await r.body.dump();
      return r.statusCode === 200;
    } catch {
      return false;
    }
  };
  const query = <T>(sql: string): T[] => {
    if (!existsSync(db)) return [];
    const conn = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return conn.prepare(sql).all() as T[];
    } catch {
      return [];
    } finally {
      conn.close();
    }
  };

  const cases: Case[] = [
    { node: 'hang', kind: 'hang', params: '{ duration: 60s }', inEffect: async (n) => (await inspect(n)).State.Paused },
    { node: 'kill', kind: 'node-kill', params: '{ mode: stop, down_for: 60s, stop_timeout: 1s }', inEffect: async (n) => !(await inspect(n)).State.Running },
    { node: 'loss', kind: 'packet-loss', params: '{ share: 0.2, duration: 60s, driver: iptables }', inEffect: async (n) => (await listTaggedRules((await inspect(n)).State.Pid)).length > 0 },
    { node: 'pressure', kind: 'oom', params: '{ mode: pressure, share: 0.3, duration: 60s }', inEffect: async (n) => (await processes(n)).includes('gauntlet-hog') },
    { node: 'latency', kind: 'latency', params: '{ delay: 200ms, duration: 60s, driver: proxy }', inEffect: async (n) => (await helpers()).some((h) => h.Labels['gauntlet.fault.kind'] === 'latency') && (await listTaggedRules((await inspect(n)).State.Pid)).length > 0 },
    { node: 'worker', kind: 'gpu-worker-kill', params: '{ restore: restart }', inEffect: async (n) => (await workers(n)) < 2 },
  ];
  const name = (node: string): string => `gauntlet-e2e-dsk-${node}`;
  let daemon: CliRun | null = null;

  const startDaemon = async (): Promise<{ proc: CliRun; base: string; token: string }> => {
    const proc = startCli(['daemon', '--config', join(dir, 'gauntlet.yaml')]);
    // (a killed daemon's daemon.json stays behind, naming its dead pid: wait for this one's)
    const mine = (): { address: string; pid: number } | null => {
      try {
        const i = JSON.parse(readFileSync(join(data, DAEMON_FILE), 'utf8')) as { address: string; pid: number };
        return i.pid === proc.proc.pid ? i : null;
      } catch {
        return null;
      }
    };
    await until('the daemon to say where it listens', () => mine() !== null || proc.proc.exitCode !== null, 60_000);
    expect(proc.proc.exitCode, proc.stderr()).toBeNull();
    const info = mine() as { address: string; pid: number };
    daemon = proc;
    return { proc, base: info.address, token: readFileSync(join(data, 'api-token'), 'utf8').trim() };
  };
  const api = async (base: string, token: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const r = await request(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : null, signal: AbortSignal.timeout(10_000) });
    return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, cases.map((c) => name(c.node)));
    for (const c of cases) {
      const port = await freePort();
      ports.set(name(c.node), port);
      await startSimContainer(docker, image, { name: name(c.node), targetLabel: `e2e-dsk-${c.node}`, gpus: 2, loadMs: 300, hostPort: port, memoryMb: 256, extraArgs: ['--worker-loss', 'degraded'] });
    }
    for (const c of cases) await until(`${c.node} to serve`, () => serves(name(c.node)), 30_000);
    writeFileSync(join(dir, 'gauntlet.yaml'), 'listen: { port: 0 }\ndata_dir: data\nreports_dir: reports\n');
  }, 180_000);

  afterAll(async () => {
    if (daemon && daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
    await removeContainers(docker, cases.map((c) => name(c.node)));
  });

  it('every kind in effect at the kill; after the restart: reverted, gap out of exposure, the run completed at its planned end', async () => {
    const first = await startDaemon();
    const plan = `name: dsk
duration: 45s
targets: [${cases.map((c) => `{ name: ${c.node}, container: ${name(c.node)} }`).join(', ')}]
load: { rate: 6, max_tokens: 8, timeout: 5s, window: 1s }
faults: [${cases.map((c) => `{ kind: ${c.kind}, target: ${c.node}, at: 1s, params: ${c.params} }`).join(', ')}]
probes: { interval: 500ms, fast_interval: 100ms }
safety: { min_healthy_nodes: 0 }
recovery_limit: 40s
ready_timeout: 30s
`;
    const started = await api(first.base, first.token, 'POST', '/api/runs', { plan_text: plan, plan_source: join(dir, 'dsk.yaml') });
    expect(started.status, JSON.stringify(started.json)).toBe(202);
    const id = started.json.id as string;
    await until('every fault to be active', () => query<{ n: number }>("SELECT COUNT(*) AS n FROM faults WHERE state = 'active'")[0]?.n === cases.length, 60_000);
    for (const c of cases) await until(`${c.kind} to be visible on ${c.node}`, () => c.inEffect(name(c.node)), 15_000);
    first.proc.proc.kill('SIGKILL');
    await first.proc.exit;
    const killedAt = Date.now();
    expect(query<{ n: number }>("SELECT COUNT(*) AS n FROM faults WHERE state = 'active'")[0]?.n).toBe(cases.length);
    const before = query<{ status: string; phase: string; planned_end_at: number; load_started_at: number }>(`SELECT status, phase, planned_end_at, load_started_at FROM runs WHERE id = '${id}'`)[0];
    expect(before).toMatchObject({ status: 'running', phase: 'steady' });

    // the restart: leftovers reverted before anything else, the run taken up
    const second = await startDaemon();
    expect(query<{ n: number }>("SELECT COUNT(*) AS n FROM faults WHERE state = 'active'")[0]?.n).toBe(0);
    const live = await api(second.base, second.token, 'GET', `/api/runs/${id}`);
    expect(live.status).toBe(200);
    expect(live.json.origin).toMatchObject({ kind: 'resume' });
    for (const c of cases) {
      const info = await inspect(name(c.node));
      expect(info.State.Paused, c.node).toBe(false);
      if (info.State.Running) {
        expect(await listTaggedRules(info.State.Pid), c.node).toEqual([]);
        expect(await inNetnsOk(info.State.Pid, 'tc', ['qdisc', 'show']), c.node).not.toMatch(/6a1[78]:/);
        expect(await processes(name(c.node)), c.node).not.toContain('gauntlet-hog');
      }
    }
    expect(await helpers()).toEqual([]);

    // the run goes on to its planned end and completes
    const end = await until(
      'the resumed run to end',
      async () => {
        const r = query<{ status: string; phase: string; ended_at: number; load_ended_at: number; resumes: number; faults_done: number; error: string | null }>(`SELECT status, phase, ended_at, load_ended_at, resumes, faults_done, error FROM runs WHERE id = '${id}'`)[0];
        return r?.phase === 'done' ? r : null;
      },
      90_000,
    );
    expect(end.status, end.error ?? '').toBe('completed');
    expect(end.resumes).toBe(1);
    expect(end.faults_done).toBe(cases.length);
    expect(end.load_ended_at).toBeGreaterThanOrEqual(before!.planned_end_at - 1500);
    expect(end.load_ended_at).toBeLessThanOrEqual(before!.planned_end_at + 3000);
    for (const c of cases) {
      await until(`${c.node} to serve again`, () => serves(name(c.node)), 60_000);
      expect(await workers(name(c.node)), c.node).toBe(2);
    }
    const gap = query<{ detail: string }>(`SELECT detail FROM run_events WHERE run_id = '${id}' AND kind = 'orchestrator_down_span'`).map((e) => JSON.parse(e.detail) as { from: number; to: number; nodes: string[] });
    expect(gap).toHaveLength(1);
    const g = gap[0]!;
    expect(g.nodes.sort()).toEqual(cases.map((c) => c.node).sort());
    // from the last row the killed daemon wrote (at most a probe interval before the kill) to the restart
    expect(g.from).toBeLessThanOrEqual(killedAt);
    expect(g.from).toBeGreaterThan(killedAt - 2000);
    expect(g.to).toBeGreaterThan(killedAt);

    const report = JSON.parse(readFileSync(join(dir, 'reports', id, 'report.json'), 'utf8')) as { orchestrator_down_ms: number; exposure_node_hours: number; failures: Record<string, number> };
    const gapMs = g.to - g.from;
    expect(report.orchestrator_down_ms).toBeCloseTo(gapMs * cases.length, -1);
    const loadMs = end.load_ended_at - before!.load_started_at;
    expect(report.exposure_node_hours).toBeLessThanOrEqual(((loadMs - gapMs) * cases.length) / 3_600_000 + 1e-9);
    expect(report.failures.spontaneous, JSON.stringify(report.failures)).toBe(0);
    process.stderr.write(`daemon sigkill: gap ${gapMs} ms (${new Date(g.from).toISOString()} → ${new Date(g.to).toISOString()}), load ${loadMs} ms, exposure ${report.exposure_node_hours.toFixed(5)} node-h, down ${report.orchestrator_down_ms} ms, failures ${JSON.stringify(report.failures)}\n`);
    second.proc.proc.kill('SIGTERM');
    expect(await second.proc.exit).toBe(0);
  }, 300_000);
});
