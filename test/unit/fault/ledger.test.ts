import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { injectFault, revertLeftovers } from '../../../src/fault/ledger.js';
import type { FaultContext, FaultInjector } from '../../../src/fault/types.js';
import { silentLogger } from '../../../src/log.js';
import { openStore, type Store } from '../../../src/store/store.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { procStat } from '../../../src/util/proc.js';
import { tempDir } from '../../helpers/tmp.js';

const dir = tempDir();
const ctx: FaultContext = { docker: null, log: silentLogger, clock: new VirtualClock(5000) };
const target = { node: 'node-a', containerId: 'c1', containerName: 'sim-a' };

/** A fault that flips a flag in a fake "host", recording what the ledger held at each step. */
function fakeInjector(store: Store, host: { broken: boolean; reverts: number }, opts: { failInject?: boolean; failRevert?: boolean } = {}) {
  const seen: { ledgerAtInject?: string } = {};
  const injector: FaultInjector<{ level: number }> = {
    kind: 'node-kill', // a registered kind, so revertLeftovers can find a module; its revert is not called here
    description: 'fake',
    needsContainer: false,
    instant: false,
    params: z.object({ level: z.number() }),
    async describe() {
      return [];
    },
    async prepare() {
      return { was: host.broken };
    },
    async inject() {
      seen.ledgerAtInject = store.db.prepare('SELECT state, undo FROM faults').all().map((r) => JSON.stringify(r)).join(';');
      if (opts.failInject) {
        host.broken = true; // half-applied
        throw new Error('boom while injecting');
      }
      host.broken = true;
      return { at: 5001, detail: { flipped: true } };
    },
    async revert(undo) {
      if (opts.failRevert) throw new Error('cannot revert');
      host.broken = undo.was as boolean;
      host.reverts++;
      return { action: 'flag restored' };
    },
  };
  return { injector: injector as FaultInjector<unknown>, seen };
}

describe('fault ledger', () => {
  it('the undo record is in the ledger before the target is touched; revert is recorded and idempotent', async () => {
    const store = openStore(join(dir, 'l1.db'));
    const host = { broken: false, reverts: 0 };
    const { injector, seen } = fakeInjector(store, host);
    const fault = await injectFault(store, 'run1', injector, target, { level: 1 }, ctx, 'f1');
    expect(seen.ledgerAtInject).toBe(JSON.stringify({ state: 'injecting', undo: '{"was":false}' }));
    expect(store.faults('run1')[0]).toMatchObject({ id: 'f1', state: 'active', injected_at: 5001, detail: '{"flipped":true}' });
    expect(host.broken).toBe(true);
    await Promise.all([fault.revert(), fault.revert()]);
    await fault.revert();
    expect(host).toEqual({ broken: false, reverts: 1 });
    expect(store.faults('run1')[0]).toMatchObject({ state: 'reverted', revert_action: 'flag restored', reverted_at: 5000 });
    store.close();
  });

  it('a failed injection is reverted at once and recorded as failed', async () => {
    const store = openStore(join(dir, 'l2.db'));
    const host = { broken: false, reverts: 0 };
    const { injector } = fakeInjector(store, host, { failInject: true });
    await expect(injectFault(store, 'run1', injector, target, { level: 1 }, ctx, 'f1')).rejects.toThrow(/injecting node-kill into node-a failed: boom while injecting/);
    expect(host.broken).toBe(false);
    expect(store.faults('run1')[0]).toMatchObject({ state: 'failed', error: 'boom while injecting', revert_action: 'flag restored' });
    store.close();
  });

  it('a failed injection whose undo fails too stays in the ledger to be reverted (not marked failed and forgotten)', async () => {
    const store = openStore(join(dir, 'l2b.db'));
    const host = { broken: false, reverts: 0 };
    const { injector } = fakeInjector(store, host, { failInject: true, failRevert: true });
    const err = await injectFault(store, 'run1', injector, target, { level: 1 }, ctx, 'f1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GAUNTLET_FAULT_INJECT', details: { undoFailed: true } });
    expect((err as Error).message).toMatch(/undoing it failed too \(cannot revert\): left in the ledger to revert/);
    expect(store.unrevertedFaults().map((f) => [f.id, f.state])).toEqual([['f1', 'injecting']]);
    store.close();
  });

  it('a failed revert leaves the fault active for the next start, with the error', async () => {
    const store = openStore(join(dir, 'l3.db'));
    const { injector } = fakeInjector(store, { broken: false, reverts: 0 }, { failRevert: true });
    const fault = await injectFault(store, 'run1', injector, target, { level: 1 }, ctx, 'f1');
    await expect(fault.revert()).rejects.toThrow(/GAUNTLET_FAULT_REVERT|reverting fault f1 failed: cannot revert/);
    expect(store.unrevertedFaults()).toHaveLength(1);
    expect(store.faults('run1')[0]?.error).toBe('revert: cannot revert');
    store.close();
  });

  it('revertLeftovers reports rows it cannot act on instead of dropping them', async () => {
    const store = openStore(join(dir, 'l4.db'));
    store.insertFault({ id: 'old', run_id: 'r0', kind: 'cosmic-ray', node: 'a', params: '{}', undo: '{}', state: 'active', planned_at: 1, injected_at: 1, reverted_at: null, detail: null, revert_action: null, error: null, owner: null });
    expect(await revertLeftovers(store, ctx)).toEqual(['old (cosmic-ray on a): unknown fault kind; left as is']);
    store.close();
  });

  it('revertLeftovers leaves a fault owned by a live Gauntlet process alone, unless forced; a dead owner does not protect it', async () => {
    const store = openStore(join(dir, 'l5.db'));
    const live = spawn('sleep', ['30']);
    try {
      await once(live, 'spawn');
      const stat = procStat(live.pid as number);
      const row = { run_id: 'r0', kind: 'cosmic-ray', node: 'a', params: '{}', undo: '{}', state: 'active' as const, planned_at: 1, injected_at: 1, reverted_at: null, detail: null, revert_action: null, error: null };
      store.insertFault({ ...row, id: 'mine', owner: `${hostname()}|${live.pid}|${stat?.startTime}` });
      store.insertFault({ ...row, id: 'reused-pid', owner: `${hostname()}|${live.pid}|1` });
      expect(await revertLeftovers(store, ctx)).toEqual([
        `mine (cosmic-ray on a): owned by a running Gauntlet (pid ${live.pid}); left to it`,
        'reused-pid (cosmic-ray on a): unknown fault kind; left as is',
      ]);
      expect((await revertLeftovers(store, ctx, { force: true }))[0]).toBe('mine (cosmic-ray on a): unknown fault kind; left as is');
    } finally {
      live.kill('SIGKILL');
      store.close();
    }
  });
});
