// The run's side of faults: injects through the ledger, reverts each fault when its time is
// up (an instant fault when the node serves again or the recovery limit passes; a held fault
// after its duration), retries a revert that failed, and at the end reverts everything —
// waiting for any injection or revert still under way, so none lands after the end.
import type { Cancel } from '../util/clock.js';
import type { Episode } from '../detect/detector.js';
import { FaultWindows } from '../detect/detector.js';
import { errorMessage } from '../errors.js';
import { activeFromLedger, injectFault, type ActiveFault } from '../fault/ledger.js';
import { isInstant, type FaultContext, type FaultInjector, type FaultTarget } from '../fault/types.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

interface Held {
  fault: ActiveFault;
  instant: boolean;
  timer: Cancel | null;
  /** An episode has been attributed to it. */
  episode: boolean;
  quiet: Cancel | null;
}

export class FaultSupervisor {
  private readonly active = new Map<string, Held>();
  private readonly underWay = new Set<Promise<unknown>>();
  private closing = false;
  /** A halt: nothing new is injected; what is active is reverted (and retried if that fails). */
  private halted = false;
  /** Told the number of active faults whenever it changes (the daemon's metrics). */
  onChange: ((active: number) => void) | null = null;

  constructor(
    private readonly store: Store,
    private readonly runId: string,
    private readonly ctx: FaultContext,
    private readonly windows: FaultWindows,
    private readonly log: Logger,
    private readonly retryMs = 5000,
  ) {}

  /**
   * Injects now; schedules the revert after `holdMs`. An instant fault that has caused no
   * episode after `quietMs` (a GPU worker lost and the node serving on, degraded) is over too:
   * it is reverted then rather than at the recovery limit. Failure is logged and the run goes on.
   */
  inject(id: string, injector: FaultInjector<unknown>, target: FaultTarget, params: unknown, holdMs: number, quietMs?: number): Promise<boolean> {
    if (this.closing || this.halted) return Promise.resolve(false);
    return this.track(
      (async () => {
        this.windows.open(target.node, id, this.ctx.clock.now());
        try {
          const fault = await injectFault(this.store, this.runId, injector, target, params, this.ctx, id);
          const held: Held = { fault, instant: isInstant(injector, params), timer: null, episode: false, quiet: null };
          this.active.set(id, held);
          this.onChange?.(this.active.size);
          this.schedule(id, holdMs);
          if (held.instant && quietMs !== undefined && quietMs < holdMs) {
            held.quiet = this.ctx.clock.after(quietMs, () => {
              if (!held.episode && this.active.get(id) === held) {
                this.log.info({ fault: id }, `no episode ${quietMs} ms after an instant fault: the node kept serving; reverting`);
                void this.revert(id);
              }
            });
          }
          return true;
        } catch (err) {
          const leftover = (err as { details?: { undoFailed?: boolean } }).details?.undoFailed === true ? activeFromLedger(this.store, id, this.ctx) : null;
          if (leftover) {
            // Part of it may be in place: its window stays open and its revert is retried.
            this.log.error({ fault: id, err: errorMessage(err) }, 'fault injection failed and its undo too; retrying the revert');
            this.active.set(id, { fault: leftover, instant: false, timer: null, episode: false, quiet: null });
            this.onChange?.(this.active.size);
            this.schedule(id, this.retryMs);
            return false;
          }
          // Nothing (left) in place: a later failure on this node is not this fault's doing.
          this.windows.remove(id);
          this.log.error({ fault: id, err: errorMessage(err) }, 'fault injection failed; the run goes on');
          return false;
        }
      })(),
    );
  }

  /** An instant fault is over once its episode has ended (or outlived the recovery limit). */
  onEpisode(e: Episode): void {
    if (!e.faultId) return;
    const held = this.active.get(e.faultId);
    if (held) held.episode = true;
    if (held?.instant && (e.servingAgainAt !== null || e.status === 'recovery_failed')) void this.revert(e.faultId);
  }

  get activeCount(): number {
    return this.active.size;
  }

  /** Reverts one fault now. On failure it stays active and is retried (or by the next start). */
  revert(id: string): Promise<void> {
    const held = this.active.get(id);
    if (!held) return Promise.resolve();
    this.active.delete(id);
    this.onChange?.(this.active.size);
    held.timer?.();
    held.quiet?.();
    held.quiet = null;
    return this.track(
      held.fault.revert().then(
        () => this.windows.close(id, this.ctx.clock.now()),
        (err: unknown) => {
          this.log.error({ fault: id, err: errorMessage(err) }, this.closing ? 'revert failed; the ledger keeps the fault active for the next start' : `revert failed; retrying in ${this.retryMs} ms`);
          this.active.set(id, held);
          this.onChange?.(this.active.size);
          if (!this.closing) this.schedule(id, this.retryMs);
        },
      ),
    );
  }

  /** The halt condition: no further injections; revert what is active now, retrying failures. */
  halt(): void {
    this.halted = true;
    for (const id of [...this.active.keys()]) void this.revert(id);
  }

  /** At the end of a run: wait for work under way, then revert everything (two tries each). */
  async revertAll(): Promise<void> {
    this.closing = true;
    for (let attempt = 0; attempt < 2; attempt++) {
      while (this.underWay.size > 0) await Promise.allSettled([...this.underWay]);
      for (const id of [...this.active.keys()]) await this.revert(id);
    }
  }

  private schedule(id: string, ms: number): void {
    const held = this.active.get(id);
    if (!held) return;
    held.timer = this.ctx.clock.after(ms, () => void this.revert(id));
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.underWay.add(p);
    void p.finally(() => this.underWay.delete(p)).catch(() => undefined);
    return p;
  }
}
