// The simulator's reactions to losing a GPU worker, on stand-in shards and fake timers: no
// processes, exact times.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BatchEngine, ShardGroup, type ShardListener, type SpawnShard } from '../../../src/sim/engine.js';
import { DEFAULTS, parseSimArgs, type SimOptions, type WorkerLoss } from '../../../src/sim/options.js';

interface FakeShard {
  listener: ShardListener;
  /** When false the shard takes steps but never acknowledges them (a stopped process). */
  acks: boolean;
  steps: number[];
}

function fakeNode(workerLoss: WorkerLoss, extra: Partial<SimOptions> = {}) {
  const opts: SimOptions = { ...DEFAULTS, gpus: 4, jitter: 0, itlMs: 20, ttftMs: 60, prefillMsPerToken: 0, stepTimeoutMs: 5000, workerLoss, ...extra };
  const shards: FakeShard[] = [];
  const spawn: SpawnShard = (rank, listener) => {
    const shard: FakeShard = { listener, acks: true, steps: [] };
    shards.push(shard);
    return {
      pid: 1000 + rank,
      step(n) {
        shard.steps.push(n);
        if (shard.acks) queueMicrotask(() => listener.message({ type: 'ack', step: n, rank }));
      },
      kill() {},
    };
  };
  const fatal: string[] = [];
  const warn: string[] = [];
  const group = new ShardGroup(opts, spawn, { fatal: (r) => fatal.push(r), warn: (m) => warn.push(m) });
  const engine = new BatchEngine(opts, group, () => Date.now());
  const lose = (rank: number): void => shards[rank]?.listener.exit('SIGKILL');
  const readyAll = (): void => shards.forEach((s, rank) => s.listener.message({ type: 'ready', rank }));
  return { opts, group, engine, shards, fatal, warn, lose, readyAll };
}

/** A sequence that records when each token came. */
function recorder(maxTokens: number) {
  const at: number[] = [];
  let finished: string | null = null;
  return {
    at,
    finished: () => finished,
    seq: { promptTokens: 8, maxTokens, onToken: (_t: string, _i: number, when: number) => void at.push(when), onFinish: (r: string) => void (finished = r) },
  };
}

function gaps(at: number[]): number[] {
  return at.slice(1).map((t, i) => t - (at[i] as number));
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ShardGroup: losing a GPU worker', () => {
  it('crash: the node is told to abort at once, and no step runs after', async () => {
    const n = fakeNode('crash');
    n.readyAll();
    await n.group.ready;
    n.lose(2);
    expect(n.fatal).toEqual(['GPU worker rank 2 (pid 1002) exited (SIGKILL); tensor-parallel group is broken']);
    await expect(n.group.step(1)).rejects.toThrow(/tensor-parallel group is broken/);
    n.lose(3);
    expect(n.fatal).toHaveLength(1);
  });

  it('hang: steps wait for the lost rank until the watchdog fires, stepTimeoutMs after the stuck step began', async () => {
    const n = fakeNode('hang');
    n.readyAll();
    await expect(n.group.step(1)).resolves.toBeUndefined();
    n.lose(1);
    expect(n.fatal).toEqual([]);
    expect(n.warn).toHaveLength(1);
    expect(n.warn[0]).toMatch(/^GPU worker rank 1 \(pid 1001\) exited \(SIGKILL\); worker-loss=hang: .* until a step has waited 5000 ms \(watchdog\)$/);
    expect({ condition: n.group.condition, alive: n.group.workersAlive, stalled: n.group.stalled }).toEqual({ condition: 'hung', alive: 3, stalled: true });
    let done = false;
    void n.group.step(2).then(() => (done = true));
    expect(n.shards.map((s) => s.steps.at(-1))).toEqual([2, 1, 2, 2]); // the dead rank is not sent to
    await vi.advanceTimersByTimeAsync(4999);
    expect({ done, fatal: n.fatal }).toEqual({ done: false, fatal: [] });
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(false);
    expect(n.fatal).toEqual(['decode step 2 not acknowledged by all 4 shards within 5000 ms (watchdog timeout); no ack from rank 1']);
  });

  it('degraded: the group goes on with the ranks left; a step waiting for the lost rank completes without it', async () => {
    const n = fakeNode('degraded', { degradedFactor: 3 });
    n.readyAll();
    (n.shards[3] as FakeShard).acks = false; // rank 3 stops answering mid-step, then dies
    let done = false;
    void n.group.step(1).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(10);
    expect(done).toBe(false);
    n.lose(3);
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
    expect(n.fatal).toEqual([]);
    expect(n.warn).toEqual(['GPU worker rank 3 (pid 1003) exited (SIGKILL); worker-loss=degraded: going on with 3 of 4 ranks, decode steps 3x slower']);
    expect({ condition: n.group.condition, alive: n.group.workersAlive, slowdown: n.group.slowdown, stalled: n.group.stalled }).toEqual({ condition: 'degraded', alive: 3, slowdown: 3, stalled: false });
    await expect(n.group.step(2)).resolves.toBeUndefined();
  });

  it('degraded: a rank lost while loading does not keep the node from becoming ready; losing every rank is fatal', async () => {
    const n = fakeNode('degraded');
    let ready = false;
    void n.group.ready.then(() => (ready = true));
    [0, 1, 2].forEach((rank) => n.shards[rank]?.listener.message({ type: 'ready', rank }));
    await vi.advanceTimersByTimeAsync(0);
    expect(ready).toBe(false);
    n.lose(3);
    await vi.advanceTimersByTimeAsync(0);
    expect(ready).toBe(true);
    [0, 1, 2].forEach((rank) => n.lose(rank));
    expect(n.fatal).toEqual(['GPU worker rank 2 (pid 1002) exited (SIGKILL); no GPU worker left']);
    expect(n.group.workersAlive).toBe(0);
  });

  it('a shard that exits while the node stops is not a loss', () => {
    const n = fakeNode('hang');
    n.group.stop();
    n.lose(0);
    expect({ fatal: n.fatal, warn: n.warn, alive: n.group.workersAlive }).toEqual({ fatal: [], warn: [], alive: 4 });
  });
});

describe('BatchEngine on a group that lost a worker', () => {
  it('hang: the stream in flight and a new request get no token; the watchdog then aborts the node', async () => {
    const n = fakeNode('hang', { stepTimeoutMs: 30_000 });
    n.readyAll();
    const inflight = recorder(1000);
    n.engine.submit(inflight.seq);
    await vi.advanceTimersByTimeAsync(60 + 20 * 10);
    expect(inflight.at.length).toBeGreaterThanOrEqual(10);
    n.lose(3);
    const lostAt = Date.now();
    const before = inflight.at.length;
    const fresh = recorder(5);
    n.engine.submit(fresh.seq);
    await vi.advanceTimersByTimeAsync(29_000);
    // At most the step already acknowledged before the loss is emitted.
    expect(inflight.at.length - before).toBeLessThanOrEqual(1);
    expect(inflight.at.filter((t) => t > lostAt + 20)).toEqual([]);
    expect(fresh.at).toEqual([]);
    expect(n.engine.running).toBe(2);
    expect(n.fatal).toEqual([]);
    await vi.advanceTimersByTimeAsync(1100);
    expect(n.fatal[0]).toMatch(/within 30000 ms \(watchdog timeout\); no ack from rank 3$/);
  });

  it('hang while idle: a new request gets no first token, and its stuck step arms the watchdog', async () => {
    const n = fakeNode('hang', { stepTimeoutMs: 2000 });
    n.readyAll();
    n.lose(0);
    const fresh = recorder(5);
    n.engine.submit(fresh.seq);
    await vi.advanceTimersByTimeAsync(60 + 1999);
    expect({ tokens: fresh.at.length, fatal: n.fatal }).toEqual({ tokens: 0, fatal: [] });
    await vi.advanceTimersByTimeAsync(1);
    expect(n.fatal[0]).toMatch(/within 2000 ms \(watchdog timeout\); no ack from rank 0$/);
  });

  it('degraded: decode steps take degradedFactor times longer, and requests still finish', async () => {
    const n = fakeNode('degraded'); // default factor 2
    expect(n.opts.degradedFactor).toBe(2);
    n.readyAll();
    const before = recorder(11);
    n.engine.submit(before.seq);
    await vi.advanceTimersByTimeAsync(1000);
    expect(before.finished()).toBe('length');
    n.lose(1);
    const after = recorder(11);
    n.engine.submit(after.seq);
    await vi.advanceTimersByTimeAsync(1000);
    expect(after.finished()).toBe('length');
    expect(gaps(before.at)).toEqual(Array(10).fill(20));
    expect(gaps(after.at)).toEqual(Array(10).fill(40));
    // prefill is not a decode step: time to first token is unchanged
    expect(after.at.length).toBe(11);
  });
});

describe('--worker-loss and --degraded-factor', () => {
  it('parse, default to crash and 2, and refuse bad values naming the option', () => {
    expect(parseSimArgs([])).toMatchObject({ workerLoss: 'crash', degradedFactor: 2 });
    expect(parseSimArgs(['--worker-loss', 'hang', '--degraded-factor=3.5'])).toMatchObject({ workerLoss: 'hang', degradedFactor: 3.5 });
    expect(() => parseSimArgs(['--worker-loss', 'explode'])).toThrow('option --worker-loss: expected one of crash, hang, degraded, got "explode"');
    expect(() => parseSimArgs(['--degraded-factor', '0.5'])).toThrow('option --degraded-factor: expected a number in [1, 1000], got "0.5"');
    expect(parseSimArgs(['--leak-kb-per-request', '512'])).toMatchObject({ leakKbPerRequest: 512 });
    expect(parseSimArgs([])).toMatchObject({ leakKbPerRequest: 0 });
    expect(() => parseSimArgs(['--leak-kb-per-request', '-1'])).toThrow('option --leak-kb-per-request: expected a number in [0, 1048576], got "-1"');
  });
});

describe('--time-scale', () => {
  it('divides every duration by the scale, wherever the flag stands, and nothing else', () => {
    const base = parseSimArgs(['--ttft-ms', '200', '--itl-ms', '20', '--load-ms', '6000', '--spontaneous-mtbf-s', '3600']);
    const scaled = parseSimArgs(['--time-scale', '10', '--ttft-ms', '200', '--itl-ms', '20', '--load-ms', '6000', '--spontaneous-mtbf-s', '3600']);
    expect(scaled).toMatchObject({ timeScale: 10, ttftMs: 20, itlMs: 2, loadMs: 600, spontaneousMtbfS: 360, prefillMsPerToken: base.prefillMsPerToken / 10, warmupMs: 0 });
    expect(scaled.maxBatch).toBe(base.maxBatch);
    expect(scaled.kvTokens).toBe(base.kvTokens);
    expect(parseSimArgs(['--ttft-ms', '200', '--time-scale=4'])).toMatchObject({ ttftMs: 50 });
    expect(() => parseSimArgs(['--time-scale', '0.5'])).toThrow('option --time-scale: expected a number in [1, 100000], got "0.5"');
  });
});
