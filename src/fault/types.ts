// The contract every fault plug-in in faults/ implements. Injection is split in three so the
// ledger can hold everything needed to undo a fault *before* anything is touched:
//   prepare (read-only: look at the target, compute the undo record) → ledger write →
//   inject (touch the target) → … → revert(undo) (idempotent; also used after a crash of
//   Gauntlet, with nothing but the undo record from the ledger).
import type { z } from 'zod';
import type { Docker } from '../docker/engine.js';
import type { Logger } from '../log.js';
import type { Clock } from '../util/clock.js';

export interface FaultTarget {
  /** The node's name in the plan. */
  node: string;
  containerId: string | null;
  containerName: string | null;
}

export interface FaultContext {
  docker: Docker | null;
  log: Logger;
  clock: Clock;
}

/** JSON-serialisable; written to the fault ledger before injection. */
export type UndoRecord = Record<string, unknown>;

export interface RevertResult {
  /** What revert did, in words, for the journal: "started container", "nothing: restarted by policy". */
  action: string;
}

export interface FaultInjector<P = unknown> {
  kind: string;
  description: string;
  /** True when the fault needs a container (Docker) target; bare endpoints are refused. */
  needsContainer: boolean;
  /**
   * True when the fault is a single blow (a crash) rather than a held condition: it is
   * reverted once the node serves again or the plan's recovery limit passes.
   */
  instant: boolean;
  params: z.ZodType<P>;
  prepare(target: FaultTarget, params: P, ctx: FaultContext): Promise<UndoRecord>;
  /**
   * Makes the fault happen. Returns the moment it landed (epoch ms, from ctx.clock, taken
   * right at the kill/rule/qdisc) and details for the journal (pid killed, rule added …).
   */
  inject(target: FaultTarget, params: P, undo: UndoRecord, ctx: FaultContext): Promise<{ at: number; detail: Record<string, unknown> }>;
  /** Puts the target back as it was. Idempotent; safe to call for a fault that never landed. */
  revert(undo: UndoRecord, ctx: FaultContext): Promise<RevertResult>;
}
