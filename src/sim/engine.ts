// The simulated engine: continuous batching over a tensor-parallel group of shard processes.
// A request is prefilled (time to first token grows with the prompt), then joins the decode
// batch; every decode step needs an acknowledgement from every shard, so by default one lost
// shard stops the whole node — which is how vLLM/SGLang/TGI behave when a GPU worker dies.
// --worker-loss chooses the other reactions seen in the field: a hung collective, or a
// group that goes on degraded.
import { fork } from 'node:child_process';
import type { SimOptions } from './options.js';
import type { WorkerMessage } from './worker.js';
import { seededRandom, type Random } from '../util/random.js';

export interface Sequence {
  promptTokens: number;
  maxTokens: number;
  /** Called with each generated token's text and the time it was produced (epoch ms). */
  onToken(text: string, index: number, at: number): void;
  onFinish(reason: 'length' | 'stop'): void;
}

/** What the group hears from one shard process. */
export interface ShardListener {
  message(m: WorkerMessage): void;
  /** The process is gone; `how` is the signal name or `code N`. */
  exit(how: string): void;
}

/** One shard process as the group drives it: a forked child in the node, a stand-in in tests. */
export interface ShardProcess {
  readonly pid: number | undefined;
  step(n: number): void;
  kill(): void;
}

export type SpawnShard = (rank: number, listener: ShardListener) => ShardProcess;

/** What the group tells the node: it must abort (fatal), or a line for its log (warn). */
export interface GroupEvents {
  fatal(reason: string): void;
  warn(message: string): void;
}

/** ok: every rank answers; hung: a lost rank is still waited for; degraded: going on without it. */
export type GroupCondition = 'ok' | 'hung' | 'degraded';

const WORDS = ' the a model token stream batch shard rank kernel tensor cache prefill decode gpu node'.split(' ');

/** Shards as forked processes running this same script with --worker. */
export function forkShards(script: string, opts: SimOptions): SpawnShard {
  return (rank, listener) => {
    const child = fork(script, ['--worker', String(rank), String(opts.loadMs), String(opts.weightsMb)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    child.on('message', (m: WorkerMessage) => listener.message(m));
    child.on('exit', (code, signal) => listener.exit(signal ?? `code ${code}`));
    // A send to a rank that has just died fails; its 'exit' is what tells the group.
    child.on('error', () => undefined);
    return {
      get pid() {
        return child.pid;
      },
      step(n) {
        if (child.connected) child.send({ type: 'step', step: n }, () => undefined);
      },
      kill() {
        child.kill('SIGKILL');
      },
    };
  };
}

/**
 * The shard processes of one node. Every decode step needs an acknowledgement from every rank
 * it waits for; what a lost rank does to the group is `opts.workerLoss`. A step that is not
 * acknowledged within stepTimeoutMs aborts the node (the NCCL watchdog) — in a hung group too,
 * so a hang lasts until a stuck step has waited that long.
 */
export class ShardGroup {
  private readonly shards: ShardProcess[] = [];
  private readonly alive = new Set<number>();
  /** The ranks whose ack completes a step: all, except those lost while degraded. */
  private readonly required = new Set<number>();
  private readonly readyRanks = new Set<number>();
  private pending: { step: number; acked: Set<number>; resolve: () => void; timer: NodeJS.Timeout } | null = null;
  private fatal: string | null = null;
  private cond: GroupCondition = 'ok';
  private markReady!: () => void;
  readonly ready: Promise<void>;

  constructor(
    private readonly opts: SimOptions,
    spawn: SpawnShard,
    private readonly events: GroupEvents,
  ) {
    this.ready = new Promise((r) => (this.markReady = r));
    for (let rank = 0; rank < opts.gpus; rank++) {
      this.alive.add(rank);
      this.required.add(rank);
      this.shards.push(spawn(rank, { message: (m) => this.onMessage(rank, m), exit: (how) => this.lost(rank, how) }));
    }
  }

  get pids(): number[] {
    return this.shards.map((s) => s.pid ?? -1);
  }

  get condition(): GroupCondition {
    return this.cond;
  }

  get workersAlive(): number {
    return this.alive.size;
  }

  /** True while no step can complete (a hung group): work waits and nothing is produced. */
  get stalled(): boolean {
    return this.cond === 'hung';
  }

  /** How many times longer a decode step takes than on the full group. */
  get slowdown(): number {
    return this.cond === 'degraded' ? this.opts.degradedFactor : 1;
  }

  /** Runs one decode step on every live shard. */
  step(n: number): Promise<void> {
    if (this.fatal) return Promise.reject(new Error(this.fatal));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const missing = [...this.required].filter((r) => !this.pending?.acked.has(r));
        this.die(`decode step ${n} not acknowledged by all ${this.required.size} shards within ${this.opts.stepTimeoutMs} ms (watchdog timeout); no ack from rank ${missing.join(',')}`);
      }, this.opts.stepTimeoutMs);
      this.pending = { step: n, acked: new Set(), resolve, timer };
      for (const rank of this.alive) this.shards[rank]?.step(n);
    });
  }

  stop(): void {
    this.fatal ??= 'stopping';
    if (this.pending) clearTimeout(this.pending.timer);
    for (const s of this.shards) s.kill();
  }

  private onMessage(rank: number, m: WorkerMessage): void {
    if (m.type === 'ready') {
      this.readyRanks.add(rank);
      this.checkReady();
    }
    if (m.type === 'ack' && this.pending && m.step === this.pending.step) {
      this.pending.acked.add(rank);
      this.checkStep();
    }
  }

  private checkReady(): void {
    if (this.required.size > 0 && [...this.required].every((r) => this.readyRanks.has(r))) this.markReady();
  }

  private checkStep(): void {
    const p = this.pending;
    if (!p || this.fatal || ![...this.required].every((r) => p.acked.has(r))) return;
    this.pending = null;
    clearTimeout(p.timer);
    p.resolve();
  }

  private lost(rank: number, how: string): void {
    if (this.fatal || !this.alive.delete(rank)) return;
    const what = `GPU worker rank ${rank} (pid ${this.shards[rank]?.pid}) exited (${how})`;
    switch (this.opts.workerLoss) {
      case 'crash':
        return this.die(`${what}; tensor-parallel group is broken`);
      case 'hang':
        // Rank `rank` stays required: every collective from now on waits for it forever.
        this.cond = 'hung';
        this.events.warn(
          `${what}; worker-loss=hang: the tensor-parallel group waits for it — decode steps, requests and /health stall until a step has waited ${this.opts.stepTimeoutMs} ms (watchdog)`,
        );
        return;
      case 'degraded':
        if (this.alive.size === 0) return this.die(`${what}; no GPU worker left`);
        this.required.delete(rank);
        this.cond = 'degraded';
        this.events.warn(`${what}; worker-loss=degraded: going on with ${this.alive.size} of ${this.opts.gpus} ranks, decode steps ${this.opts.degradedFactor}x slower`);
        this.checkReady();
        this.checkStep();
        return;
    }
  }

  private die(reason: string): void {
    if (this.fatal) return;
    this.fatal = reason;
    if (this.pending) clearTimeout(this.pending.timer);
    this.events.fatal(reason);
  }
}

export class BatchEngine {
  private readonly waiting: Sequence[] = [];
  private readonly prefilling = new Set<Sequence>();
  private readonly decoding = new Map<Sequence, number>();
  private stepping = false;
  private stepNo = 0;
  private readonly rng: Random;

  constructor(
    private readonly opts: SimOptions,
    private readonly shards: Pick<ShardGroup, 'step' | 'stalled' | 'slowdown'>,
    private readonly now: () => number,
  ) {
    this.rng = seededRandom(opts.seed);
  }

  get running(): number {
    return this.prefilling.size + this.decoding.size;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** KV-cache tokens reserved by the sequences admitted (prompt + every token they may produce). */
  get kvTokensInUse(): number {
    let n = 0;
    for (const seq of this.prefilling) n += seq.promptTokens + seq.maxTokens;
    for (const seq of this.decoding.keys()) n += seq.promptTokens + seq.maxTokens;
    return n;
  }

  /** Whether the queue takes one more (`--max-queue`); when not the server answers 503, as vLLM and TGI do when overloaded. */
  get hasRoom(): boolean {
    return this.opts.maxQueue === 0 || this.waiting.length < this.opts.maxQueue;
  }

  submit(seq: Sequence): void {
    this.waiting.push(seq);
    this.admit();
  }

  /** Drops a sequence whose client went away. */
  cancel(seq: Sequence): void {
    const i = this.waiting.indexOf(seq);
    if (i >= 0) this.waiting.splice(i, 1);
    this.prefilling.delete(seq);
    this.decoding.delete(seq);
    this.admit();
  }

  private admit(): void {
    // Capacity: at most maxBatch sequences per GPU group, and their KV cache must fit (a
    // sequence reserves its prompt and its whole output, as vLLM's scheduler must be able to);
    // the rest wait, so time to first token grows with the queue.
    let kv = this.kvTokensInUse;
    while (this.waiting.length > 0 && this.running < this.opts.maxBatch) {
      const head = this.waiting[0] as Sequence;
      const need = head.promptTokens + head.maxTokens;
      if (this.running > 0 && kv + need > this.opts.kvTokens) break;
      kv += need;
      const seq = this.waiting.shift() as Sequence;
      this.prefilling.add(seq);
      const prefill = this.jittered(this.opts.ttftMs + this.opts.prefillMsPerToken * seq.promptTokens);
      setTimeout(() => {
        if (!this.prefilling.delete(seq)) return;
        if (this.shards.stalled) {
          // The first token needs the group as well: it waits for the next step, which a hung
          // group never completes (and whose watchdog is then the only way out).
          this.decoding.set(seq, 0);
          this.kick();
          return;
        }
        seq.onToken(this.word(), 0, this.now());
        if (seq.maxTokens <= 1) {
          seq.onFinish('length');
          this.admit();
          return;
        }
        this.decoding.set(seq, 1);
        this.kick();
      }, prefill);
    }
  }

  private kick(): void {
    if (this.stepping || this.decoding.size === 0) return;
    this.stepping = true;
    const started = this.now();
    const n = ++this.stepNo;
    this.shards.step(n).then(
      () => {
        const wait = Math.max(0, this.jittered(this.opts.itlMs) * this.shards.slowdown - (this.now() - started));
        setTimeout(() => this.emitStep(), wait);
      },
      () => {
        // The group is broken; the node is going down (the fatal handler exits the process).
      },
    );
  }

  private emitStep(): void {
    const at = this.now();
    let finished = false;
    for (const [seq, produced] of [...this.decoding]) {
      seq.onToken(this.word(), produced, at);
      if (produced + 1 >= seq.maxTokens) {
        this.decoding.delete(seq);
        seq.onFinish('length');
        finished = true;
      } else {
        this.decoding.set(seq, produced + 1);
      }
    }
    this.stepping = false;
    if (finished) this.admit();
    this.kick();
  }

  /** Until when the node is warming up (prefill and steps warmupFactor times slower). */
  warmUntil = 0;

  private jittered(ms: number): number {
    const warm = this.now() < this.warmUntil ? this.opts.warmupFactor : 1;
    return (this.opts.jitter > 0 ? ms * (1 + this.opts.jitter * (2 * this.rng.next() - 1)) : ms) * warm;
  }

  private word(): string {
    return ` ${WORDS[Math.floor(this.rng.next() * WORDS.length)]}`;
  }
}
