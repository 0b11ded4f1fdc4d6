// Shared by Gauntlet's k6 scenarios: the run's configuration (written by Gauntlet, read with
// open() at init), the same request generator the builtin engine uses, and the metrics that
// carry results back: gauntlet_request (one sample per attempt: value = e2e ms, tags = node,
// mix, outcome, status, attempt, final — all low-cardinality; its metadata, which k6 does not
// index, carries response_ms and first_token_ms: when the response began and its first token
// came, ms after the send), gauntlet_ttft, gauntlet_itl, gauntlet_output_tokens. Bundled by esbuild for k6 v0.49+ (ES2017 inside ES modules).
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { sleep } from 'k6';
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { RequestFactory, buildCorpus, chunkedCorpus, splitCorpus, useCorpus, type BuiltRequest, type MixItem } from '../../src/load/prompts.js';
import { RateCurve } from '../../src/load/schedule.js';
import { deriveSeed, seededRandom } from '../../src/util/random.js';

export interface ScenarioConfig {
  /** k6 scenario name → the node it loads and its endpoint. */
  targets: Record<string, { node: string; endpoint: string }>;
  /** Prompt lists are not inline: each entry with prompts names its file (promptsPath). */
  mix: (MixItem & { promptsPath?: string })[];
  defaultModel: string;
  retry: { attempts: number; backoffMs: number; maxBackoffMs: number; jitter: number } | null;
  seed: number;
  options: Options;
}

export const config: ScenarioConfig = JSON.parse(open(__ENV.GAUNTLET_CONFIG as string)) as ScenarioConfig;
// Prompt files can be large: one copy shared by all VUs (SharedArray), not one per VU.
config.mix.forEach((m, i) => {
  if (m.promptsPath) m.prompts = new SharedArray(`gauntlet-prompts-${i}`, () => JSON.parse(open(m.promptsPath as string)) as unknown[]) as unknown as MixItem['prompts'];
});

// The synthetic-prompt corpus, built once for the whole test (k6 runs this function in one VU
// only) and shared read-only: each VU building its own cost ~0.3 s of k6's interpreter per VU
// and a copy each, enough to make k6 miss most arrivals at 150 streams/s. Pieces of 4 KiB, so a
// prompt reads only the few it spans.
const CORPUS_PIECE = 4096;
useCorpus(chunkedCorpus(new SharedArray('gauntlet-corpus', () => splitCorpus(buildCorpus(), CORPUS_PIECE)), CORPUS_PIECE));

export const requestMetric = new Trend('gauntlet_request', true);
/** One per iteration started: with dropped_iterations, every arrival k6 had due (the accounting's total). */
export const plannedMetric = new Counter('gauntlet_planned');
export const ttftMetric = new Trend('gauntlet_ttft', true);
export const itlMetric = new Trend('gauntlet_itl', true);
export const tpotMetric = new Trend('gauntlet_tpot', true);
export const tokenMetric = new Counter('gauntlet_output_tokens');

// Per-VU state, made on first use: exec.vu cannot be read in k6's init context.
const factories: Record<string, RequestFactory> = {};
let jitter: ReturnType<typeof seededRandom> | null = null;

export function target(): { node: string; endpoint: string } {
  const t = config.targets[exec.scenario.name];
  if (!t) throw new Error(`scenario ${exec.scenario.name} has no target in the Gauntlet config`);
  return t;
}

/** The next request for this VU and target (each VU has its own seeded stream). */
export function nextRequest(node: string): BuiltRequest {
  const key = node;
  factories[key] = factories[key] || new RequestFactory(config, deriveSeed(config.seed, `vu-${exec.vu.idInTest}`), node);
  return (factories[key] as RequestFactory).next();
}

export interface Result {
  outcome: 'ok' | 'http_error' | 'conn_error' | 'timeout' | 'truncated' | 'protocol_error';
  status: number;
  e2eMs: number;
  tokens: number | null;
  tokensSource: 'usage' | 'chunks';
  /** ms from the send to the response's start (status line), when one came. */
  responseMs: number | null;
  /** ms from the send to the first content token, when one came (even if the stream then failed). */
  firstTokenMs: number | null;
  /** What went wrong, as the builtin engine words it (null when ok). */
  error: string | null;
}

/** Records one attempt; returns whether the client would retry it. */
export function report(node: string, req: BuiltRequest, r: Result, attempt: number, queueMs: number | null = null): boolean {
  const attempts = config.retry ? config.retry.attempts : 1;
  const retryable = r.outcome === 'http_error' ? r.status === 429 || r.status >= 500 : r.outcome !== 'ok';
  const final = r.outcome === 'ok' || !retryable || attempt >= attempts;
  // Per-request times go in the sample's metadata: as tags they would make a time series each.
  // gauntlet: "2" says the record carries ttft and tokens itself (the gauntlet_ttft, _tpot and
  // _output_tokens samples are then for k6's own summary only, not counted again).
  const md = exec.vu.metrics.metadata;
  md.gauntlet = '2';
  if (r.responseMs !== null) md.response_ms = String(r.responseMs);
  if (r.firstTokenMs !== null) md.first_token_ms = String(r.firstTokenMs);
  if (r.outcome === 'ok' && r.tokens !== null) {
    md.output_tokens = String(r.tokens);
    md.tokens_source = r.tokensSource;
  }
  if (r.error !== null) md.error = r.error.slice(0, 300);
  if (queueMs !== null) md.queue_ms = String(queueMs);
  requestMetric.add(r.e2eMs, { node, mix: req.mix, outcome: r.outcome, status: String(r.status), attempt: String(attempt), final: String(final) });
  for (const k of ['gauntlet', 'response_ms', 'first_token_ms', 'output_tokens', 'tokens_source', 'error', 'queue_ms']) delete md[k];
  if (r.outcome === 'ok' && r.tokens !== null && r.tokens > 0) tokenMetric.add(r.tokens, { node, source: r.tokensSource });
  return !final;
}

/** "1500ms" / "1000s" → ms (the forms Gauntlet writes into the options). */
function ms(d: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(d);
  if (!m) throw new Error(`unexpected duration ${d} in the Gauntlet config`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

/**
 * The arrival schedules, copied at init: k6 takes the exported options over and the VUs then
 * find `options.scenarios` gone (seen on k6 v0.49).
 */
type Schedule = { executor: string; timeUnit: string; rate?: number; startRate?: number; stages?: { duration: string; target: number }[] };
const schedules: Record<string, Schedule> = JSON.parse(JSON.stringify(config.options.scenarios || {})) as Record<string, Schedule>;

/** Per scenario: ms from its start at which iteration n (0-based, k6's iterationInTest) is due. */
const dueOffsets: Record<string, (n: number) => number> = {};
function dueOffset(name: string): (n: number) => number {
  const known = dueOffsets[name];
  if (known) return known;
  const s = schedules[name];
  let f: (n: number) => number = () => Number.NaN;
  if (s && s.executor === 'constant-arrival-rate' && s.rate) {
    // k6 starts iteration 0 at once and then one every timeUnit / rate (checked on k6 v0.49).
    const every = ms(s.timeUnit) / s.rate;
    f = (n) => n * every;
  } else if (s && s.executor === 'ramping-arrival-rate' && s.stages) {
    // k6 starts iteration n when the rate's integral reaches n + 1 (checked on k6 v0.49).
    const unit = ms(s.timeUnit) / 1000;
    const curve = new RateCurve({ startRate: (s.startRate || 0) / unit, stages: s.stages.map((x) => ({ duration: ms(x.duration), target: x.target / unit })) });
    f = (n) => curve.inverse(n + 1);
  }
  dueOffsets[name] = f;
  return f;
}

/**
 * How late k6 started this iteration against its own arrival schedule (ms): k6's queue delay.
 * A generator that falls behind shows here first (and in dropped_iterations).
 */
function iterationLateness(): number | null {
  const due = exec.scenario.startTime + dueOffset(exec.scenario.name)(exec.scenario.iterationInTest);
  return Number.isFinite(due) ? Math.max(0, Date.now() - due) : null;
}

/**
 * One scheduled request on this VU: its attempts, with backoff between them, until one is
 * final. `attemptOnce` sends it once and says how it went.
 */
export function attemptRequest(attemptOnce: (endpoint: string, req: BuiltRequest, node: string) => Result): void {
  const { node, endpoint } = target();
  plannedMetric.add(1, { node });
  const late = iterationLateness();
  const req = nextRequest(node);
  const attempts = config.retry ? config.retry.attempts : 1;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) sleep(backoffSeconds(attempt));
    if (!report(node, req, attemptOnce(endpoint, req, node), attempt, attempt === 1 ? late : null)) return;
  }
}

/** Seconds to wait before attempt `attempt` (2, 3, …). */
export function backoffSeconds(attempt: number): number {
  const p = config.retry;
  if (!p) return 0;
  jitter = jitter || seededRandom(deriveSeed(config.seed, `k6-retry-${exec.vu.idInTest}`));
  const base = Math.min(p.maxBackoffMs, p.backoffMs * Math.pow(2, attempt - 2));
  return Math.max(0, base * (1 + p.jitter * (2 * jitter.next() - 1))) / 1000;
}

/** Reads a whole SSE body (k6/http buffers it): content chunks, finish reason, usage. */
export function readSseBody(raw: string): { chunks: number; finished: boolean; usage: number | null; error: string | null } {
  const body = raw.replace(/\r\n?/g, '\n'); // SSE allows CRLF and CR line ends
  let chunks = 0;
  let finished = false;
  let usage: number | null = null;
  let error: string | null = null;
  for (const block of body.split('\n\n')) {
    const line = block.split('\n').filter((l) => l.indexOf('data:') === 0).map((l) => l.slice(5).trim()).join('\n');
    if (!line) continue;
    if (line === '[DONE]') {
      finished = true;
      continue;
    }
    const step = readChunk(line);
    if (step.error) error = error || step.error;
    chunks += step.content ? 1 : 0;
    finished = finished || step.finished;
    if (step.usage !== null) usage = step.usage;
  }
  return { chunks, finished, usage, error };
}

export function readChunk(data: string): { content: boolean; finished: boolean; usage: number | null; error: string | null } {
  let chunk: { error?: unknown; usage?: { completion_tokens?: number }; choices?: { delta?: { content?: string }; text?: string; finish_reason?: string | null }[] };
  try {
    chunk = JSON.parse(data);
  } catch (e) {
    return { content: false, finished: false, usage: null, error: `malformed SSE chunk: ${String(e)}` };
  }
  if (chunk.error !== undefined) return { content: false, finished: false, usage: null, error: `server sent an error in the stream` };
  const choice = chunk.choices && chunk.choices[0];
  const text = choice ? (choice.delta ? choice.delta.content : choice.text) : undefined;
  const usage = chunk.usage && typeof chunk.usage.completion_tokens === 'number' ? chunk.usage.completion_tokens : null;
  return { content: typeof text === 'string' && text.length > 0, finished: !!(choice && choice.finish_reason), usage, error: null };
}

/**
 * One request through k6/http, which buffers the response: a non-streamed request on any k6,
 * and every request on a k6 without xk6-sse (then TTFT is time to first byte).
 */
export function bufferedAttempt(endpoint: string, req: BuiltRequest, node: string): Result {
  const res = http.post(`${endpoint}${req.path}`, req.body, {
    headers: { 'Content-Type': 'application/json' },
    timeout: `${req.timeoutMs}ms`,
    tags: { node, mix: req.mix, name: req.path },
    responseType: 'text',
  });
  const t = res.timings;
  const e2eMs = t.blocked + t.connecting + t.tls_handshaking + t.duration;
  const ttfb = t.blocked + t.connecting + t.tls_handshaking + t.sending + t.waiting;
  // k6/http buffers the body: the first byte is the closest it sees to the first token.
  const r: Result = { outcome: 'ok', status: res.status, e2eMs, tokens: null, tokensSource: 'usage', responseMs: res.status !== 0 ? ttfb : null, firstTokenMs: null, error: null };
  if (res.status === 0) {
    r.outcome = res.error_code === 1050 ? 'timeout' : 'conn_error';
    r.error = res.error || `no response (k6 error code ${res.error_code})`;
  } else if (res.status < 200 || res.status >= 300) {
    r.outcome = 'http_error';
    r.error = `HTTP ${res.status}: ${errorText(String(res.body || ''))}`;
  } else if (req.stream) {
    const s = readSseBody(String(res.body || ''));
    if (s.error) {
      r.outcome = 'protocol_error';
      r.error = s.error;
    } else if (!s.finished) {
      r.outcome = 'truncated';
      r.error = `stream ended after ${s.chunks} content chunks without a finish reason or [DONE]`;
    }
    r.tokens = s.usage !== null ? s.usage : s.chunks;
    r.tokensSource = s.usage !== null ? 'usage' : 'chunks';
    if (s.chunks > 0) r.firstTokenMs = ttfb;
    if (r.outcome === 'ok') ttftMetric.add(ttfb, { node, mix: req.mix });
  } else {
    try {
      const j = JSON.parse(String(res.body)) as { usage?: { completion_tokens?: number } };
      r.tokens = j.usage && typeof j.usage.completion_tokens === 'number' ? j.usage.completion_tokens : null;
    } catch (e) {
      r.outcome = 'protocol_error';
      r.error = `response is not JSON: ${String(e)}`;
    }
  }
  return r;
}

/** An error body's message (OpenAI's { error: { message } }, or its text). */
export function errorText(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: string } | string; message?: string };
    const m = typeof j.error === 'string' ? j.error : j.error && j.error.message ? j.error.message : j.message;
    if (m) return m;
  } catch (e) {
    // not JSON: show the text
  }
  return body.slice(0, 200) || '(empty body)';
}
