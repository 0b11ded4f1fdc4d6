// One benchmark client run, in its own process (pinned to one core by bench/run.ts); prints a
// JSON result line. Modes:
//   builtin  — Gauntlet's builtin engine, open loop at --rate for --seconds (stream or json)
//   autocannon — autocannon, closed loop with --connections, for --seconds (json)
import autocannon from 'autocannon';
import { request } from 'undici';
import { BuiltinEngine } from '../src/load/builtin.js';
import type { RequestRecord } from '../src/load/types.js';
import { newHistogram, recordMs } from '../src/analysis/histogram.js';
import { RealClock } from '../src/util/clock.js';
import { benchWorkload } from './workload.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i] as string, process.argv[i + 1] as string);
const mode = args.get('--mode') ?? 'builtin';
const url = args.get('--url') ?? 'http://127.0.0.1:18900';
const seconds = Number(args.get('--seconds') ?? 8);
const stream = args.get('--stream') !== 'false';
/** Seconds at the start left out of the statistics (connection setup, JIT): the steady state is measured. */
const warmupS = Number(args.get('--warmup') ?? 2);

let rssPeak = 0;
const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 100);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const finish = (result: Record<string, unknown>): void => {
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  process.stdout.write(`${JSON.stringify({ ...result, cpu_pct: ((cpu.user + cpu.system) / 1000 / wall) * 100, rss_peak_mb: rssPeak / 2 ** 20 })}\n`);
  process.exit(0);
};

if (mode === 'autocannon') {
  const connections = Number(args.get('--connections') ?? 50);
  const r = await autocannon({
    url: `${url}/v1/chat/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 64, stream: false }),
    connections,
    duration: seconds,
  });
  finish({ mode, connections, req_per_s: r.requests.average, latency_p50_ms: r.latency.p50, latency_p99_ms: r.latency.p99, errors: r.errors + r.non2xx });
} else {
  const rate = Number(args.get('--rate') ?? 100);
  // Aggregated as records arrive (HDR histograms), so memory reflects the engine, not the benchmark.
  const qd = newHistogram();
  const ttft = newHistogram();
  const e2e = newHistogram();
  const gapErr = newHistogram();
  const firstDelay = newHistogram();
  let sent = 0;
  let okCount = 0;
  let negativeDelays = 0;
  const clock = new RealClock();
  // The server stamps chunks with its own clock; each process's epoch anchor differs a little.
  // Estimate the offset NTP-style from the round trip with the smallest delay.
  let offset = 0;
  let bestRtt = Infinity;
  for (let i = 0; i < 50; i++) {
    const t0 = clock.now();
    const r = await request(`${url}/clock`);
    const server = Number(await r.body.text());
    const t1 = clock.now();
    if (t1 - t0 < bestRtt) {
      bestRtt = t1 - t0;
      offset = server - (t0 + t1) / 2;
    }
  }
  const engine = new BuiltinEngine(clock, undefined, stream ? 't' : null);
  const measureFrom = clock.now() + warmupS * 1000;
  await engine.run(
    benchWorkload({ endpoint: url, rate, seconds, stream, model: 'm', promptTokens: 8, maxTokens: 64 }),
    new AbortController().signal,
    {
      record: (r: RequestRecord) => {
        if (r.scheduledAt < measureFrom) return;
        sent++;
        recordMs(qd, Math.max(0.001, r.queueDelayMs ?? 0));
        if (r.outcome !== 'ok') return;
        okCount++;
        recordMs(e2e, r.e2eMs);
        if (r.ttftMs !== null) recordMs(ttft, r.ttftMs);
        // Measurement error: each inter-chunk gap the client saw minus the gap the server stamped;
        // and the first chunk's delivery delay (client arrival − server send stamp).
        const st = r.serverStamps ?? [];
        if (st.length < 2 || r.firstTokenAt === null) return;
        const d = r.firstTokenAt - ((st[0] as number) - offset);
        if (d < 0) negativeDelays++;
        recordMs(firstDelay, Math.max(0.001, d));
        for (let i = 0; i < r.gaps.length && i + 1 < st.length; i++) recordMs(gapErr, Math.max(0.001, Math.abs((r.gaps[i] as number) - ((st[i + 1] as number) - (st[i] as number)))));
      },
    },
  );
  const p = (h: ReturnType<typeof newHistogram>, q: number): number | null => (h.totalCount ? h.getValueAtPercentile(q) / 1000 : null);
  finish({
    mode,
    stream,
    rate,
    warmup_s: warmupS,
    sent,
    achieved_per_s: sent / (seconds - warmupS),
    ok: okCount,
    failed: sent - okCount,
    queue_delay_p50_ms: p(qd, 50),
    queue_delay_p99_ms: p(qd, 99),
    ttft_p50_ms: p(ttft, 50),
    e2e_p50_ms: p(e2e, 50),
    gap_error_p50_ms: p(gapErr, 50),
    gap_error_p99_ms: p(gapErr, 99),
    gap_samples: gapErr.totalCount,
    first_chunk_delay_p50_ms: p(firstDelay, 50),
    first_chunk_delay_p99_ms: p(firstDelay, 99),
    negative_delays: negativeDelays,
    clock_offset_ms: offset,
    clock_offset_uncertainty_ms: bestRtt / 2,
  });
}
