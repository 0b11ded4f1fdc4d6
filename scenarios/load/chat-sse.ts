// Gauntlet's k6 scenario for a k6 binary built with xk6-sse (module k6/x/sse): every SSE event
// is timed as it arrives, so time to first token and each inter-token gap are measured
// (with Date.now(): whole milliseconds). A stream cut mid-body is reported by the extension as
// status 200; this script checks for finish_reason/[DONE] and records it as truncated.
// Non-streamed requests (stream: false in a mix) go through k6/http.
import sse from 'k6/x/sse';
import { attemptRequest, bufferedAttempt, config, itlMetric, readChunk, tpotMetric, ttftMetric, type Result } from './lib.js';

export const options = config.options;

export default function (): void {
  attemptRequest((endpoint, req, node) => {
    // A non-streamed request has no events to time: k6/http, as on a k6 without the extension.
    if (!req.stream) return bufferedAttempt(endpoint, req, node);
    const t0 = Date.now();
    let last = 0;
    let chunks = 0;
    let finished = false;
    let usage: number | null = null;
    let protocolError: string | null = null;
    let streamError: string | null = null;
    let ttft: number | null = null;
    let opened: number | null = null;
    // Gaps are reported only for a stream that ends well, as the builtin engine does.
    const gaps: number[] = [];
    const res = sse.open(
      `${endpoint}${req.path}`,
      { method: 'POST', body: req.body, headers: { 'Content-Type': 'application/json' }, tags: { node, mix: req.mix } },
      (client) => {
        client.on('open', () => {
          if (opened === null) opened = Date.now() - t0;
        });
        client.on('event', (event) => {
          if (opened === null) opened = Date.now() - t0;
          if (event.data === '[DONE]') {
            finished = true;
            client.close();
            return;
          }
          const step = readChunk(event.data);
          if (step.error && protocolError === null) protocolError = step.error;
          if (step.usage !== null) usage = step.usage;
          if (step.finished) finished = true;
          if (step.content) {
            const now = Date.now();
            if (chunks === 0) ttft = now - t0;
            else gaps.push(now - last);
            last = now;
            chunks++;
          }
        });
        client.on('error', (e) => {
          streamError = e.error();
          client.close();
        });
      },
    );
    const status = res && res.status ? res.status : 0;
    const r: Result = {
      outcome: 'ok',
      status,
      e2eMs: Date.now() - t0,
      tokens: usage !== null ? usage : chunks,
      tokensSource: usage !== null ? 'usage' : 'chunks',
      responseMs: status !== 0 ? opened : null,
      firstTokenMs: ttft,
      error: null,
    };
    if (status === 0) {
      r.outcome = 'conn_error';
      r.error = streamError || (res && res.error) || 'no response';
    } else if (status < 200 || status >= 300) {
      r.outcome = 'http_error';
      r.error = `HTTP ${status}`;
    } else if (protocolError !== null) {
      r.outcome = 'protocol_error';
      r.error = protocolError;
    } else if (!finished || streamError !== null) {
      r.outcome = 'truncated';
      r.error = streamError !== null ? `response cut off: ${streamError}` : `stream ended after ${chunks} content chunks without a finish reason or [DONE]`;
    }
    if (r.outcome === 'ok' && ttft !== null) {
      ttftMetric.add(ttft, { node, mix: req.mix });
      for (const g of gaps) itlMetric.add(g, { node });
      if (r.tokens !== null && r.tokens > 1) tpotMetric.add((r.e2eMs - ttft) / (r.tokens - 1), { node, mix: req.mix });
    }
    return r;
  });
}
