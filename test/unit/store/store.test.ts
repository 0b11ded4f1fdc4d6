import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../../src/store/migrations.js';
import { openStore, type RequestRow, type RunRow } from '../../../src/store/store.js';
import { judgeGenerator } from '../../../src/analysis/generator.js';
import { probeSlots } from '../../../src/analysis/run-summary.js';
import { mergeHistograms } from '../../../src/analysis/histogram.js';
import { seededRandom } from '../../../src/util/random.js';
import { WindowAggregator } from '../../../src/load/windows.js';
import { record } from '../../helpers/records.js';
import { tempDir } from '../../helpers/tmp.js';

const dir = tempDir();

export const runRow = (id: string): RunRow => ({
  id,
  plan_name: 'p',
  plan_json: '{}',
  plan_source: null,
  status: 'running',
  started_at: 1000,
  load_started_at: null,
  load_ended_at: null,
  ended_at: null,
  time_scale: 1,
  seed: 1,
  error: null,
  host: null,
  gauntlet_version: null,
  engine: null,
});

const req = (runId: string, i: number): RequestRow => ({
  run_id: runId,
  node: 'a',
  seq: i + 1,
  attempt: 1,
  final: true,
  mix: 'default',
  prompt_tokens: 10,
  max_tokens: 16,
  scheduled_at: i,
  sent_at: i + 1,
  response_at: i + 2,
  first_token_at: i + 50,
  end_at: i + 200,
  ttft_ms: 49,
  e2e_ms: 199,
  queue_delay_ms: 1,
  outcome: 'ok',
  status: 200,
  output_tokens: 16,
  tokens_source: 'usage',
  chunks: 16,
  itl_max_ms: 20,
  error: null,
});

describe('Store', () => {
  it('creates the schema in WAL mode and records its version; reopening migrates nothing twice', () => {
    const path = join(dir, 'a.db');
    const s = openStore(path);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    s.close();
    const again = openStore(path);
    const versions = again.db.prepare('SELECT version FROM schema_migrations').all();
    expect(versions).toHaveLength(MIGRATIONS.length);
    again.close();
  });

  it('refuses a database from a newer Gauntlet, naming the versions', () => {
    const path = join(dir, 'newer.db');
    openStore(path).close();
    const raw = new Database(path);
    raw.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(MIGRATIONS.length + 1, 0);
    raw.close();
    expect(() => openStore(path)).toThrow(`schema version ${MIGRATIONS.length + 1} is newer than this Gauntlet knows (${MIGRATIONS.length})`);
  });

  it('batches request rows and writes them all on flush; a second connection sees them', () => {
    const path = join(dir, 'b.db');
    const s = openStore(path);
    s.createRun(runRow('r1'));
    for (let i = 0; i < 1234; i++) s.addRequest(req('r1', i));
    s.flush();
    const other = new Database(path, { readonly: true });
    expect((other.prepare('SELECT COUNT(*) AS n FROM requests').get() as { n: number }).n).toBe(1234);
    other.close();
    s.close();
  });

  it('writes the fault ledger at once and finds unreverted faults across runs', () => {
    const s = openStore(join(dir, 'c.db'));
    const base = { run_id: 'r', kind: 'node-kill', node: 'a', params: '{}', undo: '{"containerId":"x"}', planned_at: 1, injected_at: null, reverted_at: null, detail: null, revert_action: null, error: null, owner: null };
    s.insertFault({ ...base, id: 'f1', state: 'injecting' });
    s.insertFault({ ...base, id: 'f2', state: 'active' });
    s.insertFault({ ...base, id: 'f3', state: 'reverted' });
    expect(s.unrevertedFaults().map((f) => f.id)).toEqual(['f1', 'f2']);
    s.updateFault('f1', { state: 'reverted', revert_action: 'x' });
    expect(s.unrevertedFaults().map((f) => f.id)).toEqual(['f2']);
    s.close();
  });

  it('keeps windows with their histograms, and says whether per-request rows exist', () => {
    const s = openStore(join(dir, 'w.db'));
    s.createRun(runRow('r2'));
    expect(s.hasRequestRows('r2')).toBe(false);
    const load = { node: 'a', windowStart: 0, part: 0, windowMs: 10_000, attempts: 3, ok: 2, failed: 1, cancelled: 0, retries: 0, finalOk: 2, finalFailed: 1, outcomes: { ok: 2, timeout: 1 }, outputTokens: 32, tokensFromUsage: 2, tokensFromChunks: 0, scheduleMisses: 0, planned: 3 };
    const lat = { node: 'a', windowStart: 0, part: 0, metric: 'ttft' as const, count: 2, minMs: 1, maxMs: 2, meanMs: 1.5, p50Ms: 1, p90Ms: 2, p99Ms: 2, hist: 'HISTFAAAA' };
    s.addWindow('r2', { window: { load, latency: [lat] }, rollups: [] });
    expect(s.loadWindows('r2')).toEqual([{ run_id: 'r2', node: 'a', window_start: 0, part: 0, window_ms: 10_000, attempts: 3, ok: 2, failed: 1, cancelled: 0, retries: 0, final_ok: 2, final_failed: 1, outcomes: '{"ok":2,"timeout":1}', output_tokens: 32, tokens_from_usage: 2, tokens_from_chunks: 0, schedule_misses: 0, planned: 3 }]);
    expect(s.latencyWindows('r2', 'ttft')).toEqual([{ run_id: 'r2', node: 'a', window_start: 0, part: 0, metric: 'ttft', count: 2, min_ms: 1, max_ms: 2, mean_ms: 1.5, p50_ms: 1, p90_ms: 2, p99_ms: 2, hist: 'HISTFAAAA' }]);
    expect(s.latencyWindows('r2', 'itl')).toEqual([]);
    expect(() => s.addWindow('r2', { window: { load, latency: [] }, rollups: [] })).toThrow(/UNIQUE/);
    s.addWindow('r2', { window: { load: { ...load, part: 1, attempts: 1 }, latency: [{ ...lat, part: 1 }] }, rollups: [] }); // a late part of the same window
    expect(s.loadWindows('r2').map((w) => [w.part, w.attempts])).toEqual([[0, 3], [1, 1]]);
    s.addRequest(req('r2', 1));
    expect(s.hasRequestRows('r2')).toBe(true);
    expect(s.requests('r2')[0]?.final).toBe(true);
    s.close();
  });

  it('counts attempts outside injected episodes in SQL: in flight at the crash or sent during it is inside', () => {
    const s = openStore(join(dir, 'o.db'));
    s.createRun(runRow('r3'));
    expect(s.countOutsideInjected('r3', 6000)).toBeNull();
    const r = (node: string, sent: number, end: number, outcome: RequestRow['outcome']): RequestRow => ({ ...req('r3', 0), node, sent_at: sent, end_at: end, outcome });
    for (const x of [r('a', 100, 200, 'ok'), r('a', 900, 1001, 'truncated'), r('a', 1500, 1501, 'conn_error'), r('a', 4000, 4100, 'ok'), r('b', 1500, 1600, 'http_error'), r('a', 5000, 5001, 'cancelled')]) s.addRequest(x);
    const ep = { id: 'e', run_id: 'r3', node: 'a', status: 'recovered' as const, cause: 'injected:f1', fault_id: 'f1', started_at: 1000, detected_at: 1001, running_again_at: null, ready_at: null, serving_again_at: 3000, first_evidence: '', evidence: '{}', requests_affected: 2 };
    s.upsertEpisode(ep);
    s.upsertEpisode({ ...ep, id: 'sp', node: 'b', cause: 'spontaneous' }); // spontaneous episodes do not exclude
    expect(s.countOutsideInjected('r3', 6000)).toEqual({ total: 3, failed: 1 });
    s.close();
  });

  it('upserts episodes as they change', () => {
    const s = openStore(join(dir, 'd.db'));
    const ep = {
      id: 'e1',
      run_id: 'r',
      node: 'a',
      status: 'open' as const,
      cause: 'spontaneous',
      fault_id: null,
      started_at: 10,
      detected_at: 11,
      running_again_at: null,
      ready_at: null,
      serving_again_at: null,
      first_evidence: 'die',
      evidence: '{}',
      requests_affected: 0,
    };
    s.upsertEpisode(ep);
    s.upsertEpisode({ ...ep, status: 'recovered', serving_again_at: 2000, requests_affected: 4 });
    expect(s.episodes('r')).toEqual([{ ...ep, status: 'recovered', serving_again_at: 2000, requests_affected: 4 }]);
    s.close();
  });

  it('writes an episode at once when it opens or changes state; a count-only change waits for the batch, and is never lost', () => {
    const path = join(dir, 'd-batch.db');
    const s = openStore(path);
    const ep = { id: 'e2', run_id: 'r', node: 'a', status: 'open' as const, cause: 'spontaneous', fault_id: null, started_at: 10, detected_at: 11, running_again_at: null, ready_at: null, serving_again_at: null, first_evidence: 'die', evidence: '{}', requests_affected: 0 };
    const onDisk = (): unknown[] => s.db.prepare('SELECT status, requests_affected FROM episodes WHERE id = ?').all('e2');
    s.upsertEpisode(ep);
    expect(onDisk()).toEqual([{ status: 'open', requests_affected: 0 }]);
    for (let i = 1; i <= 50; i++) s.upsertEpisode({ ...ep, requests_affected: i });
    expect(onDisk()).toEqual([{ status: 'open', requests_affected: 0 }]); // batched
    s.upsertEpisode({ ...ep, requests_affected: 51, running_again_at: 500 }); // a change of state: at once, with the count
    expect(onDisk()).toEqual([{ status: 'open', requests_affected: 51 }]);
    s.upsertEpisode({ ...ep, requests_affected: 52, running_again_at: 500 });
    s.close(); // closing writes what waits
    const again = openStore(path);
    expect(again.episodes('r').map((e) => e.requests_affected)).toEqual([52]);
    again.close();
  });
});

describe('Store totals for reports (hourly rollups, and the windows after the last one)', () => {
  const feed = (s: ReturnType<typeof openStore>, runId: string, untilMs: number, flush: boolean): number[] => {
    const agg = new WindowAggregator(10_000, 0, (c) => s.addWindow(runId, c), true, 60_000);
    const ttfts: number[] = [];
    for (let t = 0; t < untilMs; t += 250) {
      for (const node of ['a', 'b']) {
        const ttft = 20 + ((t / 250) % 97);
        ttfts.push(ttft);
        agg.record(record({ node, seq: t, sentAt: t, ttftMs: ttft, firstTokenAt: t + ttft, endAt: t + ttft + 5 }));
      }
      agg.tick(t);
    }
    if (flush) agg.flush();
    return ttfts;
  };

  it('without per-request rows, counts attempts outside injected episodes per window: rollups less each touched window once, a service touched by any node', () => {
    const s = openStore(join(dir, 'outside-windows.db'));
    s.createRun(runRow('w'));
    const agg = new WindowAggregator(10_000, 0, (c) => s.addWindow('w', c), true, 60_000);
    // 4 attempts per 10 s window per node for 5 minutes (rollups every minute); a's fail from 100 to 130 s
    for (let t = 0; t < 300_000; t += 2500) {
      for (const node of ['a', 'b', 'svc']) agg.record(record({ node, seq: t, sentAt: t, endAt: t + 10, outcome: node === 'a' && t >= 100_000 && t < 130_000 ? 'conn_error' : 'ok' }));
      agg.tick(t);
    }
    agg.flush();
    const ep = { id: 'e1', run_id: 'w', node: 'a', status: 'recovered' as const, cause: 'injected:f1', fault_id: 'f1', started_at: 100_000, detected_at: 100_001, running_again_at: null, ready_at: null, serving_again_at: 129_000, first_evidence: '', evidence: '{}', requests_affected: 12 };
    s.upsertEpisode(ep);
    s.upsertEpisode({ ...ep, id: 'e2', started_at: 110_000, serving_again_at: 125_000 }); // overlaps e1: its windows count once
    s.upsertEpisode({ ...ep, id: 'sp', node: 'b', cause: 'spontaneous', started_at: 200_000, serving_again_at: 210_000 }); // not left out
    // a's windows 100, 110, 120 s (and 90 s: the 5 s lead before the episode) are left out: 4 × 4 attempts
    expect(s.countOutsideInjectedWindows('w', 300_000, 5000)).toEqual({ total: 3 * 120 - 16, failed: 0, windowsLeftOut: 4 });
    // the service's windows at the same times are left out too
    expect(s.countOutsideInjectedWindows('w', 300_000, 5000, 'svc')).toEqual({ total: 3 * 120 - 32, failed: 0, windowsLeftOut: 8 });
    s.close();
  });

  it('reads one row per node and span, with the same totals as every window', () => {
    const s = openStore(join(dir, 'totals.db'));
    s.createRun(runRow('t'));
    const ttfts = feed(s, 't', 300_000, true);
    const totals = s.loadTotals('t');
    expect(totals.length).toBe(10); // 5 spans of 60 s × 2 nodes
    expect(totals.reduce((a, w) => a + w.ok, 0)).toBe(ttfts.length);
    const all = s.loadWindows('t');
    expect(all.length).toBe(60);
    const merged = mergeHistograms(s.latencyTotals('t', 'ttft').map((l) => l.hist));
    const direct = mergeHistograms(s.latencyWindows('t', 'ttft').map((l) => l.hist));
    expect(merged.count).toBe(ttfts.length);
    for (const p of [50, 90, 99]) expect(merged.percentile(p)).toBe(direct.percentile(p));
    s.close();
  });

  it('a run that ended without its last rollups (a crash) still counts every window written', () => {
    const s = openStore(join(dir, 'totals-crash.db'));
    s.createRun(runRow('c'));
    feed(s, 'c', 150_000, false); // never flushed: the span at 120 s has no rollup, and the last windows are still open
    const windows = s.loadWindows('c');
    const totals = s.loadTotals('c');
    expect(totals.reduce((a, w) => a + w.ok, 0)).toBe(windows.reduce((a, w) => a + w.ok, 0));
    expect(totals.filter((w) => w.window_ms === 60_000).length).toBe(4); // spans at 0 and 60 s for a and b
    expect(totals.filter((w) => w.window_ms === 10_000).every((w) => w.window_start >= 120_000)).toBe(true);
    expect(s.latencyTotals('c', 'ttft').reduce((a, l) => a + l.count, 0)).toBe(s.latencyWindows('c', 'ttft').reduce((a, l) => a + l.count, 0));
    s.close();
  });

  it("an hour whose rollup was never written (the disk refused it) is read from its windows, not lost", () => {
    const s = openStore(join(dir, 'totals-hole.db'));
    s.createRun(runRow('h'));
    feed(s, 'h', 300_000, true);
    s.db.prepare("DELETE FROM load_rollups WHERE run_id = 'h' AND node = 'a' AND span_start = 60000").run();
    s.db.prepare("DELETE FROM latency_rollups WHERE run_id = 'h' AND node = 'a' AND span_start = 60000").run();
    const windows = s.loadWindows('h');
    const totals = s.loadTotals('h');
    expect(totals.reduce((a, w) => a + w.ok, 0)).toBe(windows.reduce((a, w) => a + w.ok, 0));
    expect(totals.filter((w) => w.window_ms === 10_000).map((w) => [w.node, w.window_start])).toEqual([0, 1, 2, 3, 4, 5].map((k) => ['a', 60_000 + k * 10_000]));
    expect(s.latencyTotals('h', 'ttft').reduce((a, l) => a + l.count, 0)).toBe(s.latencyWindows('h', 'ttft').reduce((a, l) => a + l.count, 0));
    s.close();
  });
});

describe('Store telemetry rollups', () => {
  const fill = (s: ReturnType<typeof openStore>, seed: number): { at: number; metric: string; value: number }[] => {
    const rng = seededRandom(seed);
    const rows: { at: number; metric: string; value: number }[] = [];
    // 10 spans of 60 s; the loop lags and k6 is busy in a few bursts
    for (let at = 0; at < 600_000; at += 1000) {
      const burst = rng.next() < 0.03;
      rows.push({ at: at + rng.next() * 10, metric: 'loop_lag_p99_ms', value: burst ? 150 + rng.next() * 100 : 1 + rng.next() * 5 });
      rows.push({ at: at + rng.next() * 10, metric: 'k6_cpu_share', value: burst ? 0.7 + rng.next() * 0.3 : rng.next() * 0.5 });
      rows.push({ at: at + rng.next() * 10, metric: 'k6_cpu_cores', value: rng.next() * 2 });
    }
    for (const r of rows) s.addTelemetry({ run_id: 'g', node: '_gauntlet', ...r });
    return rows;
  };

  for (const [name, close] of [['closed normally', true], ['crashed mid-span (last rollups never written)', false]] as const) {
    it(`the generator verdict and the summary from rollups equal those from every sample (${name})`, () => {
      for (const seed of [1, 2, 3, 4, 5]) {
        const path = join(dir, `tel-${seed}-${close}.db`);
        const s = openStore(path);
        s.rollupMs = 60_000;
        s.createRun(runRow('g'));
        const rows = fill(s, seed);
        s.flush();
        if (close) s.close();
        const r = openStore(path);
        const o = { loadStartedAt: 0, loadEndedAt: 600_000, windowMs: 10_000, limitShare: 0.05 };
        const all = r.telemetry('g', '_gauntlet');
        const naive = judgeGenerator({ ...o, loadWindows: [], queueWindows: [], telemetry: all });
        const signals = r.generatorSignals('g', { node: '_gauntlet', ...o, queueLimitMs: 100, lagLimitMs: 100, shareLimit: 0.8 });
        expect(signals.telemetry.length).toBeLessThan(all.length / 10);
        expect(judgeGenerator({ ...o, ...signals })).toEqual(naive);
        const summary = r.telemetrySummary('g', '_gauntlet');
        for (const metric of ['loop_lag_p99_ms', 'k6_cpu_share', 'k6_cpu_cores']) {
          const mine = rows.filter((x) => x.metric === metric).sort((a, b) => a.at - b.at);
          const values = mine.map((x) => x.value);
          expect(summary.find((t) => t.metric === metric)).toEqual({ metric, samples: mine.length, first: mine[0]?.value, last: mine.at(-1)?.value, min: Math.min(...values), max: Math.max(...values) });
        }
        r.close();
        if (!close) s.close();
      }
    });
  }

  it('an hour whose telemetry rollup is missing is read from its samples', () => {
    const path = join(dir, 'tel-hole.db');
    const s = openStore(path);
    s.rollupMs = 60_000;
    s.createRun(runRow('g'));
    const rows = fill(s, 9);
    s.close();
    const r = openStore(path);
    r.db.prepare("DELETE FROM telemetry_rollups WHERE run_id = 'g' AND span_start = 120000").run();
    const summary = r.telemetrySummary('g', '_gauntlet');
    const lag = rows.filter((x) => x.metric === 'loop_lag_p99_ms');
    expect(summary.find((t) => t.metric === 'loop_lag_p99_ms')).toMatchObject({ samples: lag.length, max: Math.max(...lag.map((x) => x.value)) });
    const o = { loadStartedAt: 0, loadEndedAt: 600_000, windowMs: 10_000, limitShare: 0.05 };
    const naive = judgeGenerator({ ...o, loadWindows: [], queueWindows: [], telemetry: r.telemetry('g', '_gauntlet') });
    expect(judgeGenerator({ ...o, ...r.generatorSignals('g', { node: '_gauntlet', ...o, queueLimitMs: 100, lagLimitMs: 100, shareLimit: 0.8 }) })).toEqual(naive);
    r.close();
  });
});

describe('Store probe slots (availability in SQL)', () => {
  it('weighs the probes as the analysis does from rows, late and failed ones returned one by one (random probes, ties included)', () => {
    for (const seed of [11, 12, 13]) {
      const s = openStore(join(dir, `slots-${seed}.db`));
      s.createRun(runRow('p'));
      const rng = seededRandom(seed);
      let t = 0;
      for (let i = 0; i < 3000; i++) {
        t += rng.next() < 0.05 ? 0 : Math.floor(rng.next() * 1500); // some ties, some gaps longer than the interval
        const node = rng.next() < 0.5 ? 'a' : 'b';
        const ok = rng.next() > 0.1;
        const latency = rng.next() < 0.05 ? 3000 : rng.next() * 50;
        s.addProbe({ run_id: 'p', node, kind: rng.next() < 0.2 ? 'inference' : 'health', sent_at: t, response_at: ok ? t + latency : null, latency_ms: latency, ok, status: ok ? 200 : null, error: ok ? null : 'timeout' });
      }
      const fromRows = probeSlots(s.probes('p'), ['a', 'b', 'c'], 1000, t + 500);
      const fromSql = s.probeSlots('p', ['a', 'b', 'c'], 1000, t + 500);
      expect(fromSql.map((x) => ({ ...x, allMs: Math.round(x.allMs), inTimeMs: Math.round(x.inTimeMs) }))).toEqual(fromRows.map((x) => ({ ...x, allMs: Math.round(x.allMs), inTimeMs: Math.round(x.inTimeMs) })));
      expect(fromSql[0]?.late.length).toBeGreaterThan(10);
      s.close();
    }
  });
});

describe('Store when writes fail (a full disk: SQLite max_page_count stands in for it)', () => {
  const fullAt = (s: ReturnType<typeof openStore>): void => {
    s.db.pragma(`max_page_count = ${s.db.pragma('page_count', { simple: true }) as number}`);
  };
  const roomy = (s: ReturnType<typeof openStore>): void => void s.db.pragma('max_page_count = 1073741823');

  it('keeps batched rows it could not write and writes them once it can; says so, never throws from a sample', () => {
    const s = openStore(join(dir, 'full-batch.db'));
    const errors: string[] = [];
    s.onError = (err, what) => errors.push(`${what}: ${(err as { code?: string }).code}`);
    s.createRun(runRow('r'));
    s.flush();
    fullAt(s);
    for (let i = 0; i < 2000; i++) s.addRequest(req('r', i)); // flushes every 500 rows: fails, keeps them
    expect(s.flush()).toBe(false);
    s.addNodeState({ run_id: 'r', node: 'a', at: 1, detected_at: 1, state: 'down', reason: 'x'.repeat(5000) }); // a sample: counted as lost, not thrown
    expect(errors[0]).toBe('request rows: SQLITE_FULL');
    expect(errors).toContain('a node state: SQLITE_FULL');
    expect(s.pendingRows).toBe(2000);
    roomy(s);
    expect(s.flush()).toBe(true);
    expect(s.requests('r')).toHaveLength(2000);
    expect(s.lostRows).toBe(1); // the node state
    s.close();
  });

  it("the run's own row and the fault ledger throw GAUNTLET_STORE_WRITE after telling; the reserve next to the file is released on a full disk", async () => {
    const { existsSync, statSync } = await import('node:fs');
    const path = join(dir, 'full-critical.db');
    const s = openStore(path);
    expect(statSync(`${path}.reserve`).size).toBe(4 * 1024 * 1024);
    const told: string[] = [];
    s.onError = (_err, what) => told.push(what);
    fullAt(s);
    expect(() => s.createRun(runRow('big'.repeat(3000)))).toThrow('writing the run to the database failed: SQLITE_FULL: database or disk is full');
    try {
      s.createRun(runRow('x'.repeat(9000)));
    } catch (err) {
      expect((err as { code?: string }).code).toBe('GAUNTLET_STORE_WRITE');
    }
    expect(told[0]).toBe('the run');
    expect(existsSync(`${path}.reserve`)).toBe(false);
    roomy(s);
    s.close();
    // Reopened with room again, the reserve is back.
    openStore(path).close();
    expect(existsSync(`${path}.reserve`)).toBe(true);
  });

  it('windows and episodes that could not be written are kept and written at the next flush', () => {
    const s = openStore(join(dir, 'full-windows.db'));
    s.createRun(runRow('w'));
    fullAt(s);
    const win = { node: 'a', windowStart: 0, part: 0, windowMs: 10_000, attempts: 1, ok: 1, failed: 0, cancelled: 0, retries: 0, finalOk: 1, finalFailed: 0, outcomes: { ok: 1 }, outputTokens: 3, tokensFromUsage: 3, tokensFromChunks: 0, scheduleMisses: 0, planned: 1 };
    const pad = 'x'.repeat(5000); // room for a row in a page already there would hide the failure
    for (let i = 0; i < 5; i++) s.addWindow('w', { window: { load: { ...win, windowStart: i * 10_000, outcomes: { ok: 1, [pad]: 1 } }, latency: [] }, rollups: [] });
    expect(s.pendingRows).toBeGreaterThan(0);
    roomy(s);
    expect(s.flush()).toBe(true);
    expect(s.loadWindows('w')).toHaveLength(5);
    s.close();
  });
});
