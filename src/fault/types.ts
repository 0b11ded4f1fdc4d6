// The contract every fault plug-in in faults/ implements. Injection is split in three so the
// ledger can hold everything needed to undo a fault *before* anything is touched:
//   prepare (read-only: look at the target, compute the undo record) → ledger write →
//   inject (touch the target) → … → revert(undo) (idempotent; also used after a crash of
//   Gauntlet, with nothing but the undo record from the ledger).
// `describe` is what --dry-run prints: the actions inject and revert would take, read-only.
import type { ProcessHost } from '../util/proc.js';
import type { HostAccess } from './host-access.js';
import type { EngineSpec } from '../docker/engines.js';
import type { EngineContexts } from './engine-contexts.js';
import type { z } from 'zod';
import type { Docker } from '../docker/engine.js';
import type { Logger } from '../log.js';
import type { Clock } from '../util/clock.js';
import { selfOwner } from '../util/proc.js';

export interface FaultTarget {
  /** The node's name in the plan. */
  node: string;
  containerId: string | null;
  containerName: string | null;
  /** The engine the container is on (null or absent: DOCKER_HOST's). */
  engine?: EngineSpec | null;
}

/** What this host can do, detected once (src/fault/host.ts); faults pick their driver from it. */
export interface HostCaps {
  /** The kernel has the netem qdisc (sch_netem). */
  netem: boolean;
  /** iptables runs and has the statistic and comment matches. */
  iptables: boolean;
  /** nsenter can enter another process's network namespace (root, host PID namespace). */
  nsenter: boolean;
  /** Why each missing capability is missing, for messages. */
  notes: Record<string, string>;
}

export interface FaultContext {
  docker: Docker | null;
  log: Logger;
  clock: Clock;
  /** Host capabilities; faults that need one and find it missing refuse with the reason. */
  caps?: HostCaps;
  /** Fault id, for labels, rule comments and helper names (`gauntlet:<id>`). */
  faultId?: string;
  /** The host's processes (default: the real ones, from /proc); a test's fake Docker brings its own. */
  processes?: ProcessHost;
  /**
   * The node's host, for what is done there rather than through the Docker API (signals, /proc,
   * network namespaces): default this machine; another engine's host through its agent.
   */
  host?: HostAccess;
  /** The engine `docker` talks to (null or absent: DOCKER_HOST's). */
  engine?: EngineSpec | null;
  /** Contexts for the other engines a fault (or a ledger row) may name. */
  engines?: EngineContexts;
  /**
   * The clock for waits on real machinery — a killed process to be reaped, Docker to register an
   * exit — which take real time whatever the plan's clock (a time-scaled run's clock would cut
   * them N times short). Default: `clock`.
   */
  machineClock?: Clock;
}

/** The clock a fault waits on for the kernel or Docker (FaultContext.machineClock). */
export function machineClock(ctx: FaultContext): Clock {
  return ctx.machineClock ?? ctx.clock;
}

/** JSON-serialisable; written to the fault ledger before injection. */
export type UndoRecord = Record<string, unknown>;

export interface RevertResult {
  /** What revert did, in words, for the journal: "started container", "nothing: restarted by policy". */
  action: string;
  /** What the fault turned out to do, where only the end tells (oom pressure: survived, with numbers). */
  result?: Record<string, unknown>;
}

export interface InjectResult {
  /** The moment it landed (epoch ms, from ctx.clock, taken right at the kill/rule/qdisc). */
  at: number;
  /** Details for the journal (pid killed, rule added …). */
  detail: Record<string, unknown>;
  /** The mechanism used when there is a choice (netem, iptables, proxy …); shown in reports. */
  driver?: string;
}

export interface FaultInjector<P = unknown> {
  kind: string;
  description: string;
  /** True when the fault needs a container (Docker) target; bare endpoints are refused. */
  needsContainer: boolean;
  /**
   * True when the fault is a single blow (a crash) rather than a held condition: it is
   * reverted once the node serves again or the plan's recovery limit passes. A held fault
   * is reverted after `holdMs(params)`.
   */
  instant: boolean | ((params: P) => boolean);
  params: z.ZodType<P>;
  /** How long a held fault lasts (ms), from its params; ignored for instant faults. */
  holdMs?(params: P): number;
  /**
   * Null when this host (and engine) can run the fault, else the reason it cannot — the demo
   * skips such kinds and says why; a plan that uses one fails at injection with the reason.
   */
  unsupported?(ctx: FaultContext): Promise<string | null>;
  /** Read-only: the actions inject (and revert) would take, one line each, for --dry-run. */
  describe(target: FaultTarget, params: P, ctx: FaultContext): Promise<string[]>;
  prepare(target: FaultTarget, params: P, ctx: FaultContext): Promise<UndoRecord>;
  inject(target: FaultTarget, params: P, undo: UndoRecord, ctx: FaultContext): Promise<InjectResult>;
  /** Puts the target back as it was. Idempotent; safe to call for a fault that never landed. */
  revert(undo: UndoRecord, ctx: FaultContext): Promise<RevertResult>;
}

/** Whether this fault, with these params, is a single blow (see FaultInjector.instant). */
export function isInstant<P>(injector: FaultInjector<P>, params: P): boolean {
  return typeof injector.instant === 'function' ? injector.instant(params) : injector.instant;
}

/** Labels every helper container carries, so it can be found and removed without the ledger. */
export function helperLabels(faultId: string, kind: string): Record<string, string> {
  // The owner (host|pid|start time) lets a sweep by another Gauntlet process leave a helper of
  // a fault that is still running alone, even without that process's ledger.
  return { gauntlet: '1', 'gauntlet.component': 'fault-helper', 'gauntlet.fault': faultId, 'gauntlet.fault.kind': kind, 'gauntlet.owner': selfOwner() };
}

/** The comment/tag on iptables rules and the like: `gauntlet:<fault id>`. */
export function ruleComment(faultId: string): string {
  return `gauntlet:${faultId}`;
}
