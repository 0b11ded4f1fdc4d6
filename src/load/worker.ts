// One worker thread of the builtin engine on several cores (dist/load-worker.js; see
// parallel.ts): a BuiltinEngine that owns every N-th arrival of the shared schedule, sending its
// records and counts to the main thread in batches, with its own event-loop lag every second
// (a thread that falls behind says so itself). Its clock is real: plan time is wall time.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { RealClock } from '../util/clock.js';
import { BuiltinEngine, loadDispatcher, type EnginePart } from './builtin.js';
import type { LoadProgress, LoadSink, RequestRecord } from './types.js';
import type { Workload } from './workload.js';

export interface WorkerInit {
  workload: Workload;
  index: number;
  of: number;
  /** The main thread's clock (its anchor and performance.timeOrigin): the workers read the same time. */
  clock: { anchor: number; timeOrigin: number };
}

/** What a worker tells the main thread (events in the order they happened). */
export type WorkerEvent =
  | { k: 'record'; r: RequestRecord }
  | { k: 'planned'; node: string; at: number; count: number }
  | { k: 'miss'; node: string; at: number; count: number }
  | { k: 'alive'; node: string; at: number };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'events'; events: WorkerEvent[]; progress: LoadProgress }
  | { t: 'lag'; at: number; p99Ms: number; maxMs: number }
  | { t: 'done'; endedAt: number; progress: LoadProgress }
  | { t: 'error'; message: string };

export type ToWorker = { t: 'start'; startAt: number } | { t: 'abort' };

/** Events are sent at least this often (ms), or as soon as this many are waiting. */
const FLUSH_MS = 50;
const FLUSH_EVENTS = 256;

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('load-worker.js runs as a worker thread of the builtin engine');
  const init = workerData as WorkerInit;
  // the main thread's time: its anchor, moved to this thread's performance.now() origin
  const clock = new RealClock(init.clock.anchor + (performance.timeOrigin - init.clock.timeOrigin));
  const abort = new AbortController();
  const post = (m: FromWorker): void => port.postMessage(m);
  let engine: BuiltinEngine | null = null;
  let batch: WorkerEvent[] = [];
  const flush = (): void => {
    if (batch.length === 0 || !engine) return;
    post({ t: 'events', events: batch, progress: { ...engine.progress } });
    batch = [];
  };
  const push = (e: WorkerEvent): void => {
    batch.push(e);
    if (batch.length >= FLUSH_EVENTS) flush();
  };
  const sink: LoadSink = {
    record: (r) => push({ k: 'record', r }),
    planned: (node, at, count) => push({ k: 'planned', node, at, count }),
    scheduleMiss: (node, at, count) => push({ k: 'miss', node, at, count }),
    alive: (node, at) => push({ k: 'alive', node, at }),
  };
  const lag = monitorEventLoopDelay({ resolution: 10 });
  port.on('message', (m: ToWorker) => {
    if (m.t === 'abort') {
      abort.abort(new Error('the run was stopped'));
      return;
    }
    if (m.t !== 'start' || engine) return;
    const part: EnginePart = { index: init.index, of: init.of, startAt: m.startAt };
    engine = new BuiltinEngine(clock, loadDispatcher(), null, part);
    const flusher = setInterval(flush, FLUSH_MS);
    lag.enable();
    const lagTimer = setInterval(() => {
      if (lag.count > 0) post({ t: 'lag', at: clock.now(), p99Ms: lag.percentile(99) / 1e6, maxMs: lag.max / 1e6 });
      lag.reset();
    }, 1000);
    const running = engine;
    running
      .run(init.workload, abort.signal, sink)
      .then(() => {
        flush();
        post({ t: 'done', endedAt: clock.now(), progress: { ...running.progress } });
      })
      .catch((err: unknown) => {
        flush();
        post({ t: 'error', message: err instanceof Error ? err.message : String(err) });
      })
      .finally(() => {
        clearInterval(flusher);
        clearInterval(lagTimer);
        lag.disable();
        port.close();
      });
  });
  post({ t: 'ready' });
}

main();
