// The load-engine contract: an engine runs a workload until its signal aborts or the
// duration ends, and hands one record per request to the sink as each request ends.
import type { Outcome } from '../store/types.js';

export interface LoadTarget {
  node: string;
  endpoint: string;
}

export interface Workload {
  targets: LoadTarget[];
  /** Requests per second in total, split evenly over the targets. */
  rate: number;
  arrival: 'constant' | 'poisson';
  api: 'chat' | 'completions';
  model: string;
  promptTokens: number;
  maxTokens: number;
  stream: boolean;
  timeoutMs: number;
  durationMs: number;
  seed: number;
}

/** What one response looked like, as the HTTP client saw it (epoch ms). */
export interface ResponseTiming {
  sentAt: number;
  /** When the response began (status line and headers arrived); null when none came. */
  respondedAt: number | null;
  firstTokenAt: number | null;
  endAt: number;
  outcome: Outcome;
  status: number | null;
  outputTokens: number | null;
  tokensSource: 'usage' | 'chunks' | null;
  chunks: number;
  itlMaxMs: number | null;
  error: string | null;
}

/** One load request, as the engine hands it to the sink. */
export interface RequestRecord extends ResponseTiming {
  node: string;
  scheduledAt: number;
  ttftMs: number | null;
  e2eMs: number;
  queueDelayMs: number;
}

export interface LoadSink {
  record(r: RequestRecord): void;
}

export interface LoadProgress {
  scheduled: number;
  inFlight: number;
  done: number;
  ok: number;
  failed: number;
}

export interface LoadEngine {
  readonly name: string;
  /** Live counters for progress display. */
  readonly progress: LoadProgress;
  /** Resolves when the schedule has ended and every request has ended (or been cancelled). */
  run(workload: Workload, signal: AbortSignal, sink: LoadSink): Promise<void>;
}
