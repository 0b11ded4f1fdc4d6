// Request bodies: a weighted pick from the mix, lengths drawn from its distributions, and
// either a synthetic prompt (a slice of a seeded word corpus, ~4 characters per token) or a
// prompt sampled from the entry's JSONL file. Requests ask for stream_options.include_usage.
// Pure and free of Node APIs: the k6 scenarios bundle this file, so both engines draw their
// requests from the same mix and distributions (the builtin engine reproduces its exact
// sequence from the seed; k6 seeds per VU, and VUs take iterations as they come free).
import { deriveSeed, seededRandom, type Random } from '../util/random.js';
import { sampleLength, type LengthDist } from './distributions.js';

export interface PromptRecord {
  messages?: { role: string; content: string }[];
  prompt?: string;
  /** The output length this prompt had in its dataset (e.g. ShareGPT), used as max_tokens. */
  maxTokens?: number;
}

/** One kind of request in the mix. */
export interface MixItem {
  name: string;
  weight: number;
  api: 'chat' | 'completions';
  stream: boolean;
  model: string | undefined;
  promptTokens: LengthDist;
  maxTokens: LengthDist;
  /** From a JSONL file; null for synthetic prompts of promptTokens length. */
  prompts: PromptRecord[] | null;
  timeoutMs: number;
}

const WORDS =
  'tell me about the history of distributed systems and why consensus is hard when nodes fail and networks partition while clients keep sending requests to every replica in the fleet during the night'.split(
    ' ',
  );
const CHARS_PER_TOKEN = 4;
const CORPUS_CHARS = 1 << 18;

/** The text synthetic prompts are cut from: a string, or (in k6) chunks shared by every VU. */
export interface CorpusSource {
  readonly length: number;
  slice(start: number, end: number): string;
}

/** Builds the seeded word corpus (~256 KiB). Costly in k6's interpreter (~0.3 s): build it once. */
export function buildCorpus(): string {
  const rng = seededRandom(0x5eed);
  const parts: string[] = [];
  let n = 0;
  while (n < CORPUS_CHARS) {
    const w = WORDS[Math.floor(rng.next() * WORDS.length)] as string;
    parts.push(w);
    n += w.length + 1;
  }
  return parts.join(' ');
}

/** The corpus cut into pieces of `size` characters (the last one shorter). */
export function splitCorpus(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/**
 * A corpus held as pieces of `size` characters, read piece by piece: in k6 the pieces live in a
 * SharedArray (built once, one copy for all VUs), and a slice reads only the pieces it spans.
 */
export function chunkedCorpus(chunks: ArrayLike<string>, size: number): CorpusSource {
  const n = chunks.length;
  const length = n === 0 ? 0 : (n - 1) * size + (chunks[n - 1] as string).length;
  return {
    length,
    slice(start: number, end: number): string {
      const from = Math.max(0, start);
      const to = Math.min(length, end);
      if (to <= from) return '';
      const first = Math.floor(from / size);
      const last = Math.floor((to - 1) / size);
      let text = '';
      for (let i = first; i <= last; i++) text += chunks[i] as string;
      return text.slice(from - first * size, to - first * size);
    },
  };
}

let corpus: CorpusSource | null = null;
/** Where synthetic prompts come from from now on (k6's scenarios give the shared one). */
export function useCorpus(source: CorpusSource): void {
  corpus = source;
}
function getCorpus(): CorpusSource {
  if (corpus) return corpus;
  const text = buildCorpus();
  return (corpus = { length: text.length, slice: (a, b) => text.slice(a, b) });
}

/** About `tokens` tokens of text, from a random place in the corpus. */
export function syntheticPrompt(rng: Random, tokens: number): string {
  return syntheticText(syntheticStart(rng, tokens), tokens);
}

/** Where a synthetic prompt of `tokens` tokens starts in the corpus (null: it repeats the whole). The only draw it makes. */
function syntheticStart(rng: Random, tokens: number): number | null {
  const c = getCorpus();
  const len = tokens * CHARS_PER_TOKEN;
  return len >= c.length ? null : Math.floor(rng.next() * (c.length - len));
}

function syntheticText(start: number | null, tokens: number): string {
  const c = getCorpus();
  const len = tokens * CHARS_PER_TOKEN;
  if (start === null) {
    const whole = c.slice(0, c.length);
    return whole.repeat(Math.ceil(len / whole.length) + 1).slice(0, len);
  }
  return c.slice(start, start + len);
}

export function apiPath(api: MixItem['api']): string {
  return api === 'chat' ? '/v1/chat/completions' : '/v1/completions';
}

export interface BuiltRequest {
  mix: string;
  path: string;
  body: string;
  stream: boolean;
  timeoutMs: number;
  /** Estimated prompt tokens (synthetic: as drawn; from a file: characters / 4). */
  promptTokens: number;
  maxTokens: number;
}

const MAX_PROMPT_TOKENS = 131_072;
const MAX_OUTPUT_TOKENS = 32_768;

export class RequestFactory {
  private readonly rng: Random;
  private readonly total: number;

  constructor(
    private readonly w: { mix: MixItem[]; defaultModel: string },
    seed: number,
    label: string,
  ) {
    this.rng = seededRandom(deriveSeed(seed, `requests:${label}`));
    this.total = w.mix.reduce((a, m) => a + m.weight, 0);
  }

  next(): BuiltRequest {
    return this.draw(true) as BuiltRequest;
  }

  /**
   * Passes over the next request without building it: the same draws as next(), so the requests
   * after it are the ones next() would have given (a worker thread skips the arrivals that
   * another one sends).
   */
  skip(): void {
    this.draw(false);
  }

  private draw(build: boolean): BuiltRequest | null {
    let pick = this.rng.next() * this.total;
    let m = this.w.mix[0] as MixItem;
    for (const x of this.w.mix) {
      pick -= x.weight;
      if (pick < 0) {
        m = x;
        break;
      }
    }
    let maxTokens = sampleLength(this.rng, m.maxTokens, MAX_OUTPUT_TOKENS);
    let promptTokens: number;
    let payload: Record<string, unknown> | null = null;
    if (m.prompts) {
      const p = m.prompts[Math.floor(this.rng.next() * m.prompts.length)] as PromptRecord;
      if (!build) return null;
      if (p.maxTokens !== undefined) maxTokens = Math.min(MAX_OUTPUT_TOKENS, p.maxTokens);
      const text = p.messages ? p.messages.map((x) => x.content).join('\n') : (p.prompt as string);
      promptTokens = Math.max(1, Math.ceil(text.length / CHARS_PER_TOKEN));
      payload = m.api === 'chat' ? { messages: p.messages ?? [{ role: 'user', content: p.prompt }] } : { prompt: text };
    } else {
      promptTokens = sampleLength(this.rng, m.promptTokens, MAX_PROMPT_TOKENS);
      const start = syntheticStart(this.rng, promptTokens);
      if (!build) return null;
      const text = syntheticText(start, promptTokens);
      payload = m.api === 'chat' ? { messages: [{ role: 'user', content: text }] } : { prompt: text };
    }
    const model = m.model ?? this.w.defaultModel;
    const body = JSON.stringify({ model, ...payload, max_tokens: maxTokens, stream: m.stream, ...(m.stream ? { stream_options: { include_usage: true } } : {}) });
    return { mix: m.name, path: apiPath(m.api), body, stream: m.stream, timeoutMs: m.timeoutMs, promptTokens, maxTokens };
  }
}

/** The smallest useful inference: one prompt token, one output token, not streamed. */
export function probeBody(api: MixItem['api'], model: string): string {
  return JSON.stringify(api === 'chat' ? { model, messages: [{ role: 'user', content: 'ping' }], max_tokens: 1, stream: false } : { model, prompt: 'ping', max_tokens: 1, stream: false });
}
