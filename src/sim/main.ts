// Entry point of the simulated multi-GPU inference node (`dist/sim.cjs`), used as a plain
// process and as the main process of the gauntlet-sim image. With --worker it is a shard.
import { BatchEngine, ShardGroup, forkShards } from './engine.js';
import { parseSimArgs } from './options.js';
import { createSimServer, type NodeState } from './server.js';
import { createRouter } from './router.js';
import { startSpontaneous } from './spontaneous.js';
import { runWorker } from './worker.js';

/** A timer this late (ms) means the process was frozen: logged as a TRUTH "stalled" line. */
const STALL_MS = 1000;

function log(message: string): void {
  process.stdout.write(`${new Date().toISOString()} sim[${process.pid}] ${message}\n`);
}

function main(argv: string[]): void {
  if (argv[0] === '--worker') {
    runWorker(Number(argv[1]), Number(argv[2]), Number(argv[3]));
    return;
  }
  let opts;
  try {
    opts = parseSimArgs(argv);
  } catch (err) {
    process.stderr.write(`gauntlet-sim: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const now = (): number => performance.timeOrigin + performance.now();
  // Ground truth for tests: one JSON line per event, epoch ms with sub-ms resolution.
  const truth = (event: string, detail: Record<string, unknown> = {}): void => {
    process.stdout.write(`TRUTH ${JSON.stringify({ at: now(), event, pid: process.pid, ...detail })}\n`);
  };
  if (opts.router) {
    let backends: URL[];
    try {
      backends = opts.router.split(',').map((u) => new URL(u.trim()));
    } catch (err) {
      process.stderr.write(`gauntlet-sim: option --router: expected comma-separated http:// URLs, got "${opts.router}" (${(err as Error).message})\n`);
      process.exit(2);
    }
    const router = createRouter({ backends, checkMs: opts.routerCheckMs, checkTimeoutMs: Math.max(1000 / opts.timeScale, Math.floor(opts.routerCheckMs * 0.8)), seed: opts.seed }, truth);
    router.listen(opts.port, opts.host, () => {
      truth('listening');
      log(`router on ${opts.host}:${opts.port} over ${backends.map((b) => b.host).join(', ')} (health check every ${opts.routerCheckMs} ms)`);
    });
    const stop = (): void => {
      router.close();
      setTimeout(() => process.exit(0), 100).unref();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    return;
  }
  const fatal = (reason: string): void => {
    truth('fatal', { reason });
    process.stderr.write(`${new Date().toISOString()} sim[${process.pid}] FATAL ${reason}; aborting\n`);
    shards.stop();
    process.exit(1);
  };
  const shards = new ShardGroup(opts, forkShards(__filename, opts), { fatal, warn: (message) => log(`WARN ${message}`) });
  const engine = new BatchEngine(opts, shards, now);
  const state: NodeState = { ready: false, engine, group: shards, opts, now, counters: { requests: 0, tokens: 0, errors: 0, leakedBytes: 0 }, failUntil: 0, servePending: false, truth };
  const server = createSimServer(state);
  // A frozen process (docker pause, SIGSTOP) cannot tell it stopped, but its timers can: one
  // that fires a second or more late says the whole process stood still until now. Ground truth
  // for hangs injected from outside: the next response start is logged as serving again.
  let tick = now();
  setInterval(() => {
    const t = now();
    if (t - tick >= STALL_MS) {
      truth('stalled', { from: tick, ms: Math.round(t - tick) });
      if (state.ready) state.servePending = true;
    }
    tick = t;
  }, 50).unref();
  server.listen(opts.port, opts.host, () => {
    truth('listening');
    log(`listening on ${opts.host}:${opts.port}; loading model ${opts.model} on ${opts.gpus} GPU(s) (shard pids ${shards.pids.join(',')}); on losing one: ${opts.workerLoss}`);
  });
  server.on('error', (err) => fatal(`HTTP server: ${err.message}`));
  void shards.ready.then(() => {
    state.ready = true;
    state.servePending = true;
    engine.warmUntil = now() + opts.warmupMs;
    truth('ready', opts.warmupMs > 0 ? { warmup_ms: opts.warmupMs } : {});
    log(`model ${opts.model} loaded; ready`);
    startSpontaneous(opts, {
      now,
      truth,
      crash: fatal,
      freeze(ms) {
        // The whole process stops: no answer, no token, no timer — as a frozen process looks.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
        state.servePending = true;
      },
      errorsUntil(until) {
        state.failUntil = until;
        setTimeout(() => (state.servePending = true), Math.max(0, until - now())).unref();
      },
    });
  });
  const stop = (signal: string): void => {
    log(`${signal}: shutting down`);
    shards.stop();
    server.close();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main(process.argv.slice(2));
