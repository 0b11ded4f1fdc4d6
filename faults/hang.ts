// hang: the node's container is frozen (Docker pause: the cgroup freezer) for `duration`. It
// stays "running" and its kernel still accepts TCP connections, but no process in it runs:
// nothing is answered — how a stuck NCCL collective or a wedged driver looks from outside.
// The detector must find it the way it would find a real hang (probes time out while the
// container runs), so the pause event itself is not evidence of failure.
// Revert: unpause — only the incarnation we froze; a container restarted meanwhile has no
// freeze left to undo.
import { z } from 'zod';
import { GauntletError, errorMessage } from '../src/errors.js';
import type { FaultContext, FaultInjector } from '../src/fault/types.js';
import { formatDuration } from '../src/util/duration.js';
import { durationParam } from './params.js';

const Params = z.strictObject({
  duration: durationParam('duration', 100, 86_400_000),
});
type Params = z.infer<typeof Params>;

function requireDocker(ctx: FaultContext) {
  if (!ctx.docker) throw new Error('hang needs the Docker engine');
  return ctx.docker;
}

/** How many times inject asks Docker to pause before the fault counts as failed, and how far apart. */
const FREEZE_ATTEMPTS = 4;
const FREEZE_RETRY_MS = 250;

export const hang: FaultInjector<Params> = {
  kind: 'hang',
  description: 'freeze the container (Docker pause) for duration: alive, answering nothing',
  needsContainer: true,
  instant: false,
  holdMs: (p) => p.duration,
  params: Params,

  async describe(target, params) {
    const c = target.containerName ?? target.containerId;
    return [`pause container ${c} through the Docker API (cgroup freezer: every process stops, connections are accepted and never answered)`, `after ${formatDuration(params.duration)}: unpause it (revert)`];
  },

  async prepare(target, _params, ctx) {
    const info = await requireDocker(ctx).getContainer(target.containerId as string).inspect();
    if (!info.State.Running || info.State.Paused) {
      throw new GauntletError('GAUNTLET_FAULT_INJECT', ['hang', target.node, `container is ${info.State.Paused ? 'already paused' : info.State.Status}, not running`]);
    }
    return { containerId: info.Id, containerName: info.Name.replace(/^\//, ''), startedAt: info.State.StartedAt };
  },

  async inject(_target, params, undo, ctx) {
    const container = requireDocker(ctx).getContainer(undo.containerId as string);
    // runc gives up on the cgroup freezer when the processes do not all stop in time ("unable to
    // freeze"), which a host with every core busy can cause; it leaves them thawed. Try again a
    // few times before the fault counts as failed.
    for (let attempt = 1; ; attempt++) {
      const at = ctx.clock.now();
      try {
        await container.pause();
        return { at, detail: { paused: undo.containerName, for_ms: params.duration, ...(attempt > 1 ? { pause_attempts: attempt } : {}) } };
      } catch (err) {
        if (attempt >= FREEZE_ATTEMPTS || !/unable to freeze/i.test(errorMessage(err))) throw err;
        ctx.log.warn({ node: undo.containerName, attempt, err: errorMessage(err) }, 'the cgroup freezer did not freeze the container in time; trying again');
        await ctx.clock.sleep(FREEZE_RETRY_MS);
      }
    }
  },

  async revert(undo, ctx) {
    const container = requireDocker(ctx).getContainer(undo.containerId as string);
    let info;
    try {
      info = await container.inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return { action: 'nothing: container no longer exists' };
      throw err;
    }
    if (!info.State.Paused) {
      return { action: info.State.StartedAt === undo.startedAt ? 'nothing: not paused (the freeze never landed or was lifted)' : 'nothing: the container restarted meanwhile; no freeze left' };
    }
    if (info.State.StartedAt !== undo.startedAt) return { action: 'nothing: paused, but a later incarnation than the one this fault froze; left as it is' };
    try {
      await container.unpause();
    } catch (err) {
      // 409 "not paused": lifted between the inspect and now — the goal.
      if ((err as { statusCode?: number }).statusCode === 409) return { action: 'nothing: no longer paused' };
      throw err;
    }
    return { action: 'unpaused the container' };
  },
};
