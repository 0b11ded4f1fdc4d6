// The builtin engine on several cores: N worker threads (dist/load-worker.js), each a
// BuiltinEngine owning every N-th arrival of the one schedule the seed gives (the same arrivals,
// numbers and requests as one engine would send; see EnginePart). The workers start together
// (each loads, says it is ready, and is then given one start time), and hand their records to this
// thread, which passes them to the sink: every histogram is built from every sample, so
// percentiles over workers are exact, never averaged. Each worker's event-loop lag is its own
// saturation signal (GENERATOR_NODE/builtin-<i>).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { GauntletError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import { RealClock } from '../util/clock.js';
import { packageRoot } from '../util/paths.js';
import type { EngineCapabilities, LoadEngine, LoadProgress, LoadSink } from './types.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker.js';
import type { Workload } from './workload.js';

/** The bundle the worker threads run (npm run build makes it). */
export function workerScript(): string {
  return join(packageRoot(), 'dist', 'load-worker.js');
}

/** Worker threads for `parallelism: auto`: one per core but one (this thread reads their records). */
export function autoThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** A plan's load.parallelism as a number of generators. */
export function resolveParallelism(p: number | 'auto'): number {
  return p === 'auto' ? autoThreads() : p;
}

/** How long the workers may take to load before the run gives up on them. */
const READY_TIMEOUT_MS = 30_000;
/** Lead time between the start time being sent and the first arrival. */
const START_LEAD_MS = 50;

export class ParallelBuiltinEngine implements LoadEngine {
  readonly name = 'builtin';
  readonly progress: LoadProgress = { scheduled: 0, inFlight: 0, done: 0, ok: 0, failed: 0 };
  readonly capabilities: EngineCapabilities;

  constructor(
    private readonly clock: RealClock | Clock,
    readonly threads: number,
  ) {
    if (!(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`worker threads must be a whole number ≥ 1, got ${threads}`);
    this.capabilities = {
      ttft: 'first_content_chunk',
      itl: true,
      queueDelay: true,
      notes: [`The builtin engine ran on ${threads} worker threads, each sending every ${threads === 1 ? '' : `${ordinal(threads)} `}arrival of one schedule; their samples are merged into the same histograms (exact percentiles), and each thread's event-loop lag is reported as its own.`],
    };
  }

  /** The generators, as the report names them. */
  generators(): { name: string; host: string | null }[] {
    return Array.from({ length: this.threads }, (_, i) => ({ name: `builtin-${i + 1}`, host: null }));
  }

  async run(w: Workload, signal: AbortSignal, sink: LoadSink): Promise<void> {
    if (!(this.clock instanceof RealClock) || this.clock.timeScale !== 1) throw new GauntletError('GAUNTLET_LOAD_WORKERS', ['run on worker threads only in real time (not with --time-scale or a virtual clock): set load.parallelism to 1']);
    const script = workerScript();
    if (!existsSync(script)) throw new GauntletError('GAUNTLET_LOAD_WORKERS', [`${script} is missing: run npm run build`]);
    const n = this.threads;
    // max_in_flight is the plan's, over all threads: each gets its share (at least one per target)
    if (w.maxInFlight !== null && w.maxInFlight < n * w.targets.length) {
      throw new GauntletError('GAUNTLET_LOAD_WORKERS', [`max_in_flight ${w.maxInFlight} cannot be shared by ${n} threads over ${w.targets.length} target${w.targets.length === 1 ? '' : 's'} (at least one each): lower load.parallelism or raise max_in_flight`]);
    }
    const share: Workload = w.maxInFlight === null ? w : { ...w, maxInFlight: Math.floor(w.maxInFlight / n) };
    const clock = { anchor: this.clock.anchor, timeOrigin: performance.timeOrigin };
    const workers = Array.from({ length: n }, (_, index) => new Worker(script, { workerData: { workload: share, index, of: n, clock } satisfies WorkerInit }));
    const progress = workers.map((): LoadProgress => ({ scheduled: 0, inFlight: 0, done: 0, ok: 0, failed: 0 }));
    const sum = (): void => {
      for (const k of Object.keys(this.progress) as (keyof LoadProgress)[]) this.progress[k] = progress.reduce((a, p) => a + p[k], 0);
    };
    const names = this.generators().map((g) => g.name);
    let endedAt = 0;
    let failure: Error | null = null;
    const abortAll = (): void => {
      for (const x of workers) x.postMessage({ t: 'abort' } satisfies ToWorker);
    };
    const ready: Promise<void>[] = [];
    const done = workers.map(
      (worker, i) =>
        new Promise<void>((resolve) => {
          let finished = false;
          let readyResolve: () => void = () => undefined;
          ready.push(new Promise<void>((r) => (readyResolve = r)));
          const fail = (why: string): void => {
            if (finished) return;
            finished = true;
            failure ??= new GauntletError('GAUNTLET_LOAD_WORKERS', [`${names[i]} ${why}`]);
            readyResolve();
            abortAll();
            resolve();
          };
          worker.on('message', (m: FromWorker) => {
            switch (m.t) {
              case 'ready':
                readyResolve();
                return;
              case 'events':
                for (const e of m.events) {
                  if (e.k === 'record') sink.record(e.r);
                  else if (e.k === 'planned') sink.planned?.(e.node, e.at, e.count);
                  else if (e.k === 'miss') sink.scheduleMiss?.(e.node, e.at, e.count);
                  else sink.alive?.(e.node, e.at);
                }
                progress[i] = m.progress;
                sum();
                return;
              case 'lag':
                sink.generator?.(names[i] as string, m.at, 'loop_lag_p99_ms', m.p99Ms);
                sink.generator?.(names[i] as string, m.at, 'loop_lag_max_ms', m.maxMs);
                return;
              case 'done':
                progress[i] = m.progress;
                sum();
                endedAt = Math.max(endedAt, m.endedAt);
                finished = true;
                resolve();
                return;
              case 'error':
                fail(`failed: ${m.message}`);
                return;
            }
          });
          worker.on('error', (err) => fail(`crashed: ${err.message}`));
          worker.on('exit', (code) => fail(`exited (code ${code}) before its load ended`));
        }),
    );
    const onAbort = (): void => abortAll();
    try {
      // Everyone loaded (or gave up), then one start time for all.
      let readyTimer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.all(ready).then(() => false),
        new Promise<boolean>((r) => {
          readyTimer = setTimeout(() => r(true), READY_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(readyTimer);
      if (timedOut) failure ??= new GauntletError('GAUNTLET_LOAD_WORKERS', [`the worker threads did not load within ${READY_TIMEOUT_MS / 1000} s`]);
      if (failure) throw failure;
      const startAt = this.clock.now() + START_LEAD_MS;
      sink.started?.(startAt);
      for (const x of workers) x.postMessage({ t: 'start', startAt } satisfies ToWorker);
      if (signal.aborted) abortAll();
      else signal.addEventListener('abort', onAbort, { once: true });
      await Promise.all(done);
      if (failure) throw failure;
    } finally {
      signal.removeEventListener('abort', onAbort);
      await Promise.all(workers.map((x) => x.terminate()));
      sink.ended?.(endedAt > 0 ? endedAt : this.clock.now());
    }
  }
}

function ordinal(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[n % 10] ?? 'th';
  return `${n}${s}`;
}
