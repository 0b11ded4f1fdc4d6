// A compressed 72 h certification: scenarios/certify-72h.yaml run by the CLI with
// `--time-scale N` against two simulator containers started with the same scale, and the
// Gauntlet process's RSS and the database's size sampled from outside every real minute.
// The plan is the certification plan as shipped except its rate: the real load is --real-rate
// requests/s (plan rate = real rate / N), since plan time runs N times faster and a plan rate of
// 20/s at ×72 would be 1440 streams/s on two cores. What grows per plan-hour (windows, rollups,
// probes, telemetry, episodes) grows as in the real 72 h; what grows per request sees
// real-rate × wall-time requests.
//
// The probes' timeout and fast pace are raised (--probe-timeout, --fast-interval, in plan time):
// scaled as shipped, a 2 s timeout is 28 ms of real time at ×72, under this machine's own
// scheduling jitter with two simulators and Gauntlet on two cores: late answers open spurious
// hangs, and a probe outstanding past the fast interval (200 ms plan, 2.8 ms real) puts the
// prober on its fast pace, so the nodes were probed every 2 s instead of 10 (ten times the rows).
// Defaults: timeout 9 s, fast interval 10 s (= the interval): probes at the plan's 10 s.
//
// --via daemon: the same plan sent to `gauntlet daemon --time-scale N` over its API
// (POST /api/runs), followed through GET /api/runs/:id, and the daemon's RSS and database
// sampled every plan-hour (unless --sample-ms says otherwise); /metrics is scraped at each
// sample too, as Prometheus would, so its cost is in the figures.
//
//   npm run bench:soak [-- --scale 72 --hours 72 --real-rate 20 --keep --via cli|daemon]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { parseDocument } from 'yaml';
import { dockerClient } from '../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../src/docker/sim-image.js';
import { silentLogger } from '../src/log.js';
import { openStore } from '../src/store/store.js';
import { RealClock } from '../src/util/clock.js';
import { freePort } from '../src/util/ports.js';
import { packageRoot } from '../src/util/paths.js';

const { values: args } = parseArgs({
  options: {
    scale: { type: 'string', default: '72' },
    hours: { type: 'string', default: '72' },
    'real-rate': { type: 'string', default: '20' },
    'sample-ms': { type: 'string' },
    via: { type: 'string', default: 'cli' },
    'probe-timeout': { type: 'string', default: '9s' },
    'fast-interval': { type: 'string', default: '10s' },
    keep: { type: 'boolean', default: false },
  },
});
const scale = Number(args.scale);
const hours = Number(args.hours);
const realRate = Number(args['real-rate']);
const via = args.via;
if (via !== 'cli' && via !== 'daemon') throw new Error(`--via: cli or daemon, got ${String(via)}`);
// the CLI's soak sampled every real minute; the daemon's every plan-hour
const sampleMs = Number(args['sample-ms'] ?? (via === 'daemon' ? String(3_600_000 / scale) : '60000'));
for (const [k, v] of Object.entries({ scale, hours, realRate, sampleMs })) if (!Number.isFinite(v) || v <= 0) throw new Error(`--${k}: a positive number, got ${String(v)}`);

const root = packageRoot();
const clock = new RealClock();
const docker = dockerClient();
const NAMES = ['gauntlet-bench-soak-a', 'gauntlet-bench-soak-b'];

interface Sample {
  wall_s: number;
  plan_h: number;
  rss_mb: number;
  db_mb: number;
  /** --via daemon: the size of a /metrics scrape */
  metrics_bytes?: number | null;
}

/** The daemon's API, for the soak: its token once it is written, a run started and followed. */
async function daemonApi(work: string, port: number, exited: Promise<number | null>) {
  const base = `http://127.0.0.1:${port}`;
  let dead = false;
  void exited.then(() => (dead = true));
  const tokenPath = join(work, 'data', 'api-token');
  for (let i = 0; i < 600 && !existsSync(tokenPath); i++) {
    if (dead) throw new Error('the daemon exited before it wrote its token');
    await clock.sleep(100);
  }
  const token = readFileSync(tokenPath, 'utf8').trim();
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    for (let i = 0; ; i++) {
      try {
        const r = await request(`${base}${path}`, { method: method as 'GET', headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : null, signal: AbortSignal.timeout(30_000) });
        return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
      } catch (err) {
        if (dead || i >= 100) throw err;
        await clock.sleep(200);
      }
    }
  };
  return {
    async start(plan: string): Promise<string> {
      const r = await call('POST', '/api/runs', { plan });
      if (r.status !== 202) throw new Error(`POST /api/runs: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json.id as string;
    },
    async finished(id: string): Promise<void> {
      for (;;) {
        if (dead) throw new Error('the daemon died during the soak');
        const r = await call('GET', `/api/runs/${id}`);
        if (r.status === 200 && r.json.phase === 'done') return;
        if (r.status === 200 && r.json.status === 'not_started') throw new Error(`the run did not start: ${String(r.json.error)}`);
        await clock.sleep(5000);
      }
    },
    async metrics(): Promise<number> {
      const r = await request(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) });
      return (await r.body.text()).length;
    },
  };
}

function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

function dbMb(path: string): number {
  let total = 0;
  for (const p of [path, `${path}-wal`]) if (existsSync(p)) total += statSync(p).size;
  return total / 1048576;
}

/** Least-squares slope of y against x, with the standard error of the slope. */
function slope(xs: number[], ys: number[]): { slope: number; se: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += ((xs[i] as number) - mx) ** 2;
    sxy += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
  }
  const b = sxy / sxx;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += ((ys[i] as number) - my - b * ((xs[i] as number) - mx)) ** 2;
  return { slope: b, se: Math.sqrt(sse / Math.max(1, n - 2) / sxx) };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'gauntlet-bench-soak-'));
  const image = await ensureSimImage(docker, silentLogger);
  await removeContainers(docker, NAMES);
  const ports = [await freePort(), await freePort()];
  for (const [i, name] of NAMES.entries()) {
    await startSimContainer(docker, image, {
      name,
      targetLabel: i === 0 ? 'node-a' : 'node-b',
      gpus: 2,
      loadMs: 2000,
      hostPort: ports[i] as number,
      extraArgs: ['--time-scale', String(scale)],
    });
  }
  const doc = parseDocument(readFileSync(join(root, 'scenarios', 'certify-72h.yaml'), 'utf8'));
  doc.setIn(['load', 'rate'], realRate / scale);
  doc.setIn(['duration'], `${hours}h`);
  doc.setIn(['probes', 'timeout'], args['probe-timeout']);
  doc.setIn(['probes', 'fast_interval'], args['fast-interval']);
  const planPath = join(work, 'certify-72h-soak.yaml');
  writeFileSync(planPath, doc.toString());
  const daemonPort = await freePort();
  const dbPath = via === 'daemon' ? join(work, 'data', 'gauntlet.db') : join(work, 'soak.db');
  if (via === 'daemon') writeFileSync(join(work, 'gauntlet.yaml'), `listen: { host: 127.0.0.1, port: ${daemonPort} }\ndata_dir: data\nreports_dir: reports\n`);
  const started = clock.now();
  const argv =
    via === 'daemon'
      ? ['daemon', '--config', join(work, 'gauntlet.yaml'), '--time-scale', String(scale)]
      : ['run', planPath, '--time-scale', String(scale), '--db', dbPath, '--reports', join(work, 'reports')];
  const child = spawn(process.execPath, [join(root, 'dist', 'gauntlet.js'), ...argv], {
    cwd: work,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, GAUNTLET_LOG_LEVEL: 'warn' },
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-20_000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const samples: Sample[] = [];
  const api = via === 'daemon' ? await daemonApi(work, daemonPort, exited) : null;
  const take = async (): Promise<void> => {
    const rss = rssMb(child.pid as number);
    if (rss === null) return;
    const metricsBytes = api ? await api.metrics().catch(() => null) : undefined;
    const wall = (clock.now() - started) / 1000;
    samples.push({ wall_s: wall, plan_h: (wall * scale) / 3600, rss_mb: rss, db_mb: dbMb(dbPath), ...(metricsBytes !== undefined ? { metrics_bytes: metricsBytes } : {}) });
    const s = samples.at(-1) as Sample;
    process.stderr.write(`soak: ${s.wall_s.toFixed(0)} s real, ${s.plan_h.toFixed(1)} plan-h, RSS ${s.rss_mb.toFixed(1)} MB, DB ${s.db_mb.toFixed(1)} MB${s.metrics_bytes ? `, /metrics ${s.metrics_bytes} B` : ''}\n`);
  };
  const timer = setInterval(() => void take(), sampleMs);
  let code: number | null;
  if (api) {
    const id = await api.start('certify-72h-soak.yaml');
    process.stderr.write(`soak: run ${id} started through the daemon's API\n`);
    await api.finished(id);
    clearInterval(timer);
    await take();
    child.kill('SIGTERM');
    code = await exited;
  } else {
    code = await exited;
    clearInterval(timer);
  }
  const wallS = (clock.now() - started) / 1000;
  if (!args.keep) await removeContainers(docker, NAMES);

  // the run's own hourly record (_gauntlet rss_bytes, db_bytes), from inside the process
  const store = openStore(dbPath);
  const run = store.listRuns()[0];
  const hourly = run ? store.telemetry(run.id).filter((t) => t.node === '_gauntlet' && (t.metric === 'rss_bytes' || t.metric === 'db_bytes')) : [];
  const requests = run ? store.loadTotals(run.id) : null;
  store.close();
  const inside = hourly.filter((t) => t.metric === 'rss_bytes').map((t) => ({ plan_h: (t.at - (run?.load_started_at ?? 0)) / 3_600_000, rss_mb: t.value / 1048576 }));
  // after the first plan-hour: start-up (the corpus, the first histograms, JIT) is not growth
  const steady = samples.filter((s) => s.plan_h >= 1);
  const outside = steady.length >= 3 ? slope(steady.map((s) => s.plan_h), steady.map((s) => s.rss_mb)) : null;
  const insideSteady = inside.filter((s) => s.plan_h >= 1);
  const insideSlope = insideSteady.length >= 3 ? slope(insideSteady.map((s) => s.plan_h), insideSteady.map((s) => s.rss_mb)) : null;
  const finalDb = dbMb(dbPath);
  const result = {
    date: new Date().toISOString(),
    via,
    scale,
    plan_hours: hours,
    real_rate: realRate,
    probe_timeout: args['probe-timeout'],
    fast_interval: args['fast-interval'],
    wall_s: wallS,
    exit_code: code,
    run_status: run?.status ?? null,
    attempts: requests ? requests.reduce((a, t) => a + t.attempts, 0) : null,
    failed: requests ? requests.reduce((a, t) => a + t.failed, 0) : null,
    rss_slope_mb_per_plan_hour: outside,
    rss_slope_inside_mb_per_plan_hour: insideSlope,
    rss_first_mb: samples[0]?.rss_mb ?? null,
    rss_max_mb: Math.max(...samples.map((s) => s.rss_mb)),
    rss_last_mb: samples.at(-1)?.rss_mb ?? null,
    db_mb: finalDb,
    db_mb_per_plan_hour: finalDb / hours,
    samples,
    inside,
    stderr_tail: code === 0 || code === 3 ? undefined : stderr.slice(-4000),
  };
  const outDir = join(root, 'bench', 'out');
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `soak${via === 'daemon' ? '-daemon' : ''}-${result.date.slice(0, 10)}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    `soak (${via}) ×${scale}, ${hours} plan-h in ${wallS.toFixed(0)} s, real ${realRate} req/s: exit ${code}, run ${result.run_status}; ` +
      `RSS ${result.rss_first_mb?.toFixed(1)} → ${result.rss_last_mb?.toFixed(1)} MB (max ${result.rss_max_mb.toFixed(1)}), slope ${outside ? `${outside.slope.toFixed(3)} ± ${outside.se.toFixed(3)}` : '-'} MB/plan-h (inside: ${insideSlope ? `${insideSlope.slope.toFixed(3)} ± ${insideSlope.se.toFixed(3)}` : '-'}); ` +
      `DB ${finalDb.toFixed(1)} MB = ${(finalDb / hours).toFixed(2)} MB/plan-h → ${out}\n`,
  );
  if (!args.keep) rmSync(work, { recursive: true, force: true });
  else process.stdout.write(`kept: ${work}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
