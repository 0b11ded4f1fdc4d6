// OpenAI-compatible HTTP front of the simulated node: /health, /v1/models, /metrics,
// /v1/chat/completions and /v1/completions, streamed (SSE) or not. Like llama.cpp and vLLM,
// a streamed response's headers go out at once and the first token only after prefill.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { BatchEngine, GroupCondition, Sequence } from './engine.js';
import type { SimOptions } from './options.js';

const MAX_BODY = 1 << 20;

export interface NodeState {
  ready: boolean;
  engine: BatchEngine;
  group: { readonly condition: GroupCondition; readonly workersAlive: number };
  opts: SimOptions;
  now: () => number;
  counters: { requests: number; tokens: number; errors: number; leakedBytes: number };
  /** Until when completions fail with 500 (a spontaneous error burst); 0 = not failing. */
  failUntil: number;
  /** Set when the node becomes able to serve (ready, a fault over): the next response start is logged as ground truth. */
  servePending: boolean;
  /** Writes a ground-truth line (TRUTH {json}) to the log. */
  truth: (event: string, detail?: Record<string, unknown>) => void;
}

class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string, type = 'invalid_request_error'): void {
  sendJson(res, status, { error: { code: status, message, type } });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new BadRequest(`request body exceeds ${MAX_BODY} bytes`, 413));
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

interface Completion {
  chat: boolean;
  promptTokens: number;
  maxTokens: number;
  stream: boolean;
  includeUsage: boolean;
  model: string;
}

function approxTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function parseCompletion(raw: string, chat: boolean, model: string): Completion {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch (err) {
    throw new BadRequest(`request body is not JSON: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('request body must be a JSON object');
  const b = body as Record<string, unknown>;
  let promptTokens: number;
  if (chat) {
    if (!Array.isArray(b.messages) || b.messages.length === 0) throw new BadRequest("'messages' must be a non-empty array");
    promptTokens = 0;
    for (const [i, m] of b.messages.entries()) {
      const content = (m as { content?: unknown } | null)?.content;
      if (typeof content !== 'string') throw new BadRequest(`'messages[${i}].content' must be a string`);
      promptTokens += approxTokens(content) + 4;
    }
  } else {
    if (typeof b.prompt !== 'string') throw new BadRequest("'prompt' must be a string");
    promptTokens = approxTokens(b.prompt);
  }
  const max = b.max_completion_tokens ?? b.max_tokens ?? 16;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 32_768) {
    throw new BadRequest(`'max_tokens' must be an integer in [1, 32768], got ${JSON.stringify(max)}`);
  }
  if (b.stream !== undefined && typeof b.stream !== 'boolean') throw new BadRequest("'stream' must be a boolean");
  const so = b.stream_options as { include_usage?: unknown } | undefined;
  if (b.model !== undefined && typeof b.model !== 'string') throw new BadRequest("'model' must be a string");
  return {
    chat,
    promptTokens,
    maxTokens: max,
    stream: b.stream === true,
    includeUsage: so?.include_usage === true,
    model: (b.model as string | undefined) ?? model,
  };
}

/**
 * A fixed number of handler threads, as llama.cpp's HTTP server has: a request waits for a free
 * one and holds it until its response has ended (a stream holds one for its whole length).
 */
class HandlerThreads {
  private busy = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  run(res: ServerResponse, handle: () => void): void {
    const start = (): void => {
      if (res.destroyed) return this.release(); // the client gave up while it waited
      res.once('close', () => this.release());
      handle();
    };
    if (this.busy < this.size) {
      this.busy++;
      start();
    } else this.waiting.push(start);
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy--;
  }
}

/** Simulated GPU memory: the shard's weights plus its share of the KV cache in use (1 MiB per 64 tokens). */
function gpuMemoryMib(state: NodeState, _gpu: number): number {
  return Math.round(state.opts.weightsMb + state.engine.kvTokensInUse / state.opts.gpus / 64);
}

/** Leak-mode memory, held for the life of the process. */
const leaked: Buffer[] = [];
/** A TRUTH line each time this much more is held. */
const LEAK_TRUTH_STEP = 16 * 1024 * 1024;

/** The leak mode's share of a request: memory allocated, written (so it is resident) and kept. */
function leak(state: NodeState): void {
  const bytes = Math.round(state.opts.leakKbPerRequest * 1024);
  if (bytes <= 0) return;
  leaked.push(Buffer.alloc(bytes, 0x5a)); // alloc with a fill touches every page
  const before = state.counters.leakedBytes;
  state.counters.leakedBytes += bytes;
  if (Math.floor(state.counters.leakedBytes / LEAK_TRUTH_STEP) > Math.floor(before / LEAK_TRUTH_STEP)) {
    state.truth('leak', { held_mib: Math.round(state.counters.leakedBytes / 1048576), rss_mib: Math.round(process.memoryUsage.rss() / 1048576) });
  }
}

export function createSimServer(state: NodeState): Server {
  let nextId = 0;
  const threads = state.opts.httpThreads > 0 ? new HandlerThreads(state.opts.httpThreads) : null;

  async function completion(req: IncomingMessage, res: ServerResponse, chat: boolean): Promise<void> {
    const c = parseCompletion(await readBody(req), chat, state.opts.model);
    if (!state.ready) return sendError(res, 503, 'Loading model', 'unavailable_error');
    if (!state.engine.hasRoom) return sendError(res, 503, 'server overloaded: request queue full', 'unavailable_error');
    if (state.failUntil > state.now()) {
      state.counters.errors++;
      return sendError(res, 500, 'CUDA error: an illegal memory access was encountered', 'internal_error');
    }
    state.counters.requests++;
    leak(state);
    const served = (): void => {
      if (!state.servePending) return;
      state.servePending = false;
      state.truth('served');
    };
    const id = `${chat ? 'chatcmpl' : 'cmpl'}-sim-${++nextId}`;
    const created = Math.floor(state.now() / 1000);
    const object = chat ? 'chat.completion.chunk' : 'text_completion';
    const usage = (n: number) => ({ prompt_tokens: c.promptTokens, completion_tokens: n, total_tokens: c.promptTokens + n });
    let produced = 0;
    let text = '';

    if (c.stream) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      res.flushHeaders();
    }
    const write = (chunk: unknown): void => {
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    };
    const choice = (token: string | null, finish: string | null) =>
      chat
        ? { index: 0, delta: token === null ? {} : produced === 1 ? { role: 'assistant', content: token } : { content: token }, finish_reason: finish }
        : { index: 0, text: token ?? '', logprobs: null, finish_reason: finish };

    const seq: Sequence = {
      promptTokens: c.promptTokens,
      maxTokens: c.maxTokens,
      onToken(token, _index, at) {
        produced++;
        // a stream serves with its first token (its headers went out at once)
        if (c.stream && produced === 1) served();
        state.counters.tokens++;
        if (c.stream) write({ id, object, created, model: c.model, choices: [choice(token, null)], sim_ts: at });
        else text += token;
      },
      onFinish(reason) {
        if (c.stream) {
          write({ id, object, created, model: c.model, choices: [choice(null, reason)], sim_ts: state.now() });
          if (c.includeUsage) write({ id, object, created, model: c.model, choices: [], usage: usage(produced) });
          res.end('data: [DONE]\n\n');
        } else if (chat) {
          served();
          sendJson(res, 200, {
            id,
            object: 'chat.completion',
            created,
            model: c.model,
            choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: reason }],
            usage: usage(produced),
          });
        } else {
          served();
          sendJson(res, 200, { id, object: 'text_completion', created, model: c.model, choices: [{ index: 0, text, logprobs: null, finish_reason: reason }], usage: usage(produced) });
        }
      },
    };
    res.on('close', () => {
      if (!res.writableFinished) state.engine.cancel(seq);
    });
    state.engine.submit(seq);
  }

  const server = createServer((req, res) => {
    if (threads) threads.run(res, () => handle(req, res));
    else handle(req, res);
  });
  server.keepAliveTimeout = 5000;
  return server;

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const route = `${req.method} ${path}`;
    const done = (p: Promise<void>): void => {
      p.catch((err: unknown) => {
        state.counters.errors++;
        if (res.headersSent) return void res.destroy();
        if (err instanceof BadRequest) sendError(res, err.status, err.message);
        else sendError(res, 500, `internal error: ${(err as Error).message}`, 'internal_error');
      });
    };
    switch (route) {
      case 'GET /health':
        // A hung tensor-parallel group takes the engine's health check with it: the request
        // is held and never answered (the prober's timeout is what tells).
        if (state.group.condition === 'hung') return;
        return state.ready ? sendJson(res, 200, { status: 'ok' }) : sendError(res, 503, 'Loading model', 'unavailable_error');
      case 'GET /v1/models':
        return sendJson(res, 200, { object: 'list', data: [{ id: state.opts.model, object: 'model', owned_by: 'gauntlet-sim', created: 0 }] });
      case 'GET /metrics':
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
        return void res.end(
          [
            `sim_ready ${state.ready ? 1 : 0}`,
            `sim_gpus ${state.opts.gpus}`,
            `sim_workers_alive ${state.group.workersAlive}`,
            `sim_requests_running ${state.engine.running}`,
            `sim_requests_waiting ${state.engine.queued}`,
            `sim_requests_total ${state.counters.requests}`,
            `sim_generation_tokens_total ${state.counters.tokens}`,
            `sim_leaked_bytes ${state.counters.leakedBytes}`,
            // vLLM's names, so Gauntlet's telemetry reads the simulator as it reads vLLM
            `vllm:num_requests_running{model_name="${state.opts.model}"} ${state.engine.running}`,
            `vllm:num_requests_waiting{model_name="${state.opts.model}"} ${state.engine.queued}`,
            `vllm:gpu_cache_usage_perc{model_name="${state.opts.model}"} ${Math.min(1, state.engine.kvTokensInUse / state.opts.kvTokens)}`,
            // GPU framebuffer in use per GPU, MiB, as NVIDIA's DCGM exporter names it
            ...Array.from({ length: state.opts.gpus }, (_, i) => `DCGM_FI_DEV_FB_USED{gpu="${i}"} ${gpuMemoryMib(state, i)}`),
            '',
          ].join('\n'),
        );
      case 'POST /v1/chat/completions':
        return done(completion(req, res, true));
      case 'POST /v1/completions':
        return done(completion(req, res, false));
      default:
        return sendError(res, 404, `no route ${route}`, 'not_found_error');
    }
  }
}
