// The simulated engine: continuous batching over a tensor-parallel group of shard processes.
// A request is prefilled (time to first token grows with the prompt), then joins the decode
// batch; every decode step needs an acknowledgement from every shard, so one lost shard
// stops the whole node — which is how vLLM/SGLang/TGI behave when a GPU worker dies.
import { fork, type ChildProcess } from 'node:child_process';
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

export type FatalHandler = (reason: string) => void;

const WORDS = ' the a model token stream batch shard rank kernel tensor cache prefill decode gpu node'.split(' ');

/** The shard processes of one node. Rejects steps and calls onFatal when any shard is lost. */
export class ShardGroup {
  private readonly children: ChildProcess[] = [];
  private readyCount = 0;
  private pending: { step: number; acks: number; resolve: () => void; timer: NodeJS.Timeout } | null = null;
  private fatal: string | null = null;
  readonly ready: Promise<void>;

  constructor(
    private readonly opts: SimOptions,
    script: string,
    private readonly onFatal: FatalHandler,
  ) {
    let markReady!: () => void;
    this.ready = new Promise((r) => (markReady = r));
    for (let rank = 0; rank < opts.gpus; rank++) {
      const child = fork(script, ['--worker', String(rank), String(opts.loadMs), String(opts.weightsMb)], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
      });
      child.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready' && ++this.readyCount === opts.gpus) markReady();
        if (m.type === 'ack' && this.pending && m.step === this.pending.step && ++this.pending.acks === opts.gpus) {
          const p = this.pending;
          this.pending = null;
          clearTimeout(p.timer);
          p.resolve();
        }
      });
      child.on('exit', (code, signal) => {
        this.die(`GPU worker rank ${rank} (pid ${child.pid}) exited (${signal ?? `code ${code}`}); tensor-parallel group is broken`);
      });
      this.children.push(child);
    }
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid ?? -1);
  }

  /** Runs one decode step on every shard. */
  step(n: number): Promise<void> {
    if (this.fatal) return Promise.reject(new Error(this.fatal));
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.die(`decode step ${n} not acknowledged by all ${this.opts.gpus} shards within ${this.opts.stepTimeoutMs} ms (watchdog timeout)`);
      }, this.opts.stepTimeoutMs);
      this.pending = { step: n, acks: 0, resolve, timer };
      for (const c of this.children) c.send({ type: 'step', step: n });
    });
  }

  private die(reason: string): void {
    if (this.fatal) return;
    this.fatal = reason;
    this.onFatal(reason);
  }

  stop(): void {
    this.fatal ??= 'stopping';
    for (const c of this.children) c.kill('SIGKILL');
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
    private readonly shards: Pick<ShardGroup, 'step'>,
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
    while (this.waiting.length > 0 && this.running < this.opts.maxBatch) {
      const seq = this.waiting.shift() as Sequence;
      this.prefilling.add(seq);
      const prefill = this.jittered(this.opts.ttftMs + this.opts.prefillMsPerToken * seq.promptTokens);
      setTimeout(() => {
        if (!this.prefilling.delete(seq)) return;
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
        const wait = Math.max(0, this.jittered(this.opts.itlMs) - (this.now() - started));
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

  private jittered(ms: number): number {
    return this.opts.jitter > 0 ? ms * (1 + this.opts.jitter * (2 * this.rng.next() - 1)) : ms;
  }

  private word(): string {
    return ` ${WORDS[Math.floor(this.rng.next() * WORDS.length)]}`;
  }
}
