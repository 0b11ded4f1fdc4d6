// Reads an OpenAI-compatible streamed completion (chat or legacy completions) event by event
// and keeps what the metrics need: when the first content token came, every gap between
// content chunks, the finish reason, the server's usage, and whether [DONE] arrived.
// A stream that ends without a finish reason or [DONE] is truncated — that is the only sign
// a server killed mid-stream leaves (see ../shared/fixtures/sse/llamacpp-chat-stream-killed.txt).
import { SseParser, type SseEvent } from './sse.js';

export interface StreamSummary {
  firstContentAt: number | null;
  lastContentAt: number | null;
  contentChunks: number;
  /** Gaps between consecutive content chunks, ms. */
  gaps: number[];
  finishReason: string | null;
  usageCompletionTokens: number | null;
  usagePromptTokens: number | null;
  done: boolean;
  /** First protocol problem seen (malformed JSON, an in-stream error object), if any. */
  protocolError: string | null;
  events: number;
  /** Server timestamps of content chunks (when the stream carries them; see stampKey). */
  stamps: number[];
}

export class OpenAiStreamReader {
  readonly summary: StreamSummary = {
    firstContentAt: null,
    lastContentAt: null,
    contentChunks: 0,
    gaps: [],
    finishReason: null,
    usageCompletionTokens: null,
    usagePromptTokens: null,
    done: false,
    protocolError: null,
    events: 0,
    stamps: [],
  };
  private readonly parser: SseParser;
  private now = 0;

  /**
   * @param keepGaps keep every inter-chunk gap (not only the count)
   * @param stampKey a numeric top-level field in which the server stamps each chunk (the
   *   simulator's `sim_ts`): kept per content chunk, for measuring the client's timing error
   */
  constructor(
    private readonly keepGaps = true,
    private readonly stampKey: string | null = null,
  ) {
    this.parser = new SseParser((ev) => this.onEvent(ev));
  }

  /** Feeds body bytes that arrived at time `at` (epoch ms). */
  push(chunk: Uint8Array, at: number): void {
    this.now = at;
    this.parser.push(chunk);
  }

  /** True when the stream reached its proper end (a finish reason, or [DONE]). */
  get complete(): boolean {
    return this.summary.done || this.summary.finishReason !== null;
  }

  private onEvent(ev: SseEvent): void {
    const s = this.summary;
    s.events++;
    if (ev.data === '[DONE]') {
      s.done = true;
      return;
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(ev.data);
    } catch (err) {
      s.protocolError ??= `malformed SSE chunk #${s.events}: ${(err as Error).message}: ${truncate(ev.data)}`;
      return;
    }
    if (!isRecord(chunk)) {
      s.protocolError ??= `SSE chunk #${s.events} is not a JSON object: ${truncate(ev.data)}`;
      return;
    }
    if (chunk.error !== undefined) {
      s.protocolError ??= `server sent an error in the stream: ${truncate(JSON.stringify(chunk.error))}`;
      return;
    }
    const usage = chunk.usage;
    if (isRecord(usage)) {
      if (typeof usage.completion_tokens === 'number') s.usageCompletionTokens = usage.completion_tokens;
      if (typeof usage.prompt_tokens === 'number') s.usagePromptTokens = usage.prompt_tokens;
    }
    const choices = chunk.choices;
    if (!Array.isArray(choices)) return;
    for (const choice of choices) {
      if (!isRecord(choice)) continue;
      const delta = isRecord(choice.delta) ? choice.delta : undefined;
      const text = delta ? delta.content : choice.text;
      if (typeof text === 'string' && text.length > 0) {
        this.content();
        if (this.stampKey !== null && typeof chunk[this.stampKey] === 'number') s.stamps.push(chunk[this.stampKey] as number);
      }
      if (typeof choice.finish_reason === 'string') s.finishReason = choice.finish_reason;
    }
  }

  private content(): void {
    const s = this.summary;
    if (s.firstContentAt === null) {
      s.firstContentAt = this.now;
    } else if (this.keepGaps && s.lastContentAt !== null) {
      s.gaps.push(this.now - s.lastContentAt);
    }
    s.lastContentAt = this.now;
    s.contentChunks++;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function truncate(s: string, n = 120): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
