// One OpenAI-API completion request, timed through undici's per-phase handler callbacks
// (onRequestStart → onResponseStart → onResponseData… → onResponseEnd | onResponseError)
// without buffering streamed bodies. Used by the builtin engine and by inference probes.
import type { Dispatcher } from 'undici';
import type { Clock } from '../util/clock.js';
import type { Outcome } from './outcome.js';
import type { ResponseTiming } from './types.js';
import { OpenAiStreamReader } from './openai-stream.js';

/**
 * Cancels many requests at once. An AbortSignal shared by thousands of in-flight requests
 * costs O(listeners) per addEventListener — quadratic under a hung node, which is exactly when
 * the schedule must hold — so cancel functions live in a Set instead.
 */
export class CancelScope {
  private readonly fns = new Set<() => void>();
  private done = false;

  get cancelled(): boolean {
    return this.done;
  }

  /** Registers fn; returns the function that unregisters it. Runs fn at once if already cancelled. */
  onCancel(fn: () => void): () => void {
    if (this.done) {
      fn();
      return () => undefined;
    }
    this.fns.add(fn);
    return () => void this.fns.delete(fn);
  }

  cancel(): void {
    if (this.done) return;
    this.done = true;
    const fns = [...this.fns];
    this.fns.clear();
    for (const fn of fns) fn();
  }

  static fromSignal(signal: AbortSignal): CancelScope {
    const scope = new CancelScope();
    if (signal.aborted) scope.cancel();
    else signal.addEventListener('abort', () => scope.cancel(), { once: true });
    return scope;
  }
}

export interface CompletionRequest {
  origin: string;
  path: string;
  body: string;
  stream: boolean;
  timeoutMs: number;
  /** Cancelling it ends the request with outcome `cancelled`. */
  cancel?: CancelScope;
  /** A fresh connection, closed after the response (probes: never ride a socket a proxy holds). */
  reset?: boolean;
  /** Called with the arrival time of every piece of a 200 response's body. */
  onData?: (at: number) => void;
  /** Keep every inter-chunk gap (otherwise only the largest). */
  keepGaps?: boolean;
  /** Keep the server's per-chunk timestamps found in this field (benchmarks; see OpenAiStreamReader). */
  stampKey?: string;
}

export interface CompletionResult extends ResponseTiming {
  /** Every gap between content chunks, when keepGaps was asked for. */
  gaps: number[];
  /** Server timestamps of content chunks, when stampKey was given and the server sent them. */
  stamps: number[];
}

const MAX_ERROR_BODY = 2048;
const MAX_JSON_BODY = 4 << 20;

class TimeoutError extends Error {
  override name = 'TimeoutError';
}
class CancelledError extends Error {
  override name = 'CancelledError';
}

export function sendCompletion(dispatcher: Dispatcher, req: CompletionRequest, clock: Pick<Clock, 'now' | 'after'>): Promise<CompletionResult> {
  const now = (): number => clock.now();
  return new Promise((resolve) => {
    const sentAt = now();
    const reader = req.stream ? new OpenAiStreamReader(req.keepGaps ?? false, req.stampKey ?? null) : null;
    let status: number | null = null;
    let respondedAt: number | null = null;
    let contentType = '';
    let body: Buffer[] = [];
    let bodyBytes = 0;
    let controller: Dispatcher.DispatchController | null = null;
    let finished = false;
    let abortReason: Error | null = null;
    let maxGap: number | null = null;

    const finish = (outcome: Outcome, error: string | null, extra: Partial<CompletionResult> = {}): void => {
      if (finished) return;
      finished = true;
      cancelTimer();
      unregister();
      const s = reader?.summary;
      const gaps = s?.gaps ?? [];
      for (const g of gaps) if (maxGap === null || g > maxGap) maxGap = g;
      const usage = s?.usageCompletionTokens ?? null;
      resolve({
        sentAt,
        respondedAt,
        firstTokenAt: s?.firstContentAt ?? null,
        endAt: now(),
        outcome,
        status,
        outputTokens: usage ?? (s && s.contentChunks > 0 ? s.contentChunks : null),
        tokensSource: usage !== null ? 'usage' : s && s.contentChunks > 0 ? 'chunks' : null,
        chunks: s?.contentChunks ?? 0,
        itlMaxMs: maxGap,
        gaps: req.keepGaps ? gaps : [],
        stamps: s?.stamps ?? [],
        error,
        ...extra,
      });
    };

    const abort = (reason: Error): void => {
      abortReason ??= reason;
      if (controller && !controller.aborted) controller.abort(reason);
      else finish(reason instanceof TimeoutError ? 'timeout' : 'cancelled', reason.message);
    };
    const cancelTimer = clock.after(req.timeoutMs, () => abort(new TimeoutError(`no complete response within ${req.timeoutMs} ms`)));
    let unregister: () => void = () => undefined;
    if (req.cancel?.cancelled) return abort(new CancelledError('cancelled: the run is stopping'));
    if (req.cancel) unregister = req.cancel.onCancel(() => abort(new CancelledError('cancelled: the run is stopping')));

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (abortReason) c.abort(abortReason);
      },
      onResponseStart(_c, statusCode, headers) {
        respondedAt = now();
        status = statusCode;
        const ct = headers['content-type'];
        contentType = (Array.isArray(ct) ? ct[0] : ct) ?? '';
      },
      onResponseData(_c, chunk) {
        if (status === 200 && reader) {
          const at = now();
          reader.push(chunk, at);
          req.onData?.(at);
          return;
        }
        const limit = status === 200 ? MAX_JSON_BODY : MAX_ERROR_BODY;
        if (bodyBytes < limit) {
          body.push(chunk);
          bodyBytes += chunk.length;
        }
      },
      onResponseEnd() {
        const text = Buffer.concat(body).toString('utf8');
        body = [];
        if (status !== 200) return finish('http_error', `HTTP ${status}: ${errorText(text)}`);
        if (reader) {
          if (!/text\/event-stream/i.test(contentType)) return finish('protocol_error', `expected text/event-stream, got ${contentType || 'no content-type'}`);
          const s = reader.summary;
          if (s.protocolError) return finish('protocol_error', s.protocolError);
          if (!reader.complete) return finish('truncated', `stream ended after ${s.contentChunks} content chunks without a finish reason or [DONE]`);
          return finish('ok', null);
        }
        return finishJson(text);
      },
      onResponseError(_c, err) {
        if (abortReason) return finish(abortReason instanceof TimeoutError ? 'timeout' : 'cancelled', abortReason.message);
        const code = (err as { code?: string }).code;
        const message = code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
        // Once a 200 response has begun, a broken connection means the body was cut off.
        if (status === 200) return finish('truncated', `response cut off: ${message}`);
        finish('conn_error', message);
      },
    };

    const finishJson = (text: string): void => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        return finish('protocol_error', `response is not JSON: ${(err as Error).message}`);
      }
      const p = parsed as { choices?: { finish_reason?: unknown }[]; usage?: { completion_tokens?: unknown } };
      const tokens = typeof p.usage?.completion_tokens === 'number' ? p.usage.completion_tokens : null;
      if (!Array.isArray(p.choices) || p.choices.length === 0) return finish('protocol_error', 'response has no choices');
      finish('ok', null, { outputTokens: tokens, tokensSource: tokens !== null ? 'usage' : null });
    };

    try {
      dispatcher.dispatch(
        { origin: req.origin, path: req.path, method: 'POST', body: req.body, headers: { 'content-type': 'application/json', accept: req.stream ? 'text/event-stream' : 'application/json' }, reset: req.reset ?? false },
        handler,
      );
    } catch (err) {
      finish('conn_error', (err as Error).message);
    }
  });
}

function errorText(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: string } | string; message?: string };
    const m = typeof j.error === 'string' ? j.error : (j.error?.message ?? j.message);
    if (m) return m;
  } catch {
    // not JSON: show the text
  }
  return body.slice(0, 200) || '(empty body)';
}
