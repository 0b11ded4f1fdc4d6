import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FaultWindows, type Episode } from '../../../src/detect/detector.js';
import type { FaultContext, FaultInjector } from '../../../src/fault/types.js';
import { silentLogger } from '../../../src/log.js';
import { FaultSupervisor } from '../../../src/run/fault-supervisor.js';
import { openStore } from '../../../src/store/store.js';
import { RealClock } from '../../../src/util/clock.js';
import { tempDir } from '../../helpers/tmp.js';

const dir = tempDir();
const ctx: FaultContext = { docker: null, log: silentLogger, clock: new RealClock() };
const target = { node: 'a', containerId: 'c', containerName: 'c' };

/** A fake fault whose inject and revert can be held open and made to fail. */
function fake(opts: { instant?: boolean; revertFailures?: number; injectGate?: Promise<void> } = {}) {
  const log: string[] = [];
  let failures = opts.revertFailures ?? 0;
  const injector: FaultInjector<unknown> = {
    kind: 'node-kill',
    description: 'fake',
    needsContainer: false,
    instant: opts.instant ?? true,
    params: z.unknown(),
    describe: async () => [],
    prepare: async () => ({}),
    inject: async () => {
      await opts.injectGate;
      log.push('inject');
      return { at: 1, detail: {} };
    },
    revert: async () => {
      if (failures-- > 0) {
        log.push('revert failed');
        throw new Error('docker said 500');
      }
      log.push('revert');
      return { action: 'ok' };
    },
  };
  return { injector, log };
}

const episode = (over: Partial<Episode>): Episode => ({
  id: 'e',
  node: 'a',
  status: 'open',
  cause: 'injected:f1',
  faultId: 'f1',
  startedAt: 0,
  detectedAt: 0,
  runningAgainAt: null,
  readyAt: null,
  servingAgainAt: null,
  firstEvidence: '',
  evidence: { signals: [] },
  requestsAffected: 0,
  ...over,
});

describe('FaultSupervisor', () => {
  it('reverts an instant fault once its episode has ended, not before', async () => {
    const store = openStore(join(dir, 's1.db'));
    const sup = new FaultSupervisor(store, 'r', ctx, new FaultWindows(0), silentLogger);
    const { injector, log } = fake();
    await sup.inject('f1', injector, target, {}, 60_000);
    sup.onEpisode(episode({}));
    expect(sup.activeCount).toBe(1);
    sup.onEpisode(episode({ status: 'recovered', servingAgainAt: 10 }));
    await sup.revertAll();
    expect(log).toEqual(['inject', 'revert']);
    store.close();
  });

  it('does not cut a held fault short when the node serves again', async () => {
    const store = openStore(join(dir, 's2.db'));
    const sup = new FaultSupervisor(store, 'r', ctx, new FaultWindows(0), silentLogger);
    const { injector } = fake({ instant: false });
    await sup.inject('f1', injector, target, {}, 60_000);
    sup.onEpisode(episode({ status: 'recovered', servingAgainAt: 10 }));
    expect(sup.activeCount).toBe(1);
    await sup.revertAll();
    expect(sup.activeCount).toBe(0);
    store.close();
  });

  it('retries a failed revert; at the end it tries again before leaving it to the ledger', async () => {
    const store = openStore(join(dir, 's3.db'));
    const sup = new FaultSupervisor(store, 'r', ctx, new FaultWindows(0), silentLogger, 20);
    const { injector, log } = fake({ revertFailures: 1 });
    await sup.inject('f1', injector, target, {}, 0);
    // the hold timer fires, the revert fails, the retry timer brings it back
    for (let i = 0; i < 100 && !log.includes('revert'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual(['inject', 'revert failed', 'revert']);
    expect(store.faults('r')[0]?.state).toBe('reverted');
    store.close();
  });

  it('revertAll waits for an injection under way, so nothing lands after the reverts', async () => {
    const store = openStore(join(dir, 's4.db'));
    const sup = new FaultSupervisor(store, 'r', ctx, new FaultWindows(0), silentLogger);
    let open!: () => void;
    const { injector, log } = fake({ injectGate: new Promise<void>((r) => (open = r)) });
    const injecting = sup.inject('f1', injector, target, {}, 60_000);
    const closing = sup.revertAll();
    open();
    await Promise.all([injecting, closing]);
    expect(log).toEqual(['inject', 'revert']);
    expect(await sup.inject('f2', injector, target, {}, 1)).toBe(false); // closed: no new faults
    store.close();
  });

  it('a failed injection leaves no fault window behind', async () => {
    const store = openStore(join(dir, 's5.db'));
    const windows = new FaultWindows(10_000);
    const sup = new FaultSupervisor(store, 'r', ctx, windows, silentLogger);
    const { injector } = fake();
    injector.prepare = async () => {
      throw new Error('container is exited, not running');
    };
    expect(await sup.inject('f1', injector, target, {}, 1000)).toBe(false);
    expect(windows.find('a', ctx.clock.now())).toBeNull();
    store.close();
  });
});
