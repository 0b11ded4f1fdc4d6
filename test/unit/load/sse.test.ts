import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SseParser, type SseEvent } from '../../../src/load/sse.js';
import { OpenAiStreamReader } from '../../../src/load/openai-stream.js';

const real = (name: string): Buffer => readFileSync(new URL(`../../fixtures/real/sse/${name}`, import.meta.url));
const broken = (name: string): Buffer => readFileSync(new URL(`../../fixtures/sse/${name}`, import.meta.url));

function parseAll(body: Uint8Array, cuts: number[] = []): SseEvent[] {
  const events: SseEvent[] = [];
  const p = new SseParser((e) => events.push(e));
  let last = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    p.push(body.subarray(last, c));
    last = c;
  }
  p.push(body.subarray(last));
  return events;
}

function read(body: Uint8Array, cuts: number[] = []): OpenAiStreamReader {
  const r = new OpenAiStreamReader();
  let last = 0;
  let t = 1000;
  for (const c of [...cuts, body.length].sort((a, b) => a - b)) {
    r.push(body.subarray(last, c), (t += 10));
    last = c;
  }
  return r;
}

describe('SseParser on real llama.cpp streams', () => {
  it('reads the complete chat stream: 16 content chunks, finish chunk with usage, [DONE]', () => {
    const events = parseAll(real('llamacpp-chat-stream.txt'));
    expect(events).toHaveLength(18);
    expect(events.at(-1)?.data).toBe('[DONE]');
    const r = read(real('llamacpp-chat-stream.txt'));
    expect(r.summary.contentChunks).toBe(16);
    expect(r.summary.finishReason).toBe('length');
    expect(r.summary.usageCompletionTokens).toBe(16);
    expect(r.summary.usagePromptTokens).toBe(49);
    expect(r.summary.done).toBe(true);
    expect(r.complete).toBe(true);
    expect(r.summary.protocolError).toBeNull();
  });

  it('reads the legacy completions stream (choices[].text)', () => {
    const r = read(real('llamacpp-completions-stream.txt'));
    expect(r.summary.contentChunks).toBe(16);
    expect(r.summary.finishReason).toBe('length');
    expect(r.summary.usageCompletionTokens).toBe(16);
    expect(r.complete).toBe(true);
  });

  it('sees the stream cut by SIGKILL as incomplete: 115 chunks, no finish, no usage, no [DONE]', () => {
    const body = real('llamacpp-chat-stream-killed.txt');
    const r = read(body);
    expect(r.summary.contentChunks).toBe(115);
    expect(r.summary.finishReason).toBeNull();
    expect(r.summary.usageCompletionTokens).toBeNull();
    expect(r.summary.done).toBe(false);
    expect(r.complete).toBe(false);
    expect(r.summary.protocolError).toBeNull();
  });

  it('gives the same events whatever the chunk boundaries (property)', () => {
    for (const name of ['llamacpp-chat-stream.txt', 'llamacpp-completions-stream.txt', 'llamacpp-chat-stream-killed.txt']) {
      const body = real(name);
      const whole = parseAll(body);
      fc.assert(
        fc.property(fc.uniqueArray(fc.integer({ min: 1, max: body.length - 1 }), { maxLength: 40 }), (cuts) => {
          expect(parseAll(body, cuts)).toEqual(whole);
        }),
        { numRuns: 150 },
      );
    }
  });

  it('splits at every single byte position of the chat stream', () => {
    const body = real('llamacpp-chat-stream.txt');
    const whole = parseAll(body);
    for (let i = 1; i < body.length; i++) expect(parseAll(body, [i])).toEqual(whole);
  });

  it('times ttft from the first content chunk, not from the first byte', () => {
    const body = real('llamacpp-chat-stream.txt');
    const r = new OpenAiStreamReader();
    r.push(Buffer.from(''), 5); // headers-only moment: nothing yet
    const firstEventEnd = body.indexOf('\n\n') + 2;
    r.push(body.subarray(0, 10), 100); // first bytes of the first event: not a token yet
    expect(r.summary.firstContentAt).toBeNull();
    r.push(body.subarray(10, firstEventEnd), 130);
    expect(r.summary.firstContentAt).toBe(130);
    r.push(body.subarray(firstEventEnd), 180);
    expect(r.summary.gaps.length).toBe(15);
  });
});

describe('SseParser edge cases', () => {
  it('handles CRLF, lone CR, CR split from LF across chunks, comments and multi-line data', () => {
    const body = Buffer.from(': comment\r\ndata: a\r\ndata: b\r\rdata:c\revent: x\nid: 7\n\n');
    const whole = parseAll(body);
    expect(whole).toEqual([
      { event: 'message', data: 'a\nb' },
      { event: 'x', data: 'c', id: '7' },
    ]);
    for (let i = 1; i < body.length; i++) expect(parseAll(body, [i])).toEqual(whole);
  });

  it('keeps a multi-byte character split across chunks intact', () => {
    const body = Buffer.from('data: {"choices":[{"delta":{"content":"日本"}}]}\n\n');
    const cut = body.indexOf(Buffer.from('日')) + 1;
    expect(parseAll(body, [cut])[0]?.data).toContain('日本');
  });
});

describe('OpenAiStreamReader on broken streams (test/fixtures/sse)', () => {
  it('names a malformed JSON chunk and keeps counting what came before', () => {
    const r = read(broken('malformed-json.txt'));
    expect(r.summary.protocolError).toMatch(/malformed SSE chunk #3/);
    expect(r.summary.contentChunks).toBe(2);
  });

  it('reports an in-stream error object', () => {
    const r = read(broken('error-object.txt'));
    expect(r.summary.protocolError).toMatch(/server sent an error in the stream/);
  });

  it('a stream ending mid-event is incomplete', () => {
    const r = read(broken('cut-mid-event.txt'));
    expect(r.complete).toBe(false);
    expect(r.summary.contentChunks).toBe(2);
  });
});
