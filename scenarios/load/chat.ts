// Gauntlet's k6 scenario for a k6 binary without the SSE extension: k6/http buffers each
// response, so time to first token is approximated by time to first byte (k6's
// http_req_waiting) and inter-token gaps cannot be measured. The report says so.
import http from 'k6/http';
import { attemptRequest, config, readSseBody, ttftMetric, type Result } from './lib.js';

export const options = config.options;

export default function (): void {
  attemptRequest((endpoint, req, node) => {
    const res = http.post(`${endpoint}${req.path}`, req.body, {
      headers: { 'Content-Type': 'application/json' },
      timeout: `${req.timeoutMs}ms`,
      tags: { node, mix: req.mix, name: req.path },
      responseType: 'text',
    });
    const t = res.timings;
    const e2eMs = t.blocked + t.connecting + t.tls_handshaking + t.duration;
    const r: Result = { outcome: 'ok', status: res.status, e2eMs, tokens: null, tokensSource: 'usage' };
    if (res.status === 0) r.outcome = res.error_code === 1050 ? 'timeout' : 'conn_error';
    else if (res.status < 200 || res.status >= 300) r.outcome = 'http_error';
    else if (req.stream) {
      const s = readSseBody(String(res.body || ''));
      if (s.error) r.outcome = 'protocol_error';
      else if (!s.finished) r.outcome = 'truncated';
      r.tokens = s.usage !== null ? s.usage : s.chunks;
      r.tokensSource = s.usage !== null ? 'usage' : 'chunks';
      if (r.outcome === 'ok') ttftMetric.add(t.blocked + t.connecting + t.tls_handshaking + t.sending + t.waiting, { node, mix: req.mix });
    } else {
      try {
        const j = JSON.parse(String(res.body)) as { usage?: { completion_tokens?: number } };
        r.tokens = j.usage && typeof j.usage.completion_tokens === 'number' ? j.usage.completion_tokens : null;
      } catch (e) {
        r.outcome = 'protocol_error';
      }
    }
    return r;
  });
}
