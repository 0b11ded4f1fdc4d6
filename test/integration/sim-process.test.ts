// The simulator as a plain process: what a real server does, including losing a GPU worker.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { simBundlePath } from '../../src/docker/sim-image.js';
import { OpenAiStreamReader } from '../../src/load/openai-stream.js';
import { freePort } from '../../src/util/ports.js';
import { watchLateness } from '../helpers/timing.js';

const procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
});

async function startSim(args: string[]): Promise<{ proc: ChildProcess; base: string; output: () => string }> {
  if (!existsSync(simBundlePath())) throw new Error(`${simBundlePath()} missing: run npm run build`);
  const port = await freePort();
  const proc = spawn(process.execPath, [simBundlePath(), '--port', String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, base: `http://127.0.0.1:${port}`, output: () => out };
}

async function waitHealthy(base: string, limitMs = 15_000): Promise<number[]> {
  const statuses: number[] = [];
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    try {
      const r = await request(`${base}/health`);
      await r.body.dump();
      statuses.push(r.statusCode);
      if (r.statusCode === 200) return statuses;
    } catch {
      statuses.push(0);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not healthy within ${limitMs} ms: ${statuses.slice(-5).join(',')}`);
}

describe('simulator process', () => {
  it('is 503 while loading the model, then healthy; lists its model', async () => {
    const { base } = await startSim(['--gpus', '2', '--load-ms', '800']);
    const statuses = await waitHealthy(base);
    expect(statuses).toContain(503);
    expect(statuses.at(-1)).toBe(200);
    const models = (await (await request(`${base}/v1/models`)).body.json()) as { data: { id: string }[] };
    expect(models.data[0]?.id).toBe('sim-llama');
  });

  it('streams like an OpenAI server: headers first, paced tokens, finish_reason, usage chunk, [DONE]', async () => {
    const { base } = await startSim(['--gpus', '2', '--load-ms', '0', '--ttft-ms', '120', '--itl-ms', '10', '--jitter', '0']);
    await waitHealthy(base);
    // The clock the simulator stamps each chunk's sim_ts with (epoch ms, sub-ms).
    const now = (): number => performance.timeOrigin + performance.now();
    const timers = watchLateness(now);
    const sent = now();
    const res = await request(`${base}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }], max_tokens: 8, stream: true, stream_options: { include_usage: true } }),
    });
    const headersAt = now();
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    const reader = new OpenAiStreamReader(true, 'sim_ts');
    for await (const chunk of res.body) reader.push(chunk as Buffer, now());
    const busy = timers.stop().worst(sent, headersAt);
    expect(reader.summary).toMatchObject({ contentChunks: 8, finishReason: 'length', usageCompletionTokens: 8, done: true, protocolError: null });
    // Like llama.cpp and vLLM: the headers go out at once, the first token after prefill. By
    // the simulator's own stamp, the first token was made at least the prefill time after we
    // sent, and the headers had reached us before it was made (less however long this process
    // was too busy to look: on a busy machine both can wait in the socket together).
    const firstMade = reader.summary.stamps[0] as number;
    process.stderr.write(`sim stream: first token made ${(firstMade - sent).toFixed(1)} ms after the send, headers seen ${(headersAt - sent).toFixed(1)} ms after it (loop busy up to ${busy.toFixed(1)} ms meanwhile)\n`);
    expect(reader.summary.stamps).toHaveLength(8);
    expect(firstMade - sent).toBeGreaterThanOrEqual(115);
    expect(headersAt - busy).toBeLessThan(firstMade);
    expect((reader.summary.firstContentAt as number) - sent).toBeGreaterThanOrEqual(115);
  });

  it('answers bad requests with a 400 naming the field', async () => {
    const { base } = await startSim(['--load-ms', '0']);
    await waitHealthy(base);
    const res = await request(`${base}/v1/chat/completions`, { method: 'POST', body: '{"messages":[{"role":"user","content":"x"}],"max_tokens":0}' });
    expect(res.statusCode).toBe(400);
    expect(((await res.body.json()) as { error: { message: string } }).error.message).toBe("'max_tokens' must be an integer in [1, 32768], got 0");
  });

  it('losing one GPU worker takes the whole node down with a non-zero exit, like a broken tensor-parallel group', async () => {
    const { proc, base, output } = await startSim(['--gpus', '4', '--load-ms', '0']);
    await waitHealthy(base);
    const match = /shard pids (\d+),(\d+),(\d+),(\d+)/.exec(output());
    expect(match).not.toBeNull();
    const exited = once(proc, 'exit');
    process.kill(Number(match?.[3]), 'SIGKILL');
    const [code] = (await exited) as [number | null];
    expect(code).toBe(1);
    expect(output()).toMatch(/FATAL GPU worker rank 2 \(pid \d+\) exited \(SIGKILL\); tensor-parallel group is broken/);
  });

  it('a stopped (hung) worker trips the step watchdog', async () => {
    const { proc, base, output } = await startSim(['--gpus', '2', '--load-ms', '0', '--step-timeout-ms', '300', '--itl-ms', '5']);
    await waitHealthy(base);
    const pid = Number(/shard pids (\d+),(\d+)/.exec(output())?.[2]);
    process.kill(pid, 'SIGSTOP');
    const exited = once(proc, 'exit');
    const res = request(`${base}/v1/completions`, { method: 'POST', body: '{"prompt":"x","max_tokens":50}' }).catch((e: Error) => e);
    const [code] = (await exited) as [number | null];
    process.kill(pid, 'SIGKILL');
    expect(code).toBe(1);
    expect(output()).toMatch(/not acknowledged by all 2 shards within 300 ms \(watchdog timeout\)/);
    expect(await res).toBeInstanceOf(Error);
  });

  it('refuses a bad option naming it', async () => {
    const { proc, output } = await startSim(['--gpus', 'many']);
    const [code] = (await once(proc, 'exit')) as [number | null];
    expect(code).toBe(2);
    expect(output()).toContain('option --gpus: expected an integer in [1, 64], got "many"');
  });
});
