// Detection and recovery accuracy per fault kind (npm run bench:detection; needs Docker).
// Not a speed benchmark: it measures how far Gauntlet's episode times are from ground truth
// that Gauntlet itself does not use, and writes the table the detection issue closes with.
//
// For each kind, one simulator container (2 GPUs, a known 1 s model load, restart on-failure)
// gets the fault REPEAT times under streamed load, each on its own 15 s slot. Per episode:
//   detect  = detected_at − the moment the node failed, where that moment is: the injection
//             (node-kill crash/restart/stop, hang: SIGKILL, stop, freeze are immediate), the
//             kernel's kill as the engine stamped it (oom: the oom event's timeNano), or the
//             node's own TRUTH "fatal" line (gpu-worker-kill: the node exits by itself);
//   start   = started_at − that moment (where the episode says the failure began);
//   recover = serving_again_at − the node's TRUTH "served" line after it listened again, or
//             (hang) after it logged the stall on waking (its first response start: the
//             simulator writes it from inside the server).
// Writes bench/out/detection-<time>.json and prints a Markdown table for bench/RESULTS.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { dockerClient, tailLogs } from '../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../src/docker/sim-image.js';
import { silentLogger } from '../src/log.js';
import { parsePlanText } from '../src/plan/load.js';
import { runPlan } from '../src/run/runner.js';
import { openStore } from '../src/store/store.js';
import { RealClock } from '../src/util/clock.js';
import { packageRoot } from '../src/util/paths.js';
import { freePort } from '../src/util/ports.js';

const REPEAT = Number(process.env.BENCH_REPEAT ?? 5);
const SLOT_S = 15;
const NAME = 'gauntlet-bench-detect';

interface Kind {
  label: string;
  fault: string;
  params: string;
  /** How the failure moment is known. */
  truth: 'injected' | 'oom-event' | 'fatal-line';
}

const KINDS: Kind[] = [
  { label: 'node-kill crash (SIGKILL)', fault: 'node-kill', params: '{ mode: crash }', truth: 'injected' },
  { label: 'node-kill restart', fault: 'node-kill', params: '{ mode: restart, stop_timeout: 2s }', truth: 'injected' },
  { label: 'node-kill stop (down 3 s)', fault: 'node-kill', params: '{ mode: stop, down_for: 3s, stop_timeout: 2s }', truth: 'injected' },
  { label: 'oom kill', fault: 'oom', params: '{ mode: kill }', truth: 'oom-event' },
  { label: 'hang 4 s (freeze)', fault: 'hang', params: '{ duration: 4s }', truth: 'injected' },
  { label: 'gpu-worker-kill (node exits)', fault: 'gpu-worker-kill', params: '{}', truth: 'fatal-line' },
];

interface Truth {
  at: number;
  event: string;
}

/** The p-quantile, linearly interpolated (the median of an even count is the mean of the middle two). */
const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const i = p * (s.length - 1);
  const lo = Math.floor(i);
  return (s[lo] as number) + ((s[Math.min(lo + 1, s.length - 1)] as number) - (s[lo] as number)) * (i - lo);
};
const maxAbs = (xs: number[]): number => xs.reduce((m, x) => (Math.abs(x) > Math.abs(m) ? x : m), 0);

async function measure(kind: Kind): Promise<Record<string, unknown>> {
  const docker = dockerClient();
  const image = await ensureSimImage(docker, silentLogger);
  await removeContainers(docker, [NAME]);
  await startSimContainer(docker, image, { name: NAME, targetLabel: 'bench-detect', gpus: 2, loadMs: 1000, ttftMs: 30, itlMs: 10, memoryMb: 384, hostPort: await freePort() });
  const dir = join(packageRoot(), 'bench', 'out');
  mkdirSync(dir, { recursive: true });
  const store = openStore(join(dir, `detection-${process.pid}.db`));
  const faults = Array.from({ length: REPEAT }, (_, i) => `  - { kind: ${kind.fault}, target: node, at: ${5 + i * SLOT_S}s, params: ${kind.params} }`).join('\n');
  const plan = parsePlanText(`
name: bench-detection
duration: ${5 + REPEAT * SLOT_S}s
targets:
  - { name: node, container: ${NAME} }
load: { rate: 6, arrival: constant, api: chat, stream: true, prompt_tokens: 16, max_tokens: 8, timeout: 10s, model: sim-llama }
faults:
${faults}
probes: { interval: 1s, timeout: 500ms, failures: 2, fast_interval: 100ms }
detection: { fault_grace: 8s }
recovery_limit: 12s
ready_timeout: 60s
`);
  const started = Date.now();
  const result = await runPlan(plan, null, { store, clock: new RealClock(), log: silentLogger, docker, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });
  const truth = (await tailLogs(docker, NAME, 20_000)).filter((l) => l.startsWith('TRUTH ')).map((l) => JSON.parse(l.slice(6)) as Truth);
  // The engine's own stamps of the end: 'oom' when the kernel's OOM killer acts, 'die' when the
  // process is gone (containerd tells dockerd; ~45 ms after a SIGKILL here).
  const dies: number[] = [];
  const raw = (await docker.getEvents({ since: Math.floor(started / 1000) - 1, until: Math.ceil(Date.now() / 1000) + 1, filters: { container: [NAME], event: ['die', 'oom'] } })) as unknown as NodeJS.ReadableStream | Buffer;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : await new Promise<string>((res) => {
    let s = '';
    raw.on('data', (d: Buffer) => (s += d.toString('utf8')));
    raw.on('end', () => res(s));
  });
  for (const line of text.split('\n')) if (line.trim()) dies.push(Number((JSON.parse(line) as { timeNano: number }).timeNano) / 1e6);
  dies.sort((a, b) => a - b);
  const ledger = store.faults(result.runId);
  const episodes = store.episodes(result.runId);
  const rows: { detect: number; detectVsEngine: number | null; start: number; recover: number | null }[] = [];
  for (const f of ledger) {
    const e = episodes.find((x) => x.fault_id === f.id);
    if (!e || f.injected_at === null) continue;
    let failedAt = f.injected_at;
    if (kind.truth === 'oom-event') failedAt = dies.find((d) => d >= (f.injected_at as number)) ?? Number.NaN; // oom: the kernel's kill
    if (kind.truth === 'fatal-line') failedAt = truth.find((t) => t.event === 'fatal' && t.at >= (f.injected_at as number))?.at ?? Number.NaN;
    // A crash: the new process listens, then serves. A freeze keeps the process: it logs the
    // stall once it runs again (a timer that fired seconds late), then serves.
    const again = truth.find((t) => t.event === (kind.fault === 'hang' ? 'stalled' : 'listening') && t.at > failedAt);
    const from = again?.at;
    const served = from !== undefined ? truth.find((t) => t.event === 'served' && t.at >= from) : undefined;
    const engineAt = dies.find((d) => d >= (f.injected_at as number) - 5);
    rows.push({
      detect: e.detected_at - failedAt,
      // From the engine's first stamp of the end (kills only): what Docker's event path costs is left out.
      detectVsEngine: engineAt !== undefined && engineAt <= e.detected_at + 1000 ? e.detected_at - engineAt : null,
      start: e.started_at - failedAt,
      recover: e.serving_again_at !== null && served ? e.serving_again_at - served.at : null,
    });
  }
  store.close();
  await removeContainers(docker, [NAME]);
  const detect = rows.map((r) => r.detect).filter(Number.isFinite);
  const vsEngine = rows.map((r) => r.detectVsEngine).filter((x): x is number => x !== null && Number.isFinite(x));
  const start = rows.map((r) => r.start).filter(Number.isFinite);
  const recover = rows.map((r) => r.recover).filter((x): x is number => x !== null && Number.isFinite(x));
  const out = {
    kind: kind.label,
    truth: kind.truth,
    faults: ledger.length,
    episodes: episodes.length,
    measured: rows.length,
    detect_p50_ms: q(detect, 0.5),
    detect_max_ms: Math.max(...detect),
    detect_vs_engine_p50_ms: q(vsEngine, 0.5),
    detect_vs_engine_max_ms: vsEngine.length > 0 ? Math.max(...vsEngine) : Number.NaN,
    start_p50_ms: q(start, 0.5),
    start_max_abs_ms: maxAbs(start),
    recover_p50_ms: q(recover, 0.5),
    recover_max_abs_ms: maxAbs(recover),
    recover_n: recover.length,
    rows,
  };
  process.stderr.write(`${JSON.stringify(out)}\n`);
  return out;
}

const only = process.env.BENCH_KINDS?.split(',');
const results: Record<string, unknown>[] = [];
for (const k of KINDS) if (!only || only.some((o) => k.label.startsWith(o))) results.push(await measure(k));
const when = new Date().toISOString().replace(/[:.]/g, '-');
const file = join(packageRoot(), 'bench', 'out', `detection-${when}.json`);
writeFileSync(file, JSON.stringify({ when, cpus: cpus().length, cpu: cpus()[0]?.model, repeat: REPEAT, results }, null, 2));
const f = (x: unknown): string => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(0) : '–');
console.log(`| fault | failure moment from | episodes / faults | detected after it, p50 / max (ms) | after Docker's stamp, p50 / max (ms) | start error p50 / max (ms) | recovery error p50 / max (ms) |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const r of results) {
  console.log(`| ${String(r.kind)} | ${String(r.truth)} | ${String(r.episodes)} / ${String(r.faults)} | ${f(r.detect_p50_ms)} / ${f(r.detect_max_ms)} | ${f(r.detect_vs_engine_p50_ms)} / ${f(r.detect_vs_engine_max_ms)} | ${f(r.start_p50_ms)} / ${f(r.start_max_abs_ms)} | ${f(r.recover_p50_ms)} / ${f(r.recover_max_abs_ms)} (n=${String(r.recover_n)}) |`);
}
console.log(`\n(${file})`);
