// The load-engine contract: an engine runs a workload until its signal aborts or the
// duration ends, and hands one record per request attempt to the sink as each one ends.
import type { Outcome } from './outcome.js';
import type { Workload } from './workload.js';

export interface LoadTarget {
  node: string;
  endpoint: string;
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

/** One attempt of one scheduled request, as the engine hands it to the sink. */
export interface RequestRecord extends ResponseTiming {
  node: string;
  /** The scheduled request this attempt belongs to (per run, from 1). */
  seq: number;
  /** 1 for the first try; retries count up. */
  attempt: number;
  /** The last attempt of its request: its outcome is what the client finally got. */
  final: boolean;
  mix: string;
  scheduledAt: number;
  promptTokens: number | null;
  maxTokens: number | null;
  ttftMs: number | null;
  e2eMs: number;
  /** Actual − scheduled send of the first attempt; null where the engine cannot know it. */
  queueDelayMs: number | null;
  /** Every gap between content chunks (ms), aggregated into histograms, not stored row by row. */
  gaps: number[];
  /** The server's own per-chunk timestamps, only when the engine was asked for them (benchmarks). */
  serverStamps?: number[];
}

export interface LoadSink {
  /**
   * The load began: when the first arrival was due (epoch ms), called once before anything
   * else. The builtin engine begins at once; k6 needs a moment (bundle, VU start-up) first, so
   * fault times, windows and exposure count from here, not from when the engine was started.
   */
  started?(at: number): void;
  /** The load is over: when its last request ended or its last arrival was due (epoch ms). */
  ended?(at: number): void;
  record(r: RequestRecord): void;
  /** Arrivals the engine could not start on time and dropped (k6's dropped_iterations). */
  scheduleMiss?(node: string, at: number, count: number): void;
  /**
   * Arrivals the schedule had due at `at`, whatever became of them (sent, missed, cut off by
   * the end or by Ctrl-C): the total every arrival is accounted against.
   */
  planned?(node: string, at: number, count: number): void;
  /**
   * A latency sample not joined to a record (k6 reports ttft and inter-token gaps as metric
   * samples of their own). Records that carry the same values must not also send them here.
   */
  sample?(node: string, metric: 'ttft' | 'itl' | 'tpot', at: number, ms: number): void;
  /** Output tokens of successful responses not carried on records (k6 counters). */
  tokens?(node: string, at: number, count: number, source: 'usage' | 'chunks'): void;
  /**
   * The node sent data on a response still in flight (at most a few times a second per node):
   * it is alive, whatever its health endpoint says. Tells a busy server from a hung one.
   */
  alive?(node: string, at: number): void;
  /**
   * A load generator's own saturation signal (a worker thread's event-loop lag, a k6 instance's
   * CPU), from engines that run several: `generator` names it (builtin-2, k6-3).
   */
  generator?(generator: string, at: number, metric: string, value: number): void;
}

export interface LoadProgress {
  scheduled: number;
  inFlight: number;
  done: number;
  ok: number;
  failed: number;
}

/** What an engine can measure, shown in the report next to the numbers. */
export interface EngineCapabilities {
  /** How ttft is taken: the first content chunk, or only the first byte of the body. */
  ttft: 'first_content_chunk' | 'time_to_first_byte' | 'none';
  itl: boolean;
  queueDelay: boolean;
  notes: string[];
}

export interface LoadEngine {
  readonly name: string;
  readonly progress: LoadProgress;
  readonly capabilities: EngineCapabilities;
  /** Resolves when the schedule has ended and every request has ended (or been cancelled). */
  run(workload: Workload, signal: AbortSignal, sink: LoadSink): Promise<void>;
  /** The generator processes running now when they are not this one (k6), by generator name. */
  processes?(): { name: string; pid: number }[];
  /**
   * The load generators besides this process, by name (builtin-1 … on worker threads, k6 or
   * k6-1 … k6-N) and host (null: this machine): each reports its own saturation signals, under
   * generatorNode(name).
   */
  generators?(): { name: string; host: string | null }[];
}
