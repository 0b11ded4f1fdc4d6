// Entry point of the simulated multi-GPU inference node (`dist/sim.cjs`), used as a plain
// process and as the main process of the gauntlet-sim image. With --worker it is a shard.
import { BatchEngine, ShardGroup, forkShards } from './engine.js';
import { parseSimArgs } from './options.js';
import { createSimServer, type NodeState } from './server.js';
import { runWorker } from './worker.js';

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
  const fatal = (reason: string): void => {
    process.stderr.write(`${new Date().toISOString()} sim[${process.pid}] FATAL ${reason}; aborting\n`);
    shards.stop();
    process.exit(1);
  };
  const shards = new ShardGroup(opts, forkShards(__filename, opts), { fatal, warn: (message) => log(`WARN ${message}`) });
  const engine = new BatchEngine(opts, shards, now);
  const state: NodeState = { ready: false, engine, group: shards, opts, now, counters: { requests: 0, tokens: 0, errors: 0 } };
  const server = createSimServer(state);
  server.listen(opts.port, opts.host, () => {
    log(`listening on ${opts.host}:${opts.port}; loading model ${opts.model} on ${opts.gpus} GPU(s) (shard pids ${shards.pids.join(',')}); on losing one: ${opts.workerLoss}`);
  });
  server.on('error', (err) => fatal(`HTTP server: ${err.message}`));
  void shards.ready.then(() => {
    state.ready = true;
    log(`model ${opts.model} loaded; ready`);
  });
  if (opts.spontaneousMtbfS > 0) {
    // A seeded exponential time to a spontaneous crash, like an Xid error taking a GPU off the bus.
    let s = (opts.seed ^ process.pid) >>> 0 || 1;
    s = (Math.imul(s ^ (s >>> 15), s | 1) ^ 0x9e3779b9) >>> 0;
    const u = (s % 1_000_000) / 1_000_000;
    setTimeout(() => fatal('simulated spontaneous fault (Xid 79: GPU has fallen off the bus)'), -Math.log(1 - u) * opts.spontaneousMtbfS * 1000).unref();
  }
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
