// The builtin load engine: open-loop arrivals per target, sent with undici. Always available.
import { setMaxListeners } from 'node:events';
import { Agent, type Dispatcher } from 'undici';
import type { Clock } from '../util/clock.js';
import { arrivals } from './arrival.js';
import { apiPath, requestBodies } from './prompts.js';
import { sendCompletion } from './request.js';
import type { LoadEngine, LoadProgress, LoadSink, Workload } from './types.js';

export function loadDispatcher(): Dispatcher {
  // Unlimited connections per origin (open loop: a busy server must not throttle sending);
  // our own per-request timeout replaces undici's idle timeouts.
  return new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 4000, headersTimeout: 0, bodyTimeout: 0 });
}

export class BuiltinEngine implements LoadEngine {
  readonly name = 'builtin';
  readonly progress: LoadProgress = { scheduled: 0, inFlight: 0, done: 0, ok: 0, failed: 0 };

  constructor(
    private readonly clock: Clock,
    private readonly dispatcher: Dispatcher = loadDispatcher(),
  ) {}

  async run(w: Workload, signal: AbortSignal, sink: LoadSink): Promise<void> {
    const bodies = requestBodies(w);
    const path = apiPath(w.api);
    const perTarget = w.rate / w.targets.length;
    const streams = w.targets.map((target) => {
      const gen = arrivals({ arrival: w.arrival, rate: perTarget, seed: w.seed, label: target.node });
      return { target, gen, next: gen.next().value, count: 0 };
    });
    const start = this.clock.now();
    const end = start + w.durationMs;
    const inFlight = new Set<Promise<void>>();
    const cancel = new AbortController();
    // One listener per in-flight request is expected here, however many there are.
    setMaxListeners(0, cancel.signal);
    const onAbort = (): void => cancel.abort();
    signal.addEventListener('abort', onAbort, { once: true });

    const fire = (s: (typeof streams)[number], scheduledAt: number): void => {
      const body = bodies[s.count++ % bodies.length] as string;
      this.progress.scheduled++;
      this.progress.inFlight++;
      const p = sendCompletion(this.dispatcher, { origin: s.target.endpoint, path, body, stream: w.stream, timeoutMs: w.timeoutMs, signal: cancel.signal }, () => this.clock.now()).then(
        (r) => {
          this.progress.inFlight--;
          this.progress.done++;
          if (r.outcome === 'ok') this.progress.ok++;
          else if (r.outcome !== 'cancelled') this.progress.failed++;
          const { gaps: _gaps, ...timing } = r;
          sink.record({
            ...timing,
            node: s.target.node,
            scheduledAt,
            ttftMs: r.firstTokenAt !== null ? r.firstTokenAt - r.sentAt : null,
            e2eMs: r.endAt - r.sentAt,
            queueDelayMs: r.sentAt - scheduledAt,
          });
        },
      );
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p)).catch(() => undefined);
    };

    try {
      while (!signal.aborted) {
        let s = streams[0] as (typeof streams)[number];
        for (const x of streams) if (x.next < s.next) s = x;
        const at = start + s.next;
        if (at >= end) break;
        const wait = at - this.clock.now();
        if (wait > 0.5) {
          try {
            await this.clock.sleep(wait, signal);
          } catch {
            break;
          }
        }
        fire(s, at);
        s.next = s.gen.next().value;
      }
    } finally {
      // Normal end: in-flight requests finish on their own (bounded by the timeout), unless
      // the run is aborted meanwhile. Aborted run: they are cancelled and recorded as such.
      if (signal.aborted) cancel.abort();
      await Promise.allSettled([...inFlight]);
      signal.removeEventListener('abort', onAbort);
    }
  }
}
