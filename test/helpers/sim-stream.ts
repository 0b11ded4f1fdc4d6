// Client-side views of a simulated node for the GPU-worker-loss tests: a streamed completion
// timed chunk by chunk, a health probe with its own timeout, and "serving again".
import { request } from 'undici';
import { OpenAiStreamReader } from '../../src/load/openai-stream.js';
import { RealClock } from '../../src/util/clock.js';

const clock = new RealClock();

export interface OpenStream {
  reader: OpenAiStreamReader;
  /** Resolves when the stream ends (or is aborted); never rejects. */
  ended: Promise<void>;
  abort(): void;
}

/** Starts a streamed completion and times its chunks as they arrive (RealClock epoch ms). */
export function openStream(base: string, maxTokens: number): OpenStream {
  const reader = new OpenAiStreamReader();
  const ac = new AbortController();
  const ended = (async () => {
    try {
      const res = await request(`${base}/v1/completions`, {
        method: 'POST',
        body: JSON.stringify({ prompt: 'tell me about tensor parallelism', max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } }),
        signal: ac.signal,
      });
      for await (const chunk of res.body) reader.push(chunk as Buffer, clock.now());
    } catch {
      // aborted by the test, or cut by the node
    }
  })();
  return { reader, ended, abort: () => ac.abort() };
}

/** Runs one streamed completion to its end; its content-chunk gaps (ms). */
export async function streamGaps(base: string, maxTokens: number): Promise<number[]> {
  const s = openStream(base, maxTokens);
  await s.ended;
  if (!s.reader.complete) throw new Error(`stream did not complete: ${JSON.stringify(s.reader.summary)}`);
  return s.reader.summary.gaps;
}

/** GET /health, answered within timeoutMs: its status, or 'timeout', or 'refused' (any other failure). */
export async function probeHealth(base: string, timeoutMs: number): Promise<number | 'timeout' | 'refused'> {
  try {
    const r = await request(`${base}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    await r.body.dump();
    return r.statusCode;
  } catch (err) {
    return (err as Error).name === 'TimeoutError' ? 'timeout' : 'refused';
  }
}

/** Polls a one-token completion until it is answered 200; the time it was (epoch ms). Bounded. */
export async function waitServing(base: string, limitMs: number): Promise<number> {
  const deadline = clock.now() + limitMs;
  let last = '';
  for (let i = 0; i < 10_000 && clock.now() < deadline; i++) {
    try {
      const r = await request(`${base}/v1/completions`, { method: 'POST', body: '{"prompt":"x","max_tokens":1}', signal: AbortSignal.timeout(2000) });
      await r.body.dump();
      if (r.statusCode === 200) return clock.now();
      last = `status ${r.statusCode}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await clock.sleep(50);
  }
  throw new Error(`not serving within ${limitMs} ms (last: ${last})`);
}

/** The value of one unlabelled metric in the node's /metrics. */
export async function metric(base: string, name: string): Promise<number> {
  const r = await request(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await r.body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in /metrics:\n${text}`);
  return Number(line.slice(name.length + 1));
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}
