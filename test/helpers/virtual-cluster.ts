// In-process stand-ins for a long run on the virtual clock: a fake Docker engine (containers
// with a restart policy, their events as a real engine writes them, inspect, start/stop/kill,
// logs, stats) and the simulated inference nodes inside them, answering the load and the
// probes through an undici Dispatcher — no socket, no real time. A crash (SIGKILL of a
// container's main process through `processes`) cuts the node's streams, writes die, and the
// restart policy brings it back after `restartMs`; the model then loads for `loadMs`
// (/health 503, completions 503 "Loading model") before it serves again, as the simulator does.
//
// Pids are above Linux's pid_max, so nothing that looks at the real host's /proc (the
// leftover sweep) can mistake a fake container for a real process.
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { Dispatcher } from 'undici';
import type { VirtualClock } from '../../src/util/clock.js';
import type { ProcStat, ProcessHost } from '../../src/util/proc.js';

export interface VirtualNodeOptions {
  name: string;
  label: string;
  port: number;
  ttftMs?: number;
  itlMs?: number;
  loadMs?: number;
  restartMs?: number;
}

interface Node {
  id: string;
  name: string;
  label: string;
  port: number;
  ttftMs: number;
  itlMs: number;
  loadMs: number;
  restartMs: number;
  running: boolean;
  pid: number;
  startedAt: number;
  finishedAt: number;
  exitCode: number;
  restartCount: number;
  /** A stop or kill through the API: the restart policy does not bring it back. */
  stoppedByApi: boolean;
  /** Responses under way: each cuts its stream when the node dies. */
  inflight: Set<(why: Error) => void>;
  waiters: Set<() => void>;
  /**
   * The network to the node is cut while its container runs: 'blackhole' (packets dropped:
   * nothing answers, a request waits for its own deadline) or 'refuse' (connection refused).
   */
  partition: 'blackhole' | 'refuse' | null;
}

const PID_BASE = 5_000_000; // above pid_max (4194304): no real process has such a pid

export class VirtualCluster {
  readonly nodes = new Map<string, Node>();
  private readonly events: string[] = [];
  private readonly streams = new Set<{ stream: PassThrough; ids: Set<string> }>();
  private nextPid = PID_BASE;
  /** Requests the nodes answered, by path. */
  readonly served = new Map<string, number>();

  constructor(private readonly clock: VirtualClock) {}

  /** What a run needs to run against these stand-ins: their Docker, their HTTP, their processes. */
  get stands(): { docker: Docker; http: { load: Dispatcher; probes: Dispatcher }; processes: ProcessHost } {
    return { docker: this.docker, http: { load: this.http, probes: this.http }, processes: this.processes };
  }

  /** Cuts the network to a node (its container keeps running) or, with null, mends it. */
  partition(name: string, mode: 'blackhole' | 'refuse' | null): void {
    const n = this.find(name);
    if (!n) throw new Error(`no virtual node ${name}`);
    n.partition = mode;
    // a partition drops the streams under way too (their packets no longer arrive)
    if (mode) for (const cut of [...n.inflight]) cut(new Error('other side closed'));
  }

  add(o: VirtualNodeOptions): void {
    const id = `${o.name.replace(/[^a-z0-9]/g, '').padEnd(12, '0')}${'f'.repeat(52)}`.slice(0, 64);
    const n: Node = {
      id,
      name: o.name,
      label: o.label,
      port: o.port,
      ttftMs: o.ttftMs ?? 60,
      itlMs: o.itlMs ?? 12,
      loadMs: o.loadMs ?? 4000,
      restartMs: o.restartMs ?? 1500,
      running: false,
      pid: 0,
      startedAt: 0,
      finishedAt: 0,
      exitCode: 0,
      restartCount: 0,
      stoppedByApi: false,
      inflight: new Set(),
      partition: null,
      waiters: new Set(),
    };
    this.nodes.set(id, n);
    this.start(n, false);
    // already loaded when the run begins
    n.startedAt -= n.loadMs;
  }

  private start(n: Node, byPolicy: boolean): void {
    n.running = true;
    n.pid = this.nextPid++;
    n.startedAt = this.clock.now();
    n.stoppedByApi = false;
    if (byPolicy) n.restartCount++;
    this.emit(n, 'start', {});
  }

  private die(n: Node, exitCode: number, why: string): void {
    n.running = false;
    n.exitCode = exitCode;
    n.finishedAt = this.clock.now();
    for (const cut of [...n.inflight]) cut(new Error(why));
    n.inflight.clear();
    this.emit(n, 'die', { exitCode: String(exitCode) });
    for (const w of [...n.waiters]) w();
    n.waiters.clear();
  }

  private emit(n: Node, action: string, attrs: Record<string, string>): void {
    const at = this.clock.now();
    const line = JSON.stringify({ status: action, id: n.id, from: 'gauntlet-sim:fake', Type: 'container', Action: action, Actor: { ID: n.id, Attributes: { image: 'gauntlet-sim:fake', name: n.name, ...attrs } }, scope: 'local', time: Math.floor(at / 1000), timeNano: Math.round(at * 1e6) });
    this.events.push(line);
    for (const s of this.streams) if (s.ids.size === 0 || s.ids.has(n.id)) s.stream.write(`${line}\n`);
  }

  private find(idOrName: string): Node | undefined {
    for (const n of this.nodes.values()) if (n.id === idOrName || n.id.startsWith(idOrName) || n.name === idOrName) return n;
    return undefined;
  }

  /** The host's processes as node-kill sees them: the containers' main processes. */
  readonly processes: ProcessHost = {
    stat: (pid: number): ProcStat | null => {
      const n = [...this.nodes.values()].find((x) => x.pid === pid && x.running);
      return n ? { state: 'S', startTime: String(n.startedAt) } : null;
    },
    running: (pid: number): boolean => [...this.nodes.values()].some((x) => x.pid === pid && x.running),
    kill: (pid: number, signal: NodeJS.Signals): void => {
      const n = [...this.nodes.values()].find((x) => x.pid === pid && x.running);
      if (!n) throw Object.assign(new Error(`kill ESRCH ${pid}`), { code: 'ESRCH' });
      if (signal !== 'SIGKILL') throw new Error(`the fake host only delivers SIGKILL, not ${signal}`);
      this.die(n, 137, 'other side closed');
      // unless-stopped: Docker starts it again after a moment
      this.clock.after(n.restartMs, () => {
        if (!n.running && !n.stoppedByApi) this.start(n, true);
      });
    },
  };

  private inspect(n: Node): Docker.ContainerInspectInfo {
    const iso = (t: number): string => new Date(t).toISOString();
    return {
      Id: n.id,
      Name: `/${n.name}`,
      RestartCount: n.restartCount,
      State: { Status: n.running ? 'running' : 'exited', Running: n.running, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: n.running ? n.pid : 0, ExitCode: n.exitCode, Error: '', StartedAt: iso(n.startedAt), FinishedAt: iso(n.finishedAt) },
      HostConfig: { RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 }, NetworkMode: 'bridge', PortBindings: { '8000/tcp': [{ HostIp: '127.0.0.1', HostPort: String(n.port) }] } },
      Config: { Image: 'gauntlet-sim:fake', Labels: { 'gauntlet.target': n.label }, Tty: false },
      NetworkSettings: { Ports: n.running ? { '8000/tcp': [{ HostIp: '127.0.0.1', HostPort: String(n.port) }] } : {} },
    } as unknown as Docker.ContainerInspectInfo;
  }

  /** A dockerode stand-in with what Gauntlet calls. */
  readonly docker: Docker = ((): Docker => {
    const notFound = (id: string): Error => Object.assign(new Error(`(HTTP code 404) no such container - No such container: ${id}`), { statusCode: 404 });
    const container = (idOrName: string) => {
      const get = (): Node => {
        const n = this.find(idOrName);
        if (!n) throw notFound(idOrName);
        return n;
      };
      return {
        id: idOrName,
        inspect: async () => this.inspect(get()),
        start: async () => {
          const n = get();
          if (n.running) throw Object.assign(new Error('(HTTP code 304) container already started'), { statusCode: 304 });
          this.start(n, false);
        },
        stop: async () => {
          const n = get();
          if (!n.running) throw Object.assign(new Error('(HTTP code 304) container already stopped'), { statusCode: 304 });
          n.stoppedByApi = true;
          this.emit(n, 'kill', { signal: '15' });
          this.die(n, 0, 'other side closed');
          this.emit(n, 'stop', {});
        },
        restart: async () => {
          const n = get();
          if (n.running) {
            this.emit(n, 'kill', { signal: '15' });
            this.die(n, 0, 'other side closed');
            this.emit(n, 'stop', {});
          }
          this.start(n, false);
          this.emit(n, 'restart', {});
        },
        wait: async (opts?: { abortSignal?: AbortSignal }) => {
          const n = get();
          if (!n.running) return { StatusCode: n.exitCode };
          return new Promise((resolve, reject) => {
            const done = (): void => resolve({ StatusCode: n.exitCode });
            n.waiters.add(done);
            opts?.abortSignal?.addEventListener('abort', () => (n.waiters.delete(done), reject(new Error('aborted'))), { once: true });
          });
        },
        logs: async () => {
          const n = get();
          const text = Buffer.from(`sim: listening on 0.0.0.0:8000 (fake ${n.name})\n`);
          const header = Buffer.alloc(8);
          header[0] = 1;
          header.writeUInt32BE(text.length, 4);
          return Buffer.concat([header, text]);
        },
        stats: async () => {
          const n = get();
          const t = this.clock.now();
          return { memory_stats: { usage: 1.5e9 + (t - n.startedAt) * 10, limit: 16e9, stats: {} }, cpu_stats: { cpu_usage: { total_usage: t * 1e5 }, system_cpu_usage: t * 1e6, online_cpus: 2 } };
        },
        top: async () => ({ Titles: ['PID', 'CMD'], Processes: [[String(get().pid), 'gauntlet-sim']] }),
        kill: async () => {
          const n = get();
          n.stoppedByApi = true;
          this.emit(n, 'kill', { signal: '9' });
          this.die(n, 137, 'other side closed');
        },
      };
    };
    const fake = {
      version: async () => ({ Version: '0.0.0-fake', ApiVersion: '1.41' }),
      ping: async () => 'OK',
      info: async () => ({ ServerVersion: '0.0.0-fake', OperatingSystem: 'fake', NCPU: 2 }),
      getContainer: container,
      listContainers: async (opts?: { all?: boolean; filters?: { label?: string[] } }) => {
        const labels = opts?.filters?.label ?? [];
        return [...this.nodes.values()]
          .filter((n) => opts?.all || n.running)
          .filter((n) =>
            labels.every((l) => {
              const [k, v] = l.split('=');
              const mine: Record<string, string> = { 'gauntlet.target': n.label };
              return v === undefined ? k !== undefined && k in mine : mine[k as string] === v;
            }),
          )
          .map((n) => ({ Id: n.id, Names: [`/${n.name}`], Labels: { 'gauntlet.target': n.label }, State: n.running ? 'running' : 'exited', Image: 'gauntlet-sim:fake' }));
      },
      getEvents: async (opts?: { since?: number; filters?: { container?: string[] }; abortSignal?: AbortSignal }) => {
        const stream = new PassThrough();
        const entry = { stream, ids: new Set(opts?.filters?.container ?? []) };
        // what happened since `since` (whole seconds, as Docker's API takes it) first
        for (const line of this.events) {
          const e = JSON.parse(line) as { time: number; Actor: { ID: string } };
          if ((opts?.since === undefined || e.time >= opts.since) && (entry.ids.size === 0 || entry.ids.has(e.Actor.ID))) stream.write(`${line}\n`);
        }
        this.streams.add(entry);
        stream.on('close', () => this.streams.delete(entry));
        return stream;
      },
    };
    return fake as unknown as Docker;
  })();

  /** The nodes' HTTP, answered on the virtual clock. */
  readonly http: Dispatcher = ((): Dispatcher => {
    const cluster = this;
    class FleetDispatcher extends Dispatcher {
      override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
        cluster.serve(opts, 'onRequestStart' in handler || 'onResponseStart' in handler ? handler : fromLegacy(handler as unknown as LegacyHandler));
        return true;
      }
      override close(): Promise<void> {
        return Promise.resolve();
      }
      override destroy(): Promise<void> {
        return Promise.resolve();
      }
    }
    return new FleetDispatcher();
  })();

  private serve(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    const timers: (() => void)[] = [];
    let over = false;
    let node: Node | undefined;
    const end = (): void => {
      over = true;
      for (const c of timers) c();
      if (node) node.inflight.delete(cut);
    };
    const fail = (err: Error): void => {
      if (over) return;
      end();
      handler.onResponseError?.(controller, err);
    };
    const cut = (why: Error): void => fail(Object.assign(why, { code: 'UND_ERR_SOCKET' }));
    const state = { aborted: false, paused: false, reason: null as Error | null };
    const controller = {
      get aborted() {
        return state.aborted;
      },
      get paused() {
        return state.paused;
      },
      get reason() {
        return state.reason;
      },
      abort(reason: Error) {
        if (state.aborted) return;
        state.aborted = true;
        state.reason = reason;
        fail(reason);
      },
      pause() {},
      resume() {},
    } as unknown as Dispatcher.DispatchController;
    handler.onRequestStart?.(controller, {});
    if (over) return;
    const at = (ms: number, fn: () => void): void => {
      timers.push(this.clock.after(ms, () => !over && fn()));
    };
    const origin = new URL(String(opts.origin));
    node = [...this.nodes.values()].find((n) => String(n.port) === origin.port);
    const path = opts.path.split('?')[0] ?? '';
    this.served.set(path, (this.served.get(path) ?? 0) + 1);
    const reply = (status: number, body: string, type = 'application/json'): void => {
      handler.onResponseStart?.(controller, status, { 'content-type': type }, status === 200 ? 'OK' : 'Service Unavailable');
      if (over) return;
      handler.onResponseData?.(controller, Buffer.from(body));
      end();
      handler.onResponseEnd?.(controller, {});
    };
    if (node?.partition === 'blackhole') return; // nothing answers; the caller's deadline ends it
    at(0.2, () => {
      if (node?.partition === 'refuse') return fail(Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:${origin.port}`), { code: 'ECONNREFUSED' }));
      if (!node?.running) return fail(Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:${origin.port}`), { code: 'ECONNREFUSED' }));
      const n = node;
      n.inflight.add(cut);
      const loading = this.clock.now() < n.startedAt + n.loadMs;
      if (path === '/health') return at(1, () => (loading ? reply(503, '{"status":"loading model"}') : reply(200, '{"status":"ok"}')));
      if (path === '/v1/models') return at(1, () => reply(200, '{"object":"list","data":[{"id":"sim-llama","object":"model"}]}'));
      if (path === '/metrics') {
        const running = n.inflight.size - 1; // this scrape is in flight too
        return at(1, () => reply(200, `vllm:num_requests_running{model_name="sim-llama"} ${running}\nvllm:num_requests_waiting{model_name="sim-llama"} 0\n`, 'text/plain; version=0.0.4'));
      }
      if (path !== '/v1/chat/completions' && path !== '/v1/completions') return at(1, () => reply(404, '{"error":{"message":"not found"}}'));
      if (loading) return at(1, () => reply(503, '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}'));
      let req: { max_tokens?: number; stream?: boolean } = {};
      try {
        req = JSON.parse(String(opts.body ?? '{}')) as typeof req;
      } catch {
        return at(1, () => reply(400, '{"error":{"message":"bad JSON"}}'));
      }
      const tokens = Math.max(1, req.max_tokens ?? 16);
      const chunk = (delta: Record<string, unknown>, finish: string | null): string => `data: ${JSON.stringify({ id: 'cmpl-v', object: 'chat.completion.chunk', created: 0, model: 'sim-llama', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      if (!req.stream) {
        const body = JSON.stringify({ id: 'cmpl-v', object: 'chat.completion', created: 0, model: 'sim-llama', choices: [{ index: 0, message: { role: 'assistant', content: 'ok '.repeat(tokens) }, finish_reason: 'length' }], usage: { prompt_tokens: 16, completion_tokens: tokens, total_tokens: 16 + tokens } });
        return at(n.ttftMs + (tokens - 1) * n.itlMs, () => reply(200, body));
      }
      // The first token at ttft, the rest in four bursts, each one event holding its tokens (the
      // usage chunk says how many): five events and timers per stream whatever its length keep a
      // 72 h run cheap on the virtual clock (the inter-token gaps are then the bursts' spacing).
      at(n.ttftMs, () => {
        handler.onResponseStart?.(controller, 200, { 'content-type': 'text/event-stream' }, 'OK');
        if (!over) handler.onResponseData?.(controller, Buffer.from(chunk({ role: 'assistant', content: 'tok ' }, null)));
      });
      const rest = tokens - 1;
      const bursts = Math.min(4, rest);
      let sent = 1;
      for (let b = 1; b <= bursts; b++) {
        const upto = 1 + Math.round((rest * b) / bursts);
        const count = upto - sent;
        sent = upto;
        const last = b === bursts;
        at(n.ttftMs + (upto - 1) * n.itlMs, () => {
          let text = chunk({ content: 'tok '.repeat(count) }, null);
          if (last) text += `${chunk({}, 'length')}data: ${JSON.stringify({ id: 'cmpl-v', object: 'chat.completion.chunk', created: 0, model: 'sim-llama', choices: [], usage: { prompt_tokens: 16, completion_tokens: tokens, total_tokens: 16 + tokens } })}\n\ndata: [DONE]\n\n`;
          handler.onResponseData?.(controller, Buffer.from(text));
          if (last && !over) {
            end();
            handler.onResponseEnd?.(controller, {});
          }
        });
      }
      if (bursts === 0) {
        at(n.ttftMs + 1, () => {
          handler.onResponseData?.(controller, Buffer.from(`${chunk({}, 'length')}data: [DONE]\n\n`));
          end();
          handler.onResponseEnd?.(controller, {});
        });
      }
    });
  }
}

/** undici's request() still hands dispatchers the older handler shape (onConnect, onHeaders …). */
interface LegacyHandler {
  onConnect?(abort: (err?: Error) => void): void;
  onHeaders?(status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: Buffer[]): void;
  onError?(err: Error): void;
}

function fromLegacy(h: LegacyHandler): Dispatcher.DispatchHandler {
  return {
    onRequestStart(controller) {
      h.onConnect?.((err) => controller.abort(err ?? new Error('aborted')));
    },
    onResponseStart(_c, status, headers, statusText) {
      const raw = Object.entries(headers).flatMap(([k, v]) => [Buffer.from(k), Buffer.from(String(v))]);
      h.onHeaders?.(status, raw, () => undefined, statusText ?? '');
    },
    onResponseData(_c, chunk) {
      h.onData?.(chunk);
    },
    onResponseEnd() {
      h.onComplete?.([]);
    },
    onResponseError(_c, err) {
      h.onError?.(err);
    },
  };
}

/**
 * Drives a run on the virtual clock to its end, event by event: time jumps to the next timer,
 * and work that needs no timer runs in between. `onStep` sees each step (bounded: 50 M steps).
 */
export async function driveVirtual<T>(clock: VirtualClock, run: Promise<T>, onStep?: () => void): Promise<T> {
  let done = false;
  const settled = run.finally(() => {
    done = true;
  });
  for (let steps = 0; !done && steps < 50_000_000; steps++) {
    const next = clock.nextDue();
    await clock.advance(next === null ? 1000 : Math.max(0, next - clock.now()));
    onStep?.();
  }
  return settled;
}
