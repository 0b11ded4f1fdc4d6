// Injection through the fault ledger. The order is what makes "a fault is never left
// behind" true: prepare (read-only) → ledger row with the undo record, on disk →
// inject → row marked active → … → revert → row marked reverted, with what revert did.
// A Gauntlet process that dies in between leaves a row in 'injecting' or 'active', and the
// next one to start reverts it from the undo record alone (revertLeftovers).
import { randomUUID } from 'node:crypto';
import { FAULTS } from '../../faults/index.js';
import { GauntletError, errorMessage } from '../errors.js';
import type { Store, FaultRow } from '../store/store.js';
import type { FaultContext, FaultInjector, FaultTarget, UndoRecord } from './types.js';
import { ownerAlive, selfOwner } from '../util/proc.js';
import { sweepCandidates, sweepLeftovers } from './sweep.js';
import { contextFor, EngineContexts, ledgerEngine, sameEngine } from './engine-contexts.js';
import { engineKey, type EngineSpec } from '../docker/engines.js';

export interface ActiveFault {
  id: string;
  kind: string;
  node: string;
  injectedAt: number;
  /** The mechanism the fault used, where there is a choice. */
  driver: string | null;
  /** Idempotent: once it has succeeded, later calls return its result; a failed attempt can be retried. */
  revert(): Promise<string>;
}

export async function injectFault(
  store: Store,
  runId: string | null,
  injector: FaultInjector<unknown>,
  target: FaultTarget,
  params: unknown,
  ctx: FaultContext,
  id: string = randomUUID(),
): Promise<ActiveFault> {
  const log = ctx.log.child({ fault: id, kind: injector.kind, node: target.node });
  // on the node's engine: its Docker client, its host
  ctx = { ...contextFor(ctx, target.engine), faultId: id };
  const engine = ledgerEngine(target.engine);
  const plannedAt = ctx.clock.now();
  let undo: UndoRecord;
  try {
    undo = await injector.prepare(target, params, ctx);
  } catch (err) {
    note(log, () => store.insertFault(row(id, runId, injector.kind, target.node, params, {}, 'failed', plannedAt, { error: `prepare: ${errorMessage(err)}`, container_id: target.containerId, engine })));
    throw err instanceof GauntletError ? err : new GauntletError('GAUNTLET_FAULT_INJECT', [injector.kind, target.node, errorMessage(err)], { cause: err });
  }
  store.insertFault(row(id, runId, injector.kind, target.node, params, undo, 'injecting', plannedAt, { container_id: target.containerId, engine }));
  let injectedAt: number;
  let driver: string | null = null;
  try {
    const landed = await injector.inject(target, params, undo, ctx);
    injectedAt = landed.at;
    driver = landed.driver ?? null;
    // It is in place: a ledger that cannot say so now still holds it as 'injecting', which the
    // next start reverts; this run holds it as active either way.
    note(log, () => store.updateFault(id, { state: 'active', injected_at: injectedAt, detail: JSON.stringify(landed.detail), driver }));
    log.info({ detail: landed.detail, driver }, 'fault injected');
  } catch (err) {
    // Whatever part of it may have landed is undone before reporting the failure.
    let revertNote: string;
    try {
      revertNote = (await injector.revert(undo, ctx)).action;
    } catch (revertErr) {
      // Part of it may still be in place and the undo did not go through: the row stays
      // 'injecting', so the run retries it and the next start reverts it from the ledger.
      note(log, () => store.updateFault(id, { error: `injection failed: ${errorMessage(err)}; undo failed too: ${errorMessage(revertErr)}` }));
      throw new GauntletError('GAUNTLET_FAULT_INJECT', [injector.kind, target.node, `${errorMessage(err)}; undoing it failed too (${errorMessage(revertErr)}): left in the ledger to revert`], {
        cause: err,
        details: { undoFailed: true },
      });
    }
    note(log, () => store.updateFault(id, { state: 'failed', error: errorMessage(err), revert_action: revertNote, reverted_at: ctx.clock.now() }));
    throw err instanceof GauntletError ? err : new GauntletError('GAUNTLET_FAULT_INJECT', [injector.kind, target.node, errorMessage(err)], { cause: err });
  }

  let reverting: Promise<string> | null = null;
  return {
    id,
    kind: injector.kind,
    node: target.node,
    injectedAt,
    driver,
    revert() {
      // Concurrent calls share one attempt; after a failure the next call tries again.
      reverting ??= revertRecorded(store, injector, id, undo, ctx).catch((err: unknown) => {
        reverting = null;
        throw err;
      });
      return reverting;
    },
  };
}

async function revertRecorded(store: Store, injector: FaultInjector<unknown>, id: string, undo: UndoRecord, ctx: FaultContext, prefix = ''): Promise<string> {
  let out: { action: string; result?: unknown };
  try {
    out = await injector.revert(undo, { ...ctx, faultId: id });
  } catch (err) {
    // The row stays 'active': the next start tries again.
    note(ctx.log, () => store.updateFault(id, { error: `revert: ${errorMessage(err)}` }));
    throw new GauntletError('GAUNTLET_FAULT_REVERT', [id, errorMessage(err)], { cause: err });
  }
  // Reverted. A ledger that cannot record it (a full disk) keeps the row active, and the next
  // start reverts it again (reverts are idempotent); the revert itself is not retried.
  note(ctx.log, () => store.updateFault(id, { state: 'reverted', reverted_at: ctx.clock.now(), revert_action: prefix + out.action, ...(out.result ? { result: JSON.stringify(out.result) } : {}) }));
  ctx.log.info({ fault: id, action: out.action }, 'fault reverted');
  return out.action;
}

/**
 * A ledger write after the target was touched: if the store fails (it has told the run), the
 * fault's handling goes on; the ledger then errs on the side of reverting again at the next start.
 */
function note(log: FaultContext['log'], write: () => void): void {
  try {
    write();
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'the fault ledger could not record this step; the next start reverts from what it holds');
  }
}

/** An ActiveFault for a ledger row (a fault whose injection failed halfway): revert from its undo record. */
export function activeFromLedger(store: Store, id: string, ctx: FaultContext): ActiveFault | null {
  const f = store.getFault(id);
  const injector = f ? FAULTS[f.kind] : undefined;
  if (!f || !injector) return null;
  let reverting: Promise<string> | null = null;
  return {
    id,
    kind: f.kind,
    node: f.node,
    injectedAt: f.injected_at ?? f.planned_at ?? ctx.clock.now(),
    driver: f.driver ?? null,
    revert() {
      reverting ??= revertRecorded(store, injector, id, JSON.parse(f.undo) as UndoRecord, contextFor(ctx, engineOf(f))).catch((err: unknown) => {
        reverting = null;
        throw err;
      });
      return reverting;
    },
  };
}

/**
 * Records an injection that was decided against (blast radius, halt condition, a kind this
 * host cannot run): a ledger row in state 'skipped' with the reason; nothing is touched.
 */
export function recordSkipped(store: Store, runId: string | null, id: string, kind: string, target: FaultTarget, params: unknown, at: number, reason: string): void {
  store.insertFault(row(id, runId, kind, target.node, params, {}, 'skipped', at, { error: reason, container_id: target.containerId, engine: ledgerEngine(target.engine) }));
}

/**
 * Reverts every fault the ledger still holds as injecting/active (left by a Gauntlet process
 * that was killed). Faults whose owner is a live process on this host are left to it unless
 * `force`. Returns what was done, one line per fault.
 */
export async function revertLeftovers(store: Store, ctx: FaultContext, options: { force?: boolean; containers?: readonly string[] } = {}): Promise<string[]> {
  // Each fault goes back to its own engine (the ledger says which); agents started here for
  // that are removed at the end, unless the caller's registry owns them.
  const own = ctx.engines ? null : new EngineContexts(ctx);
  if (own) ctx = own.for(ctx.engine);
  try {
    return await revertLeftoversOn(store, ctx, options);
  } finally {
    await own?.close();
  }
}

/** The engine a ledger row names (null: DOCKER_HOST's); an unreadable one is reported by the revert. */
function engineOf(f: FaultRow): EngineSpec | null {
  if (!f.engine) return null;
  return JSON.parse(f.engine) as EngineSpec;
}

async function revertLeftoversOn(store: Store, ctx: FaultContext, options: { force?: boolean; containers?: readonly string[] }): Promise<string[]> {
  const done: string[] = [];
  const touched = new Set<string>(options.containers ?? []);
  for (const f of store.unrevertedFaults()) {
    if (!options.force && ownerAlive(f.owner)) {
      done.push(`${f.id} (${f.kind} on ${f.node}): owned by a running Gauntlet (pid ${f.owner?.split('|')[1]}); left to it`);
      continue;
    }
    const injector = FAULTS[f.kind];
    if (!injector) {
      done.push(`${f.id} (${f.kind} on ${f.node}): unknown fault kind; left as is`);
      continue;
    }
    try {
      const action = await revertRecorded(store, injector, f.id, JSON.parse(f.undo) as UndoRecord, contextFor(ctx, engineOf(f)), 'on start, left by an earlier process: ');
      done.push(`${f.id} (${f.kind} on ${f.node}): ${action}`);
    } catch (err) {
      done.push(`${f.id} (${f.kind} on ${f.node}): FAILED: ${errorMessage(err)}`);
    }
  }
  // Then anything still carrying Gauntlet's mark, ledger or not (a ledger lost with its disk,
  // a process killed between creating a helper and recording it).
  // A run sweeps its own targets only: another Gauntlet (another database) may be running a
  // fault elsewhere right now, and its marks are not ours to remove. `gauntlet revert` asks
  // for the broad sweep: every container the ledger names or that is labelled a target.
  if (options.containers === undefined) for (const c of await sweepCandidates(store, ctx)) touched.add(c);
  for (const line of await sweepLeftovers(store, ctx, [...touched])) done.push(`sweep: ${line}`);
  // The broad sweep goes to every other engine the ledger names too, into its containers there.
  if (options.containers === undefined) {
    const others = new Map<string, { spec: EngineSpec; ids: Set<string> }>();
    for (const r of store.db.prepare('SELECT DISTINCT container_id, engine FROM faults WHERE engine IS NOT NULL AND container_id IS NOT NULL').all() as { container_id: string; engine: string }[]) {
      const spec = JSON.parse(r.engine) as EngineSpec;
      if (sameEngine(spec, ctx.engine)) continue;
      const key = engineKey(spec);
      const e = others.get(key) ?? { spec, ids: new Set<string>() };
      e.ids.add(r.container_id);
      others.set(key, e);
    }
    for (const { spec, ids } of others.values()) {
      try {
        for (const line of await sweepLeftovers(store, contextFor(ctx, spec), [...ids])) done.push(`sweep on engine ${spec.name}: ${line}`);
      } catch (err) {
        done.push(`sweep on engine ${spec.name} (${spec.host}): ${errorMessage(err)}`);
      }
    }
  }
  return done;
}

function row(
  id: string,
  runId: string | null,
  kind: string,
  node: string,
  params: unknown,
  undo: UndoRecord,
  state: FaultRow['state'],
  plannedAt: number,
  extra: Partial<FaultRow> = {},
): FaultRow {
  return {
    id,
    run_id: runId,
    kind,
    node,
    params: JSON.stringify(params ?? {}),
    undo: JSON.stringify(undo),
    state,
    planned_at: plannedAt,
    injected_at: null,
    reverted_at: null,
    detail: null,
    revert_action: null,
    error: null,
    owner: selfOwner(),
    ...extra,
  };
}
