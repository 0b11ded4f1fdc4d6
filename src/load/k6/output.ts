// Reads k6's `--out json` stream line by line as k6 writes it (never the whole file).
// What the lines mean was checked on real k6 v0.49 output (test/fixtures/real/k6):
// - one request's http_req_* points are written together with the same time (its end) and tags;
// - a refused or reset connection has status "0" (k6/http, with error/error_code tags) or no
//   status tag at all (xk6-sse); xk6-sse reports a stream cut mid-body as status 200, so only a
//   script that checks finish_reason (Gauntlet's own, which emits gauntlet_request) sees it;
// - dropped_iterations are arrivals k6 could not start: schedule misses.
import { z } from 'zod';
import type { Outcome } from '../outcome.js';
import type { LoadSink } from '../types.js';

const Tags = z.record(z.string(), z.string()).nullable();
const Line = z.discriminatedUnion('type', [
  z.object({ type: z.literal('Metric'), metric: z.string(), data: z.object({ type: z.string() }).passthrough() }),
  z.object({
    type: z.literal('Point'),
    metric: z.string(),
    // metadata: k6's unindexed per-sample values (exec.vu.metrics.metadata), v0.45+.
    data: z.object({ time: z.string(), value: z.number(), tags: Tags, metadata: z.record(z.string(), z.unknown()).optional() }),
  }),
]);

/** RFC 3339 with up to nanoseconds → epoch ms with the fraction kept. */
export function parseK6Time(s: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return Number.NaN;
  const whole = Date.parse(`${m[1]}${m[3]}`);
  const frac = m[2] ? Number(`0.${m[2]}`) * 1000 : 0;
  return whole + frac;
}

export interface K6ParseOptions {
  nodes: string[];
  /** k6 scenario name → node, for points without a node tag. */
  scenarioNode: Record<string, string>;
  /** Records from Gauntlet's own gauntlet_request metric, or from each request's http_req_* points. */
  recordsFrom: 'gauntlet_request' | 'http_reqs';
  /** ttft from a metric (gauntlet_ttft / llm_ttft), or approximated by time to first byte. */
  ttftFrom: 'metric' | 'ttfb';
  /** Numbers records (seq) when several parsers (k6 instances) feed one run; else each counts from 1. */
  nextSeq?: () => number;
  /**
   * Added to every time k6 writes (ms): a k6 on another host stamps its samples with that host's
   * clock, this brings them onto this one's (this clock − that clock).
   */
  clockShiftMs?: number;
}

const TTFT_METRICS = new Set(['gauntlet_ttft', 'llm_ttft']);
const ITL_METRICS = new Set(['gauntlet_itl', 'llm_itl']);
const TOKEN_METRICS = new Set(['gauntlet_output_tokens', 'llm_output_tokens']);
const TPOT_METRICS = new Set(['gauntlet_tpot']);
const OUTCOMES = new Set<Outcome>(['ok', 'http_error', 'conn_error', 'timeout', 'truncated', 'protocol_error', 'cancelled']);

interface Group {
  key: string;
  time: number;
  tags: Record<string, string>;
  values: Map<string, number>;
}

export interface K6ParseStats {
  lines: number;
  points: number;
  malformed: number;
  records: number;
  scheduleMisses: number;
  unmapped: number;
}

export class K6OutputParser {
  readonly stats: K6ParseStats = { lines: 0, points: 0, malformed: 0, records: 0, scheduleMisses: 0, unmapped: 0 };
  private group: Group | null = null;
  private seq = 0;
  /**
   * Gauntlet's scenario v2 (metadata gauntlet: "2") carries ttft and tokens on each
   * gauntlet_request: its gauntlet_ttft, _tpot and _output_tokens samples are then k6's summary
   * only, not counted a second time.
   */
  private recordsCarry = false;
  /** Whether the scenario counts its started iterations (gauntlet_planned): only then is a planned total known. */
  private plannedSeen = false;
  private readonly missesBeforePlanned = new Map<string, { at: number; count: number }>();
  /** When the load began (the first arrival started or dropped) and its last sign (epoch ms). */
  private firstAt: number | null = null;
  private lastAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly opts: K6ParseOptions,
    private readonly sink: LoadSink,
    private readonly onProblem: (message: string) => void,
  ) {}

  line(text: string): void {
    this.stats.lines++;
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return this.problem(`not JSON (${(err as Error).message}): ${text.slice(0, 120)}`);
    }
    const r = Line.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0];
      return this.problem(`${issue?.path.join('.') || '(line)'}: ${issue?.message ?? 'invalid'}: ${text.slice(0, 120)}`);
    }
    const l = r.data;
    if (l.type === 'Metric') return;
    const time = parseK6Time(l.data.time) + (this.opts.clockShiftMs ?? 0);
    if (!Number.isFinite(time)) return this.problem(`data.time: not an RFC 3339 time: ${l.data.time}`);
    this.stats.points++;
    this.point(l.metric, time, l.data.value, l.data.tags ?? {}, l.data.metadata);
  }

  /** Call at the end of the stream: the last request's points are complete. */
  end(): void {
    this.flushGroup();
    if (this.firstAt !== null) this.sink.ended?.(this.lastAt);
    // Gauntlet's own scenario counts what it started; if it started nothing, every arrival was missed.
    if (this.opts.recordsFrom === 'gauntlet_request' && !this.plannedSeen) {
      for (const [n, m] of this.missesBeforePlanned) this.sink.planned?.(n, m.at, m.count);
      this.missesBeforePlanned.clear();
    }
  }

  /**
   * The load's span as the samples show it: it began with the first arrival k6 started (its
   * gauntlet_planned point, at the iteration's start) or dropped, or, for a script that counts
   * no arrivals, the first request's send; it lasts until the last request ended.
   */
  private began(first: number, last: number): void {
    if (this.firstAt === null) {
      this.firstAt = first;
      this.sink.started?.(first);
    }
    if (last > this.lastAt) this.lastAt = last;
  }

  private problem(what: string): void {
    this.stats.malformed++;
    this.onProblem(`k6 output line ${this.stats.lines}: ${what}`);
  }

  private nodeOf(tags: Record<string, string>): string | null {
    const n = tags.node;
    if (n !== undefined && this.opts.nodes.includes(n)) return n;
    const s = tags.scenario !== undefined ? this.opts.scenarioNode[tags.scenario] : undefined;
    if (s) return s;
    return this.opts.nodes.length === 1 ? (this.opts.nodes[0] as string) : null;
  }

  private point(metric: string, time: number, value: number, tags: Record<string, string>, metadata?: Record<string, unknown>): void {
    if (metric.startsWith('http_req')) {
      const key = `${time}|${JSON.stringify(tags)}`;
      if (this.group && this.group.key !== key) this.flushGroup();
      this.group ??= { key, time, tags, values: new Map() };
      this.group.values.set(metric, value);
      return;
    }
    this.flushGroup();
    const node = this.nodeOf(tags);
    if (metric === 'dropped_iterations') {
      // Only the scenario tag says where the miss belongs. A dropped arrival was planned too.
      if (!node) return void this.stats.unmapped++;
      this.began(time, time);
      this.stats.scheduleMisses += value;
      this.sink.scheduleMiss?.(node, time, value);
      if (this.plannedSeen) this.sink.planned?.(node, time, value);
      else {
        const m = this.missesBeforePlanned.get(node);
        if (m) m.count += value;
        else this.missesBeforePlanned.set(node, { at: time, count: value });
      }
      return;
    }
    if (metric === 'gauntlet_planned') {
      if (!node) return void this.stats.unmapped++;
      this.began(time, time);
      if (!this.plannedSeen) {
        // Misses before the first started iteration were not counted as planned yet.
        this.plannedSeen = true;
        for (const [n, m] of this.missesBeforePlanned) this.sink.planned?.(n, m.at, m.count);
        this.missesBeforePlanned.clear();
      }
      this.sink.planned?.(node, time, value);
      return;
    }
    if (!node) {
      if (metric.startsWith('gauntlet_') || TTFT_METRICS.has(metric) || ITL_METRICS.has(metric)) this.stats.unmapped++;
      return;
    }
    if (metric === 'gauntlet_request' && this.opts.recordsFrom === 'gauntlet_request') return this.gauntletRecord(node, time, value, tags, metadata);
    if (this.recordsCarry && (metric === 'gauntlet_ttft' || metric === 'gauntlet_tpot' || metric === 'gauntlet_output_tokens')) return;
    if (TTFT_METRICS.has(metric) && this.opts.ttftFrom === 'metric') return this.sink.sample?.(node, 'ttft', time, value);
    if (ITL_METRICS.has(metric)) return this.sink.sample?.(node, 'itl', time, value);
    if (TPOT_METRICS.has(metric)) return this.sink.sample?.(node, 'tpot', time, value);
    if (TOKEN_METRICS.has(metric) && value > 0) return this.sink.tokens?.(node, time, value, tags.source === 'usage' ? 'usage' : 'chunks');
  }

  /**
   * A time in a gauntlet_request sample's metadata (ms after the send, as text): null when
   * absent; a malformed one is reported and dropped, the record kept.
   */
  private metaMs(metadata: Record<string, unknown> | undefined, key: string, e2e: number): number | null {
    const v = metadata?.[key];
    if (v === undefined) return null;
    const ms = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
    if (!Number.isFinite(ms) || ms < 0 || ms > e2e + 1) {
      this.problem(`gauntlet_request metadata.${key}: expected ms between 0 and the request's ${e2e} ms; got ${JSON.stringify(v)} (dropped, the request kept)`);
      return null;
    }
    return ms;
  }

  /** One request from Gauntlet's scenario: value = e2e ms, the script judged the outcome. */
  private gauntletRecord(node: string, time: number, e2e: number, tags: Record<string, string>, metadata?: Record<string, unknown>): void {
    const outcome = OUTCOMES.has(tags.outcome as Outcome) ? (tags.outcome as Outcome) : 'protocol_error';
    const status = tags.status && tags.status !== '0' ? Number(tags.status) : null;
    const responseMs = this.metaMs(metadata, 'response_ms', e2e);
    const firstTokenMs = this.metaMs(metadata, 'first_token_ms', e2e);
    const carries = metadata?.gauntlet === '2';
    if (carries) this.recordsCarry = true;
    let tokens: number | null = null;
    if (carries && metadata?.output_tokens !== undefined) {
      const n = Number(metadata.output_tokens);
      if (Number.isInteger(n) && n >= 0) tokens = n;
      else this.problem(`gauntlet_request metadata.output_tokens: expected a whole number; got ${JSON.stringify(metadata.output_tokens)} (dropped, the request kept)`);
    }
    const metaError = typeof metadata?.error === 'string' && metadata.error !== '' ? metadata.error : null;
    let queueMs: number | null = null;
    if (metadata?.queue_ms !== undefined) {
      const q = Number(metadata.queue_ms);
      if (Number.isFinite(q) && q >= 0) queueMs = q;
      else this.problem(`gauntlet_request metadata.queue_ms: expected ms ≥ 0; got ${JSON.stringify(metadata.queue_ms)} (dropped, the request kept)`);
    }
    this.emit({
      node,
      seq: this.opts.nextSeq ? this.opts.nextSeq() : ++this.seq,
      attempt: Number(tags.attempt ?? 1) || 1,
      final: tags.final !== 'false',
      mix: tags.mix ?? 'default',
      time,
      e2e,
      outcome,
      status,
      respondedAt: responseMs !== null ? time - e2e + responseMs : null,
      // An older scenario sends ttft as gauntlet_ttft samples only (counted there); v2 on the record.
      ttftMs: carries ? firstTokenMs : null,
      firstTokenAt: firstTokenMs !== null ? time - e2e + firstTokenMs : null,
      queueDelayMs: queueMs,
      ...(carries ? { outputTokens: tokens, tokensSource: tokens !== null ? ((metadata?.tokens_source === 'usage' ? 'usage' : 'chunks') as 'usage' | 'chunks') : null } : {}),
      error: metaError ?? tags.error ?? (OUTCOMES.has(tags.outcome as Outcome) ? null : `unknown outcome tag ${tags.outcome}`),
    });
  }

  private flushGroup(): void {
    const g = this.group;
    this.group = null;
    if (!g || this.opts.recordsFrom !== 'http_reqs' || !g.values.has('http_reqs')) return;
    const node = this.nodeOf(g.tags);
    if (!node) return void this.stats.unmapped++;
    const v = (k: string): number => g.values.get(`http_req_${k}`) ?? 0;
    const before = v('blocked') + v('connecting') + v('tls_handshaking');
    const e2e = before + v('duration');
    const code = g.tags.status;
    const status = code && code !== '0' ? Number(code) : null;
    let outcome: Outcome;
    let error: string | null = g.tags.error ?? null;
    if (g.tags.error_code === '1050') outcome = 'timeout';
    else if (status === null) {
      outcome = 'conn_error';
      error ??= 'no response (k6 gave no status)';
    } else if (status >= 200 && status < 300) outcome = 'ok';
    else outcome = 'http_error';
    // Time to first byte: all k6/http can see of a stream without the SSE extension.
    const ttfb = status !== null ? before + v('sending') + v('waiting') : null;
    this.emit({
      node,
      seq: this.opts.nextSeq ? this.opts.nextSeq() : ++this.seq,
      attempt: 1,
      final: true,
      mix: g.tags.mix ?? 'default',
      time: g.time,
      e2e,
      outcome,
      status,
      respondedAt: ttfb !== null ? g.time - e2e + ttfb : null,
      ttftMs: this.opts.ttftFrom === 'ttfb' && outcome === 'ok' ? ttfb : null,
      error,
    });
  }

  private emit(r: {
    node: string;
    seq: number;
    attempt: number;
    final: boolean;
    mix: string;
    time: number;
    e2e: number;
    outcome: Outcome;
    status: number | null;
    respondedAt: number | null;
    ttftMs: number | null;
    /** When the first token came, if known apart from ttftMs. */
    firstTokenAt?: number | null;
    outputTokens?: number | null;
    tokensSource?: 'usage' | 'chunks' | null;
    /** How late k6 started the iteration against its arrival schedule (first attempts of Gauntlet's scenario). */
    queueDelayMs?: number | null;
    error: string | null;
  }): void {
    this.stats.records++;
    const sentAt = r.time - r.e2e;
    this.began(sentAt - (r.queueDelayMs ?? 0), r.time);
    this.sink.record({
      node: r.node,
      seq: r.seq,
      attempt: r.attempt,
      final: r.final,
      mix: r.mix,
      scheduledAt: sentAt - (r.queueDelayMs ?? 0),
      sentAt,
      respondedAt: r.respondedAt,
      firstTokenAt: r.firstTokenAt ?? (r.ttftMs !== null ? sentAt + r.ttftMs : null),
      endAt: r.time,
      ttftMs: r.ttftMs,
      e2eMs: r.e2e,
      // k6 never queues an arrival (it starts it or drops it), but it can start it late: Gauntlet's
      // scenario measures that against k6's own schedule; other scripts cannot say.
      queueDelayMs: r.queueDelayMs ?? null,
      outcome: r.outcome,
      status: r.status,
      outputTokens: r.outputTokens ?? null,
      tokensSource: r.tokensSource ?? null,
      chunks: 0,
      itlMaxMs: null,
      error: r.error,
      promptTokens: null,
      maxTokens: null,
      gaps: [],
    });
  }
}
