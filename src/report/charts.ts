// The report's charts: the series they show, read from the store and thinned to at most a few
// hundred points per node however long the run (each point a bucket of whole windows), and the
// vega-lite specs that draw them. Rendered to SVG at report time (no script in the page).
// Time runs along x as minutes (runs under 2 h) or hours from the load's start: a reader
// compares with the fault schedule, written the same way, and no time zone is involved.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { mtbfLowerBound } from '../analysis/mtbf.js';
import { CONTAINER_METRICS } from '../detect/telemetry.js';
import type { Store } from '../store/store.js';
import type { ReportJson } from './build.js';

const HOUR = 3_600_000;
/** Points per node a time chart keeps at most. */
const MAX_POINTS = 300;

export interface ChartData {
  unit: 'min' | 'h';
  spanUnits: number;
  load: { node: string; t: number; rate: number; error_rate: number | null; ttft_p50: number | null; ttft_p99: number | null }[];
  faults: { id: string; kind: string; node: string; from: number; to: number }[];
  states: { node: string; state: string; from: number; to: number }[];
  memory: { node: string; t: number; mib: number }[];
  memoryFit: { node: string; t: number; mib: number }[];
  recovery: { kind: string; node: string; seconds: number }[];
}

/**
 * The run's series for the charts. Each point is a bucket of whole windows (bucket = the plan's
 * window, or a multiple of it so that a node has at most MAX_POINTS); its latency is the
 * count-weighted mean of its windows' own p50 and p99 — a picture of the course, not the run's
 * percentiles, which come from merged histograms in the tables.
 */
export function chartData(store: Store, r: ReportJson, windowMs: number): ChartData {
  const runId = r.run.id;
  const start = Date.parse(r.run.load_started_at ?? r.run.started_at);
  const end = Date.parse(r.run.load_ended_at ?? r.run.ended_at ?? r.run.started_at);
  const span = Math.max(end - start, 1);
  const unit: ChartData['unit'] = span < 2 * HOUR ? 'min' : 'h';
  const per = unit === 'min' ? 60_000 : HOUR;
  const t = (at: number): number => Math.round(((at - start) / per) * 10_000) / 10_000;
  const bucket = Math.max(windowMs, Math.ceil(span / MAX_POINTS / windowMs) * windowMs);

  const load = store.db
    .prepare(
      `SELECT node, CAST((window_start - @start) / @bucket AS INTEGER) AS b, SUM(attempts) AS attempts, SUM(failed) AS failed, SUM(attempts + cancelled) AS sent
         FROM load_windows WHERE run_id = @run AND node <> '_gauntlet' GROUP BY node, b ORDER BY node, b`,
    )
    .all({ run: runId, start, bucket }) as { node: string; b: number; attempts: number; failed: number; sent: number }[];
  const lat = store.db
    .prepare(
      `SELECT node, CAST((window_start - @start) / @bucket AS INTEGER) AS b, SUM(p50_ms * count) / SUM(count) AS p50, SUM(p99_ms * count) / SUM(count) AS p99
         FROM latency_windows WHERE run_id = @run AND metric = 'ttft' AND count > 0 GROUP BY node, b`,
    )
    .all({ run: runId, start, bucket }) as { node: string; b: number; p50: number; p99: number }[];
  const latBy = new Map(lat.map((x) => [`${x.node}|${x.b}`, x]));
  const r1 = (x: number | null | undefined): number | null => (x === null || x === undefined ? null : Math.round(x * 10) / 10);
  const loadPoints = load.map((x) => {
    const bStart = start + x.b * bucket;
    const width = Math.min(bucket, end - bStart);
    const l = latBy.get(`${x.node}|${x.b}`);
    return {
      node: x.node,
      t: t(bStart + Math.max(width, 0) / 2),
      rate: width > 0 ? Math.round((x.attempts / (width / 1000)) * 100) / 100 : 0,
      error_rate: x.attempts > 0 ? Math.round((x.failed / x.attempts) * 10_000) / 10_000 : null,
      ttft_p50: r1(l?.p50),
      ttft_p99: r1(l?.p99),
    };
  });

  const faults = r.faults.flatMap((f) => {
    if (!f.injected_at) return [];
    const from = Date.parse(f.injected_at);
    // an instant fault (a crash) is shaded until the node serves again, at least a second
    const eps = r.episodes.filter((e) => f.episodes.includes(e.id));
    const served = eps.map((e) => (e.recovery_ms === null ? end : Date.parse(e.started_at) + e.recovery_ms));
    const to = Math.max(f.reverted_at ? Date.parse(f.reverted_at) : end, ...served, from + 1000);
    return [{ id: f.id, kind: f.kind, node: f.node, from: t(from), to: t(Math.min(to, end)) }];
  });

  const states: ChartData['states'] = [];
  const byNode = new Map<string, { at: number; state: string }[]>();
  for (const s of store.nodeStates(runId)) (byNode.get(s.node) ?? byNode.set(s.node, []).get(s.node))?.push({ at: s.at, state: s.state });
  for (const n of r.nodes) {
    const seq = byNode.get(n.name) ?? [];
    let from = start;
    let state = 'up';
    for (const s of seq) {
      const at = Math.min(Math.max(s.at, start), end);
      if (at > from) states.push({ node: n.name, state, from: t(from), to: t(at) });
      from = Math.max(from, at);
      state = s.state;
    }
    if (end > from) states.push({ node: n.name, state, from: t(from), to: t(end) });
  }

  const mem = store.db
    .prepare(
      `SELECT node, CAST((at - @start) / @bucket AS INTEGER) AS b, AVG(at) AS at, AVG(value) AS v FROM telemetry
         WHERE run_id = @run AND metric = @metric AND at >= @start AND at <= @end GROUP BY node, b ORDER BY node, b`,
    )
    .all({ run: runId, start, end, bucket, metric: CONTAINER_METRICS.memory }) as { node: string; b: number; at: number; v: number }[];
  const memory = mem.map((x) => ({ node: x.node, t: t(x.at), mib: Math.round((x.v / 1_048_576) * 100) / 100 }));
  // the fitted line of the trend the memory gate judged, drawn over the points
  const memoryFit: ChartData['memoryFit'] = [];
  for (const m of r.memory.filter((x) => x.kind === 'container' && x.slope_bytes_per_hour !== null)) {
    const pts = memory.filter((p) => p.node === m.node);
    if (pts.length < 2) continue;
    const meanT = pts.reduce((a, p) => a + p.t, 0) / pts.length;
    const meanY = pts.reduce((a, p) => a + p.mib, 0) / pts.length;
    const slopePerUnit = ((m.slope_bytes_per_hour as number) / 1_048_576) * (per / HOUR);
    for (const p of [pts[0], pts.at(-1)] as { t: number }[]) memoryFit.push({ node: m.node, t: p.t, mib: Math.round((meanY + slopePerUnit * (p.t - meanT)) * 100) / 100 });
  }

  const kindOf = new Map(r.faults.map((f) => [f.id, f.kind]));
  const recovery = r.episodes.flatMap((e) => (e.recovery_ms === null || e.cause === 'orchestrator' ? [] : [{ kind: e.fault_id ? (kindOf.get(e.fault_id) ?? 'injected') : e.cause, node: e.node, seconds: Math.round(e.recovery_ms) / 1000 }]));

  return { unit, spanUnits: t(end), load: loadPoints, faults, states, memory, memoryFit, recovery };
}

const WIDTH = 760;
const axisT = (d: ChartData) => ({ field: 't', type: 'quantitative' as const, title: `${d.unit === 'min' ? 'minutes' : 'hours'} from the load's start`, scale: { domain: [0, Math.max(d.spanUnits, 1e-3)] } });
const STATE_COLORS = { domain: ['up', 'busy', 'degraded', 'recovering', 'down'], range: ['#2e7d32', '#81c784', '#f9a825', '#1e88e5', '#c62828'] };

/** Fault windows shaded behind a time chart, one band per fault. */
function faultLayer(d: ChartData): object {
  return {
    data: { values: d.faults.length ? d.faults : [{ from: 0, to: 0, kind: 'none', node: '' }] },
    mark: { type: 'rect', opacity: d.faults.length ? 0.13 : 0, color: '#c62828' },
    encoding: { x: { field: 'from', type: 'quantitative' }, x2: { field: 'to' } },
  };
}

export interface ChartSpec {
  id: string;
  title: string;
  /** What the chart shows and how it was measured, under it. */
  caption: string;
  spec: TopLevelSpec;
}

export function chartSpecs(d: ChartData, r: ReportJson): ChartSpec[] {
  const out: ChartSpec[] = [];
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: WIDTH, config: { font: 'Helvetica, Arial, sans-serif', view: { stroke: '#ddd' } } } as const;
  const color = { field: 'node', type: 'nominal' as const, title: 'node' };
  const tAxis = axisT(d);
  if (d.load.length) {
    out.push({
      id: 'rate',
      title: 'Request rate',
      caption: 'Attempts per second sent to each node (retries included), per bucket of windows. Shaded: fault windows, from injection to revert (an instant fault until the node served again).',
      spec: { ...base, height: 160, layer: [faultLayer(d), { data: { values: d.load }, mark: { type: 'line', interpolate: 'step-after' }, encoding: { x: tAxis, y: { field: 'rate', type: 'quantitative', title: 'requests/s' }, color } }] } as TopLevelSpec,
    });
    out.push({
      id: 'ttft',
      title: 'Time to first token',
      caption: 'Each point: the count-weighted mean of the windows’ own ttft p50 (solid) and p99 (dashed) in its bucket, successful streamed requests, from the actual send. The run’s percentiles in the tables come from merged histograms.',
      spec: {
        ...base,
        height: 180,
        layer: [
          faultLayer(d),
          { data: { values: d.load.filter((x) => x.ttft_p50 !== null) }, mark: { type: 'line' }, encoding: { x: tAxis, y: { field: 'ttft_p50', type: 'quantitative', title: 'ttft (ms, log scale)', scale: { type: 'log' } }, color } },
          { data: { values: d.load.filter((x) => x.ttft_p99 !== null) }, mark: { type: 'line', strokeDash: [4, 3], opacity: 0.7 }, encoding: { x: tAxis, y: { field: 'ttft_p99', type: 'quantitative' }, color } },
        ],
      } as TopLevelSpec,
    });
    out.push({
      id: 'errors',
      title: 'Error rate',
      caption: 'Share of attempts that did not end ok (HTTP errors, refused connections, timeouts, cut streams) per bucket and node. Shaded: fault windows.',
      spec: { ...base, height: 140, layer: [faultLayer(d), { data: { values: d.load.filter((x) => x.error_rate !== null) }, mark: { type: 'line', interpolate: 'step-after' }, encoding: { x: tAxis, y: { field: 'error_rate', type: 'quantitative', title: 'error rate', axis: { format: '.0%' } }, color } }] } as TopLevelSpec,
    });
  }
  if (d.states.length) {
    out.push({
      id: 'states',
      title: 'Node states',
      caption: 'Each node’s state as the detector decided it (up, busy: health probes overwhelmed but serving, degraded, down, recovering), with the fault windows as thin bars under each node.',
      spec: {
        ...base,
        height: { step: 26 },
        layer: [
          { data: { values: d.states }, mark: { type: 'bar', height: 16 }, encoding: { y: { field: 'node', type: 'nominal', title: null }, x: { ...tAxis, field: 'from' }, x2: { field: 'to' }, color: { field: 'state', type: 'nominal', scale: STATE_COLORS, title: 'state' } } },
          { data: { values: d.faults }, mark: { type: 'bar', height: 4, yOffset: 11, color: '#000' }, encoding: { y: { field: 'node', type: 'nominal' }, x: { field: 'from', type: 'quantitative' }, x2: { field: 'to' } } },
        ],
      } as unknown as TopLevelSpec,
    });
  }
  if (d.recovery.length) {
    out.push({
      id: 'recovery',
      title: 'Recovery time by fault kind',
      caption: 'Each recovered episode (failure → serving again), by what caused it; the bar is the median of its kind.',
      spec: {
        ...base,
        height: { step: 28 },
        layer: [
          { data: { values: d.recovery }, mark: { type: 'point', filled: true, size: 60, opacity: 0.8 }, encoding: { y: { field: 'kind', type: 'nominal', title: null }, x: { field: 'seconds', type: 'quantitative', title: 'recovery (s)' }, color: { field: 'node', type: 'nominal', title: 'node' } } },
          { data: { values: d.recovery }, mark: { type: 'tick', color: '#000', thickness: 2, size: 20 }, encoding: { y: { field: 'kind', type: 'nominal' }, x: { aggregate: 'median', field: 'seconds', type: 'quantitative' } } },
        ],
      } as unknown as TopLevelSpec,
    });
  }
  if (d.memory.length) {
    out.push({
      id: 'memory',
      title: 'Container memory',
      caption: 'Each node’s container memory (Docker’s stats: usage less reclaimable page cache), averaged per bucket; the straight lines are the least-squares trend the memory gate judges.',
      spec: {
        ...base,
        height: 160,
        layer: [
          faultLayer(d),
          { data: { values: d.memory }, mark: { type: 'line' }, encoding: { x: tAxis, y: { field: 'mib', type: 'quantitative', title: 'MiB', scale: { zero: false } }, color } },
          { data: { values: d.memoryFit }, mark: { type: 'line', strokeDash: [6, 4], color: '#000' }, encoding: { x: tAxis, y: { field: 'mib', type: 'quantitative' }, detail: { field: 'node' } } },
        ],
      } as TopLevelSpec,
    });
  }
  // MTBF lower bound against confidence: what this run's evidence shows, how sure
  const T = r.exposure_node_hours;
  const failures = r.failures.counted_for_mtbf;
  if (T > 0) {
    const curve = [];
    for (let c = 0.5; c <= 0.991; c += 0.01) curve.push({ confidence: Math.round(c * 100) / 100, hours: mtbfLowerBound(T, failures, c) });
    out.push({
      id: 'mtbf',
      title: 'MTBF lower bound against confidence',
      caption: `What ${T.toPrecision(3)} node-hours with ${failures} failure(s) show: MTBF ≥ 2T / χ²(C; 2r+2) at confidence C (time-terminated test, constant failure rate). The dashed line is the target, ${r.mtbf.target_hours} h.`,
      spec: {
        ...base,
        height: 180,
        layer: [
          { data: { values: curve }, mark: { type: 'line', color: '#1e88e5' }, encoding: { x: { field: 'confidence', type: 'quantitative', axis: { format: '.0%' }, scale: { domain: [0.5, 0.99] } }, y: { field: 'hours', type: 'quantitative', title: 'MTBF ≥ (hours)', scale: { type: 'log' } } } },
          { data: { values: [{ y: r.mtbf.target_hours }] }, mark: { type: 'rule', strokeDash: [6, 4], color: '#c62828' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
        ],
      } as TopLevelSpec,
    });
  }
  const sq = r.reliability.sequential;
  {
    const maxT = Math.max(sq.truncation.node_hours, T) * 1.05;
    const line = (intercept: number, name: string) => [0, maxT].map((x) => ({ x, y: intercept + sq.lines.slope_per_node_hour * x, line: name }));
    const lines = [...line(sq.lines.reject_intercept, 'reject'), ...line(sq.lines.accept_intercept, 'accept')].map((p) => ({ ...p, y: Math.max(p.y, -1) }));
    const path: { x: number; y: number }[] = [{ x: 0, y: 0 }];
    sq.failure_node_hours.forEach((h, i) => path.push({ x: h, y: i }, { x: h, y: i + 1 }));
    path.push({ x: T, y: sq.failure_node_hours.length });
    const trunc = [{ x: sq.truncation.node_hours, what: 'accept by truncation' }];
    out.push({
      id: 'sprt',
      title: 'Sequential test (probability-ratio, MIL-HDBK-781)',
      caption: `The run's failures against pooled node-hours (black) between Wald's lines: reject (red) when a failure takes it above, accept (green) when the hours take it below. θ0 = ${sq.theta0_hours} h, θ1 = ${sq.theta1_hours} h, α = ${sq.alpha}, β = ${sq.beta}; truncated at ${sq.truncation.failures} failures or ${Math.round(sq.truncation.node_hours)} node-hours (dotted). Decision now: ${sq.decision}.`,
      spec: {
        ...base,
        height: 200,
        layer: [
          { data: { values: lines }, mark: { type: 'line' }, encoding: { x: { field: 'x', type: 'quantitative', title: 'pooled node-hours', scale: { domain: [0, maxT] } }, y: { field: 'y', type: 'quantitative', title: 'failures', scale: { domain: [-1, Math.max(sq.truncation.failures, sq.failures + 1)] } }, color: { field: 'line', type: 'nominal', scale: { domain: ['reject', 'accept'], range: ['#c62828', '#2e7d32'] }, title: 'line' } } },
          { data: { values: path }, mark: { type: 'line', color: '#000', strokeWidth: 2 }, encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } } },
          { data: { values: trunc }, mark: { type: 'rule', strokeDash: [2, 3], color: '#555' }, encoding: { x: { field: 'x', type: 'quantitative' } } },
        ],
      } as TopLevelSpec,
    });
  }
  return out;
}

/** A vega-lite spec drawn as an SVG string (no canvas, no network: data is inline). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // vega-lite's and vega's own warnings would go to the console: a chart either draws or says why
  const quiet = vega.logger(vega.None);
  const vg = compile(spec, { logger: quiet }).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none', logLevel: vega.None });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
