import { describe, expect, it } from 'vitest';
import { hang } from '../../../faults/hang.js';
import type { Docker } from '../../../src/docker/engine.js';
import type { FaultContext } from '../../../src/fault/types.js';
import { silentLogger } from '../../../src/log.js';

/** A container whose pause fails with the given errors first, then works. */
function ctxWith(errors: string[]): { ctx: FaultContext; pauses: () => number; sleeps: number[] } {
  let pauses = 0;
  const sleeps: number[] = [];
  const docker = {
    getContainer: () => ({
      pause: async () => {
        const e = errors[pauses++];
        if (e) throw Object.assign(new Error(e), { statusCode: 500 });
      },
    }),
  } as unknown as Docker;
  let t = 1000;
  const clock = { now: () => t, sleep: async (ms: number) => void (sleeps.push(ms), (t += ms)) } as unknown as FaultContext['clock'];
  return { ctx: { docker, log: silentLogger, clock }, pauses: () => pauses, sleeps };
}

const FREEZE = '(HTTP code 500) server error - Cannot pause container 33db: OCI runtime pause failed: unable to freeze: unknown';
const undo = { containerId: 'c1', containerName: 'sim-a', startedAt: 'x' };
const params = hang.params.parse({ duration: '3s' });

describe('hang: pausing a container', () => {
  it('tries again when the cgroup freezer gives up under load, and says how many tries it took', async () => {
    const { ctx, pauses, sleeps } = ctxWith([FREEZE, FREEZE]);
    const r = await hang.inject({ node: 'n', containerId: 'c1', containerName: 'sim-a' }, params, undo, ctx);
    expect(pauses()).toBe(3);
    expect(sleeps).toEqual([250, 250]);
    expect(r).toMatchObject({ at: 1500, detail: { paused: 'sim-a', for_ms: 3000, pause_attempts: 3 } });
  });

  it('gives up after four tries, and at once on any other error', async () => {
    const stuck = ctxWith([FREEZE, FREEZE, FREEZE, FREEZE, FREEZE]);
    await expect(hang.inject({ node: 'n', containerId: 'c1', containerName: 'sim-a' }, params, undo, stuck.ctx)).rejects.toThrow(/unable to freeze/);
    expect(stuck.pauses()).toBe(4);
    const other = ctxWith(['(HTTP code 409) container is not running']);
    await expect(hang.inject({ node: 'n', containerId: 'c1', containerName: 'sim-a' }, params, undo, other.ctx)).rejects.toThrow(/not running/);
    expect(other.pauses()).toBe(1);
  });
});
