// The builtin engine's request against real sockets: a misbehaving server that cuts streams,
// sends garbage, hangs or refuses, replaying the real llama.cpp bytes where it can.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelScope, sendCompletion, type CompletionRequest } from '../../src/load/request.js';
import { freePort } from '../../src/util/ports.js';
import { RealClock } from '../../src/util/clock.js';

const real = (name: string): Buffer => readFileSync(new URL(`../fixtures/real/sse/${name}`, import.meta.url));
const now = (): number => performance.timeOrigin + performance.now();
const clock = new RealClock();
const dispatcher = new Agent({ connections: null, headersTimeout: 0, bodyTimeout: 0 });
let server: Server;
let origin: string;

function eventsOf(body: Buffer): Buffer[] {
  return body
    .toString('utf8')
    .split('\n\n')
    .filter(Boolean)
    .map((e) => Buffer.from(`${e}\n\n`));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const route = req.url ?? '';
    req.resume();
    const sse = (): void => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
    };
    switch (route) {
      case '/complete': {
        sse();
        const events = eventsOf(real('llamacpp-chat-stream.txt'));
        // Headers now, first token after 80 ms, then one event per 5 ms, as a real server paces them.
        let i = 0;
        const next = (): void => {
          if (i < events.length) res.write(events[i++]);
          if (i < events.length) setTimeout(next, 5);
          else res.end();
        };
        setTimeout(next, 80);
        return;
      }
      case '/killed': {
        // The real stream cut by SIGKILL: complete events, then the connection drops.
        sse();
        res.write(real('llamacpp-chat-stream-killed.txt'), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      case '/ended-early': {
        // A clean end of the HTTP body without finish_reason or [DONE].
        sse();
        res.end(eventsOf(real('llamacpp-chat-stream.txt')).slice(0, 5).join(''));
        return;
      }
      case '/malformed': {
        sse();
        res.end(readFileSync(new URL('../fixtures/sse/malformed-json.txt', import.meta.url)));
        return;
      }
      case '/not-sse': {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"choices":[]}');
        return;
      }
      case '/overloaded': {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}');
        return;
      }
      case '/hang':
        sse(); // headers, then nothing
        return;
      case '/json': {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"choices":[{"index":0,"message":{"content":"x"},"finish_reason":"length"}],"usage":{"completion_tokens":7}}');
        return;
      }
      default:
        res.writeHead(404);
        res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await dispatcher.close();
});

const send = (path: string, over: Partial<CompletionRequest> = {}) =>
  sendCompletion(dispatcher, { origin, path, body: '{}', stream: true, timeoutMs: 5000, keepGaps: true, ...over }, clock);

describe('sendCompletion outcomes', () => {
  it('a complete stream is ok; ttft is the first content chunk, not the headers; tokens from usage', async () => {
    const r = await send('/complete');
    expect(r.outcome).toBe('ok');
    expect(r.status).toBe(200);
    expect(r.outputTokens).toBe(16);
    expect(r.tokensSource).toBe('usage');
    expect(r.chunks).toBe(16);
    expect(r.gaps).toHaveLength(15);
    expect((r.firstTokenAt as number) - r.sentAt).toBeGreaterThanOrEqual(79);
  });

  it('the real SIGKILL-cut stream is truncated, with the tokens counted from chunks', async () => {
    const r = await send('/killed');
    expect(r.outcome).toBe('truncated');
    expect(r.chunks).toBe(115);
    expect(r.tokensSource).toBe('chunks');
    expect(r.error).toMatch(/response cut off|without a finish reason/);
  });

  it('a body that ends cleanly without finish_reason or [DONE] is truncated', async () => {
    const r = await send('/ended-early');
    expect(r.outcome).toBe('truncated');
    expect(r.error).toBe('stream ended after 5 content chunks without a finish reason or [DONE]');
  });

  it('a malformed chunk is a protocol error naming the chunk', async () => {
    const r = await send('/malformed');
    expect(r.outcome).toBe('protocol_error');
    expect(r.error).toMatch(/malformed SSE chunk #3/);
  });

  it('a 200 that is not an event stream is a protocol error', async () => {
    expect(await send('/not-sse')).toMatchObject({ outcome: 'protocol_error', error: 'expected text/event-stream, got application/json' });
  });

  it("an error status is http_error with the server's message", async () => {
    expect(await send('/overloaded')).toMatchObject({ outcome: 'http_error', status: 503, error: 'HTTP 503: Loading model' });
  });

  it('a server that sends headers and then nothing times out at the plan timeout', async () => {
    // A reference timer of the same length, started with the request: on a busy machine the
    // two fire late together, so the request is judged against it, not against a fixed bound.
    let referenceAt = 0;
    const reference = new Promise<void>((resolve) => setTimeout(() => resolve(void (referenceAt = now())), 300));
    const r = await send('/hang', { timeoutMs: 300 });
    await reference;
    expect(r.outcome).toBe('timeout');
    expect(r.endAt - r.sentAt).toBeGreaterThanOrEqual(299);
    // Ended by its own 300 ms timer, not by some later deadline: before another 300 ms had
    // passed since the reference fired.
    expect(r.endAt - referenceAt).toBeLessThan(300);
  });

  it('a refused connection is conn_error', async () => {
    const port = await freePort();
    const r = await sendCompletion(dispatcher, { origin: `http://127.0.0.1:${port}`, path: '/', body: '{}', stream: true, timeoutMs: 2000 }, clock);
    expect(r.outcome).toBe('conn_error');
    expect(r.error).toMatch(/ECONNREFUSED/);
  });

  it('cancelling is recorded as cancelled, not as a failure', async () => {
    const scope = new CancelScope();
    const p = send('/hang', { cancel: scope, timeoutMs: 10_000 });
    setTimeout(() => scope.cancel(), 50);
    expect((await p).outcome).toBe('cancelled');
  });

  it('a non-streamed response is ok with usage', async () => {
    expect(await send('/json', { stream: false })).toMatchObject({ outcome: 'ok', outputTokens: 7, tokensSource: 'usage', firstTokenAt: null });
  });
});
