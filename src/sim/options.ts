// Command-line options of the simulated inference node. No dependencies: this file is
// bundled into the FROM-scratch image together with the rest of src/sim.

/**
 * How the node reacts when one GPU worker (shard process) dies:
 *   crash    — log FATAL and exit non-zero at once (vLLM, SGLang, TGI);
 *   hang     — a collective that never completes (a stuck NCCL all-reduce): no step finishes,
 *              /health is held unanswered, the process stays up until the step watchdog fires;
 *   degraded — the group goes on with the ranks left, each decode step slower.
 */
export const WORKER_LOSS = ['crash', 'hang', 'degraded'] as const;
export type WorkerLoss = (typeof WORKER_LOSS)[number];

export interface SimOptions {
  host: string;
  port: number;
  gpus: number;
  model: string;
  /** Time the shards take to "load weights" before /health turns 200. */
  loadMs: number;
  /** Prefill: fixed part of time to first token, ms. */
  ttftMs: number;
  /** Prefill: extra ms per prompt token. */
  prefillMsPerToken: number;
  /** Decode step period (inter-token latency at light load), ms. */
  itlMs: number;
  /** Relative jitter applied to prefill and step times (0 = none). */
  jitter: number;
  /** Sequences decoded together; more wait in a queue. */
  maxBatch: number;
  /** KV-cache capacity in tokens; sequences that would not fit wait in the queue. */
  kvTokens: number;
  /** Requests waiting at most (0 = no limit); past it the node answers 503. */
  maxQueue: number;
  /** A shard that does not acknowledge a step within this time aborts the node (NCCL watchdog). */
  stepTimeoutMs: number;
  /** Memory each shard holds as "weights" (anonymous, touched), MiB. */
  weightsMb: number;
  /** Mean time between spontaneous faults, seconds (0 = never). */
  spontaneousMtbfS: number;
  /** What a spontaneous fault is: crash (exit 1), hang (answers nothing for a while) or errors (500s). */
  spontaneousKind: 'crash' | 'hang' | 'errors';
  /** Weibull shape of the times to failure (1 = exponential, > 1 wear-out). */
  spontaneousShape: number;
  /** How long a spontaneous hang or error burst lasts, ms. */
  spontaneousDurationMs: number;
  /**
   * Memory leak: each accepted completion request leaves this much host memory (KiB, touched)
   * held for the life of the process, as a leaking API server does (0 = none). Under a container
   * memory limit the node is eventually OOM-killed: a spontaneous failure that telemetry sees
   * coming (container memory rising).
   */
  leakKbPerRequest: number;
  /** The node's reaction to losing one GPU worker. */
  workerLoss: WorkerLoss;
  /** With workerLoss=degraded: how many times longer each decode step takes. */
  degradedFactor: number;
  /**
   * HTTP handler threads shared by every route, streams included (0 = unlimited). llama.cpp's
   * server works this way: with its few threads busy streaming, /health waits for one — it
   * times out while every request still succeeds — and further requests queue (no 503).
   */
  httpThreads: number;
  /** After the model is loaded (and /health says ok), this long at the start serving slowly: warm-up (vLLM's graph capture, compilation). */
  warmupMs: number;
  /** How many times slower prefill and decode steps are during the warm-up. */
  warmupFactor: number;
  /** Router mode: comma-separated backend base URLs (empty: a model server). */
  router: string;
  /** Router mode: active health check period of each backend, ms. */
  routerCheckMs: number;
  seed: number;
  /**
   * Plan time per real time (gauntlet run --time-scale N): every duration above runs N times
   * faster — model load, ttft, prefill, inter-token latency, step timeout, warm-up, spontaneous
   * faults and their length, the router's checks — so a scaled plan meets a node that looks, in
   * plan time, like the unscaled one. 1: real time.
   */
  timeScale: number;
}

/** The options that are durations (ms, or s for the spontaneous MTBF): divided by --time-scale. */
const SCALED = ['loadMs', 'ttftMs', 'prefillMsPerToken', 'itlMs', 'stepTimeoutMs', 'spontaneousMtbfS', 'spontaneousDurationMs', 'warmupMs', 'routerCheckMs'] as const;

/**
 * Server profiles: option presets that make the simulator behave like a real engine.
 *   llamacpp — /health and completions share 6 HTTP threads (busy slots queue, no 503).
 *   vllm     — /health says ok as soon as the model is loaded, but the first 3 s serve 10 times
 *              slower (warm-up): healthy is not serving.
 */
export const PROFILES: Record<string, Partial<SimOptions>> = {
  default: {},
  llamacpp: { httpThreads: 6 },
  vllm: { warmupMs: 3000, warmupFactor: 10 },
};

export const DEFAULTS: SimOptions = {
  host: '127.0.0.1',
  port: 8000,
  gpus: 1,
  model: 'sim-llama',
  loadMs: 2000,
  ttftMs: 60,
  prefillMsPerToken: 0.05,
  itlMs: 20,
  jitter: 0.05,
  maxBatch: 64,
  kvTokens: 262_144,
  maxQueue: 0,
  stepTimeoutMs: 10_000,
  weightsMb: 8,
  spontaneousMtbfS: 0,
  spontaneousKind: 'crash',
  spontaneousShape: 1,
  spontaneousDurationMs: 5000,
  leakKbPerRequest: 0,
  workerLoss: 'crash',
  degradedFactor: 2,
  httpThreads: 0,
  warmupMs: 0,
  warmupFactor: 10,
  router: '',
  routerCheckMs: 250,
  timeScale: 1,
  seed: 1,
};

const FLAGS: Record<string, keyof SimOptions> = {
  '--host': 'host',
  '--port': 'port',
  '--gpus': 'gpus',
  '--model': 'model',
  '--load-ms': 'loadMs',
  '--ttft-ms': 'ttftMs',
  '--prefill-ms-per-token': 'prefillMsPerToken',
  '--itl-ms': 'itlMs',
  '--jitter': 'jitter',
  '--max-batch': 'maxBatch',
  '--kv-tokens': 'kvTokens',
  '--max-queue': 'maxQueue',
  '--step-timeout-ms': 'stepTimeoutMs',
  '--weights-mb': 'weightsMb',
  '--spontaneous-mtbf-s': 'spontaneousMtbfS',
  '--spontaneous-kind': 'spontaneousKind',
  '--spontaneous-shape': 'spontaneousShape',
  '--spontaneous-duration-ms': 'spontaneousDurationMs',
  '--leak-kb-per-request': 'leakKbPerRequest',
  '--worker-loss': 'workerLoss',
  '--degraded-factor': 'degradedFactor',
  '--http-threads': 'httpThreads',
  '--warmup-ms': 'warmupMs',
  '--warmup-factor': 'warmupFactor',
  '--router': 'router',
  '--router-check-ms': 'routerCheckMs',
  '--time-scale': 'timeScale',
  '--seed': 'seed',
};

const LIMITS: Partial<Record<keyof SimOptions, [number, number, boolean]>> = {
  port: [0, 65535, true],
  gpus: [1, 64, true],
  loadMs: [0, 3_600_000, false],
  ttftMs: [0, 600_000, false],
  prefillMsPerToken: [0, 1000, false],
  itlMs: [0.1, 60_000, false],
  jitter: [0, 1, false],
  maxBatch: [1, 100_000, true],
  kvTokens: [1, 1e9, true],
  maxQueue: [0, 1e6, true],
  stepTimeoutMs: [10, 3_600_000, false],
  weightsMb: [0, 65_536, false],
  spontaneousMtbfS: [0, 1e9, false],
  spontaneousShape: [0.1, 20, false],
  spontaneousDurationMs: [1, 3_600_000, false],
  leakKbPerRequest: [0, 1_048_576, false],
  degradedFactor: [1, 1000, false],
  httpThreads: [0, 10_000, true],
  routerCheckMs: [10, 600_000, true],
  timeScale: [1, 100_000, false],
  warmupMs: [0, 3_600_000, false],
  warmupFactor: [1, 1000, false],
  seed: [0, 2 ** 32 - 1, true],
};

export function parseSimArgs(argv: readonly string[]): SimOptions {
  const opts: SimOptions = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.includes('=') ? (arg.split(/=(.*)/s, 2) as [string, string]) : [arg, undefined];
    if (flag === '--profile') {
      // A preset, applied where it stands: options after it override it.
      const name = inline ?? argv[++i];
      const preset = name === undefined ? undefined : PROFILES[name];
      if (!preset) throw new Error(`option --profile: expected one of ${Object.keys(PROFILES).join(', ')}, got ${name === undefined ? 'nothing' : `"${name}"`}`);
      Object.assign(opts, preset);
      continue;
    }
    const key = FLAGS[flag];
    if (!key) throw new Error(`unknown option ${flag} (known: --profile, ${Object.keys(FLAGS).join(', ')})`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`option ${flag} needs a value`);
    if (key === 'workerLoss') {
      if (!(WORKER_LOSS as readonly string[]).includes(value)) throw new Error(`option ${flag}: expected one of ${WORKER_LOSS.join(', ')}, got "${value}"`);
      opts.workerLoss = value as WorkerLoss;
      continue;
    }
    if (key === 'spontaneousKind') {
      const kinds = ['crash', 'hang', 'errors'];
      if (!kinds.includes(value)) throw new Error(`option ${flag}: expected one of ${kinds.join(', ')}, got "${value}"`);
      opts.spontaneousKind = value as SimOptions['spontaneousKind'];
      continue;
    }
    if (typeof DEFAULTS[key] === 'string') {
      (opts as unknown as Record<string, unknown>)[key] = value;
      continue;
    }
    const n = Number(value);
    const [min, max, integer] = LIMITS[key] ?? [-Infinity, Infinity, false];
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new Error(`option ${flag}: expected ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got "${value}"`);
    }
    (opts as unknown as Record<string, unknown>)[key] = n;
  }
  if (opts.timeScale !== 1) for (const k of SCALED) opts[k] = opts[k] / opts.timeScale;
  return opts;
}
