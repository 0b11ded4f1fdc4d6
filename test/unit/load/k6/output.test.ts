import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { K6OutputParser, parseK6Time, type K6ParseOptions } from '../../../../src/load/k6/output.js';
import type { RequestRecord } from '../../../../src/load/types.js';

const real = (name: string): string[] => readFileSync(new URL(`../../../fixtures/real/k6/${name}`, import.meta.url), 'utf8').split('\n');

function parse(lines: string[], opts: Partial<K6ParseOptions> = {}) {
  const records: RequestRecord[] = [];
  const samples: { node: string; metric: string; ms: number }[] = [];
  const misses: number[] = [];
  let tokens = 0;
  const problems: string[] = [];
  /** The sink's calls in order, by name (the load's span: started first, ended last). */
  const calls: [string, number][] = [];
  const p = new K6OutputParser(
    { nodes: ['node-a'], scenarioNode: {}, recordsFrom: 'http_reqs', ttftFrom: 'ttfb', ...opts },
    {
      started: (at) => calls.push(['started', at]),
      ended: (at) => calls.push(['ended', at]),
      planned: (_n, at) => calls.push(['planned', at]),
      record: (r) => (records.push(r), calls.push(['record', r.endAt])),
      scheduleMiss: (_n, _at, c) => misses.push(c),
      sample: (node, metric, _at, ms) => samples.push({ node, metric, ms }),
      tokens: (_n, _at, c) => (tokens += c),
    },
    (m) => problems.push(m),
  );
  for (const l of lines) p.line(l);
  p.end();
  return { records, samples, misses, tokens, problems, calls, stats: p.stats };
}

const count = (rs: RequestRecord[]): Record<string, number> => rs.reduce<Record<string, number>>((a, r) => ((a[r.outcome] = (a[r.outcome] ?? 0) + 1), a), {});

describe('k6 JSON output (real k6 v0.49 captures)', () => {
  it('parses nanosecond RFC 3339 times', () => {
    expect(parseK6Time('2026-11-22T04:10:53.631022459Z') - Date.parse('2026-11-22T04:10:53.631Z')).toBeCloseTo(0.022459, 3); // epoch ms doubles resolve ~0.0004 ms
    expect(parseK6Time('2017-05-09T14:34:45.625742514+02:00')).toBeCloseTo(Date.parse('2017-05-09T12:34:45.625Z') + 0.742514, 4);
    expect(parseK6Time('nope')).toBeNaN();
  });

  it('k6/http, healthy: one record per request, all ok, ttft approximated by time to first byte', () => {
    const { records, problems, stats } = parse(real('chat-nonstream.out.jsonl'));
    expect(problems).toEqual([]);
    expect(records).toHaveLength(26);
    expect(count(records)).toEqual({ ok: 26 });
    const r = records[0] as RequestRecord;
    expect(r.node).toBe('node-a');
    expect(r.status).toBe(200);
    expect(r.ttftMs).toBeGreaterThan(0);
    expect(r.ttftMs as number).toBeLessThanOrEqual(r.e2eMs);
    expect(r.endAt - r.sentAt).toBeCloseTo(r.e2eMs, 2);
    expect(r.queueDelayMs).toBeNull();
    expect(stats.malformed).toBe(0);
  });

  it("a k6 on another host: its clock's offset is taken off every time (the load's span, sends, ends), durations unchanged", () => {
    const lines = real('chat-nonstream.out.jsonl');
    const here = parse(lines);
    const there = parse(lines, { clockShiftMs: -1234.5 });
    expect(there.records).toHaveLength(here.records.length);
    for (let i = 0; i < here.records.length; i++) {
      const a = here.records[i] as RequestRecord;
      const b = there.records[i] as RequestRecord;
      expect(b.sentAt).toBeCloseTo(a.sentAt - 1234.5, 6);
      expect(b.endAt).toBeCloseTo(a.endAt - 1234.5, 6);
      expect(b.e2eMs).toBeCloseTo(a.e2eMs, 9);
      expect(b.ttftMs).toBe(a.ttftMs);
    }
    expect(there.calls.map(([k, at]) => [k, at + 1234.5])).toEqual(here.calls.map(([k, at]) => [k, expect.closeTo(at, 6)]));
  });

  it('k6/http, target killed mid-run: in-flight resets and refused connections are conn_error; dropped iterations are schedule misses', () => {
    const { records, misses } = parse(real('chat-killed.out.jsonl'));
    expect(records).toHaveLength(25);
    expect(count(records)).toEqual({ ok: 1, conn_error: 24 });
    expect(records.filter((r) => r.error === 'dial: connection refused')).toHaveLength(14);
    expect(records.filter((r) => r.error === 'read: connection reset by peer')).toHaveLength(5);
    const kill = Date.parse('2026-11-22T04:10:53.618Z');
    // the requests cut by the kill were sent before it and ended right after it
    for (const r of records.filter((x) => x.error === 'EOF' || x.error === 'read: connection reset by peer')) {
      expect(r.sentAt).toBeLessThan(kill);
      expect(r.endAt).toBeGreaterThan(kill);
      expect(r.endAt - kill).toBeLessThan(100);
    }
    expect(misses.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('xk6-sse, healthy: records from the extension, ttft and inter-token gaps from the script\'s metrics, tokens from its counter', () => {
    const { records, samples, tokens } = parse(real('chat-sse.out.jsonl'), { ttftFrom: 'metric' });
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((r) => r.outcome === 'ok' && r.ttftMs === null)).toBe(true);
    const ttft = samples.filter((s) => s.metric === 'ttft');
    expect(ttft.length).toBeGreaterThan(0);
    expect(samples.filter((s) => s.metric === 'itl').length).toBeGreaterThan(ttft.length);
    expect(tokens).toBeGreaterThan(0);
  });

  it('xk6-sse, target killed: no status tag means no response; cut streams still look like 200 (only a finish_reason check sees them)', () => {
    const { records } = parse(real('chat-sse-killed.out.jsonl'), { ttftFrom: 'metric' });
    expect(records).toHaveLength(26);
    expect(count(records)).toEqual({ ok: 8, conn_error: 18 });
    expect(records.filter((r) => r.outcome === 'conn_error').every((r) => r.error === 'no response (k6 gave no status)')).toBe(true);
  });

  it('names each malformed line and keeps every good one', () => {
    const { records, problems, stats } = parse(readFileSync(new URL('../../../fixtures/k6/malformed.jsonl', import.meta.url), 'utf8').split('\n'));
    expect(problems).toEqual([
      expect.stringMatching(/^k6 output line 4: not JSON/),
      expect.stringMatching(/^k6 output line 5: not JSON/),
      expect.stringMatching(/^k6 output line 6: type: /),
      expect.stringMatching(/^k6 output line 7: data\.time: /),
      'k6 output line 8: data.time: not an RFC 3339 time: yesterday',
    ]);
    expect(stats.malformed).toBe(5);
    expect(records.map((r) => [r.outcome, r.status, r.e2eMs])).toEqual([
      ['ok', 200, 120.5],
      ['http_error', 503, 5],
    ]);
  });

  it("Gauntlet's own scenario: records from gauntlet_request with the outcome the script judged", () => {
    const pt = (metric: string, time: string, value: number, tags: Record<string, string>): string => JSON.stringify({ type: 'Point', metric, data: { time, value, tags } });
    const { records, samples } = parse(
      [
        pt('http_reqs', '2026-11-22T05:00:00.100Z', 1, { node: 'node-a', status: '200' }),
        pt('http_req_duration', '2026-11-22T05:00:00.100Z', 90, { node: 'node-a', status: '200' }),
        pt('gauntlet_request', '2026-11-22T05:00:00.101Z', 95, { node: 'node-a', mix: 'chat', outcome: 'truncated', status: '200', attempt: '1', final: 'false' }),
        pt('gauntlet_request', '2026-11-22T05:00:00.500Z', 80, { node: 'node-a', mix: 'chat', outcome: 'ok', status: '200', attempt: '2', final: 'true' }),
        pt('gauntlet_ttft', '2026-11-22T05:00:00.450Z', 30, { node: 'node-a', mix: 'chat' }),
      ],
      { recordsFrom: 'gauntlet_request', ttftFrom: 'metric' },
    );
    expect(records.map((r) => [r.outcome, r.attempt, r.final, r.mix])).toEqual([
      ['truncated', 1, false, 'chat'],
      ['ok', 2, true, 'chat'],
    ]);
    expect(samples).toEqual([{ node: 'node-a', metric: 'ttft', ms: 30 }]);
  });

  it("gauntlet_request metadata (k6's unindexed per-sample values) says when the response began and the first token came", () => {
    const pt = (time: string, value: number, metadata?: Record<string, unknown>): string =>
      JSON.stringify({ type: 'Point', metric: 'gauntlet_request', data: { time, value, tags: { node: 'node-a', mix: 'chat', outcome: 'ok', status: '200', attempt: '1', final: 'true' }, ...(metadata ? { metadata } : {}) } });
    const end = Date.parse('2026-11-22T05:00:01.000Z');
    const { records, problems, samples } = parse(
      [
        pt('2026-11-22T05:00:01.000Z', 400, { response_ms: '12', first_token_ms: '150' }),
        pt('2026-11-22T05:00:01.000Z', 400), // an older scenario: no metadata
        pt('2026-11-22T05:00:01.000Z', 400, { response_ms: 'soon', first_token_ms: '900' }),
      ],
      { recordsFrom: 'gauntlet_request', ttftFrom: 'metric' },
    );
    expect(records.map((r) => [r.sentAt, r.respondedAt, r.firstTokenAt, r.endAt, r.ttftMs])).toEqual([
      [end - 400, end - 400 + 12, end - 400 + 150, end, null], // ttft itself is counted from gauntlet_ttft, once
      [end - 400, null, null, end, null],
      [end - 400, null, null, end, null],
    ]);
    expect(samples).toEqual([]);
    expect(problems).toEqual([
      'k6 output line 3: gauntlet_request metadata.response_ms: expected ms between 0 and the request\'s 400 ms; got "soon" (dropped, the request kept)',
      'k6 output line 3: gauntlet_request metadata.first_token_ms: expected ms between 0 and the request\'s 400 ms; got "900" (dropped, the request kept)',
    ]);
  });

  it('a real k6 v0.49 writes metadata next to tags, and the parser reads it', () => {
    // Captured from ../shared/bin/k6 (v0.49, xk6-sse) running exec.vu.metrics.metadata['rs'] = …; t.add(…).
    const line = '{"metric":"gauntlet_request","type":"Point","data":{"time":"2026-12-02T03:02:34.971310255Z","value":102,"tags":{"group":"","node":"node-a","scenario":"default","outcome":"ok","status":"200"},"metadata":{"response_ms":"14.5"}}}';
    const { records, problems } = parse([line], { recordsFrom: 'gauntlet_request', ttftFrom: 'metric' });
    expect(problems).toEqual([]);
    expect((records[0]?.respondedAt as number) - (records[0]?.sentAt as number)).toBeCloseTo(14.5, 3);
  });

  it('scenario v2 (metadata gauntlet: "2"): ttft, tokens and error text on the record, and its ttft/tpot/token samples not counted again', () => {
    const req = (value: number, tags: Record<string, string>, metadata: Record<string, string>): string =>
      JSON.stringify({ type: 'Point', metric: 'gauntlet_request', data: { time: '2026-11-22T05:00:01.000Z', value, tags: { node: 'node-a', mix: 'chat', attempt: '1', final: 'true', ...tags }, metadata } });
    const sample = (metric: string, value: number): string => JSON.stringify({ type: 'Point', metric, data: { time: '2026-11-22T05:00:01.000Z', value, tags: { node: 'node-a', mix: 'chat' } } });
    const { records, samples, tokens, problems } = parse(
      [
        req(300, { outcome: 'ok', status: '200' }, { gauntlet: '2', response_ms: '3', first_token_ms: '64', output_tokens: '8', tokens_source: 'usage', queue_ms: '12' }),
        sample('gauntlet_ttft', 64),
        sample('gauntlet_tpot', 33),
        sample('gauntlet_output_tokens', 8),
        sample('gauntlet_itl', 20), // gaps are not on the record: still counted from here
        req(2, { outcome: 'conn_error', status: '0' }, { gauntlet: '2', error: 'dial tcp 127.0.0.1:9: connect: connection refused' }),
        req(90, { outcome: 'truncated', status: '200' }, { gauntlet: '2', response_ms: '2', first_token_ms: '60', error: 'response cut off: unexpected EOF', output_tokens: 'x' }),
      ],
      { recordsFrom: 'gauntlet_request', ttftFrom: 'metric' },
    );
    expect(records.map((r) => [r.outcome, r.ttftMs, r.outputTokens, r.tokensSource, r.error])).toEqual([
      ['ok', 64, 8, 'usage', null],
      ['conn_error', null, null, null, 'dial tcp 127.0.0.1:9: connect: connection refused'],
      ['truncated', 60, null, null, 'response cut off: unexpected EOF'],
    ]);
    expect(samples).toEqual([{ node: 'node-a', metric: 'itl', ms: 20 }]);
    expect(tokens).toBe(0);
    // k6 started the first 12 ms late against its own schedule: queue delay, and the scheduled send before the actual one.
    expect([records[0]?.queueDelayMs, (records[0]?.sentAt as number) - (records[0]?.scheduledAt as number)]).toEqual([12, 12]);
    expect(records[1]?.queueDelayMs).toBeNull();
    expect(problems).toEqual(['k6 output line 7: gauntlet_request metadata.output_tokens: expected a whole number; got "x" (dropped, the request kept)']);
  });

  it("the load's span: it begins with k6's first arrival (not when k6 was launched) and ends with its last request", () => {
    const at = (ms: number): string => new Date(Date.parse('2026-11-22T05:00:00.000Z') + ms).toISOString();
    const planned = (ms: number): string => JSON.stringify({ type: 'Point', metric: 'gauntlet_planned', data: { time: at(ms), value: 1, tags: { node: 'node-a', scenario: 'node-a' } } });
    const dropped = (ms: number): string => JSON.stringify({ type: 'Point', metric: 'dropped_iterations', data: { time: at(ms), value: 1, tags: { scenario: 'node-a' } } });
    const req = (ms: number, e2e: number): string =>
      JSON.stringify({ type: 'Point', metric: 'gauntlet_request', data: { time: at(ms), value: e2e, tags: { node: 'node-a', outcome: 'ok', status: '200' }, metadata: { gauntlet: '2', queue_ms: '2' } } });
    const vus = JSON.stringify({ type: 'Point', metric: 'vus', data: { time: at(-900), value: 1, tags: {} } });
    const t0 = Date.parse(at(0));
    // k6's vus gauge runs from before the scenario starts: it is not the load.
    const own = parse([vus, planned(0), planned(100), req(300, 280), dropped(200), req(900, 500), vus], { recordsFrom: 'gauntlet_request', ttftFrom: 'metric' });
    expect(own.calls[0]).toEqual(['started', t0]);
    expect(own.calls.filter((c) => c[0] === 'started')).toHaveLength(1);
    expect(own.calls.at(-1)).toEqual(['ended', t0 + 900]);
    // A script that counts no arrivals: the load begins with the first request's send.
    const theirs = parse(real('chat-nonstream.out.jsonl'));
    const first = Math.min(...theirs.records.map((r) => r.sentAt));
    expect(theirs.calls[0]?.[0]).toBe('started');
    expect(theirs.calls[0]?.[1]).toBeCloseTo(theirs.records[0]?.sentAt as number, 6);
    expect(theirs.calls[0]?.[1] as number).toBeLessThan(first + 50); // records come as they end, not strictly by send
    expect(theirs.calls.at(-1)).toEqual(['ended', Math.max(...theirs.records.map((r) => r.endAt))]);
    // Nothing at all: no span.
    expect(parse([vus]).calls).toEqual([]);
  });
});
