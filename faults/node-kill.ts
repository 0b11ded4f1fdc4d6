// node-kill: the inference node's container goes down.
//   mode "crash": SIGKILL to the container's main process from the host (its State.Pid).
//   Docker sees a crash (die, exit 137, no kill event) and the restart policy applies — unlike
//   `docker kill` through the API, which counts as a manual stop and suppresses the restart.
//   mode "stop": a graceful stop through the Docker API (SIGTERM, then SIGKILL after
//   `stop_timeout`): a manual stop, so no restart policy fires; Gauntlet starts it again after
//   `down_for` — a node taken out of the fleet for maintenance, or by an operator.
//   mode "restart": Docker restart (stop, then start) at once; instant.
// Revert: if the incarnation we stopped never came back, start the container; anything that
// happened to it after it ran again is not ours to undo.
import { statRunning } from '../src/util/proc.js';
import { z } from 'zod';
import { GauntletError } from '../src/errors.js';
import { machineClock, type FaultContext, type FaultInjector, type FaultTarget, type UndoRecord } from '../src/fault/types.js';
import { formatDuration } from '../src/util/duration.js';
import { hostOf, runningOn } from '../src/fault/host-access.js';
import { durationParam } from './params.js';

const Params = z
  .strictObject({
    mode: z.enum(['crash', 'stop', 'restart']).default('crash'),
    /** stop: how long the node stays down before Gauntlet starts it again. */
    down_for: durationParam('down_for', 0, 86_400_000).optional(),
    /** stop, restart: seconds Docker waits after SIGTERM before SIGKILL. */
    stop_timeout: durationParam('stop_timeout', 0, 600_000).default(10_000),
  })
  .superRefine((p, ctx) => {
    if (p.mode === 'stop' && p.down_for === undefined) ctx.addIssue({ code: 'custom', message: 'mode stop needs down_for (how long the node stays down, e.g. "20s")', path: ['down_for'] });
    if (p.mode !== 'stop' && p.down_for !== undefined) ctx.addIssue({ code: 'custom', message: `down_for is only used with mode stop (mode ${p.mode} is instant)`, path: ['down_for'], input: p.down_for });
  });
type Params = z.infer<typeof Params>;

/** How long revert waits for Docker to register the exit of the killed process. */
const REAP_WAIT_MS = 10_000;

function requireDocker(ctx: FaultContext) {
  if (!ctx.docker) throw new Error('node-kill needs the Docker engine');
  return ctx.docker;
}

export const nodeKill: FaultInjector<Params> = {
  kind: 'node-kill',
  description: 'the node goes down: crash (SIGKILL of the main process; the restart policy applies), stop (held down for down_for), or restart',
  needsContainer: true,
  instant: (p) => p.mode !== 'stop',
  holdMs: (p) => p.down_for ?? 0,
  params: Params,

  async describe(target, params) {
    const c = target.containerName ?? target.containerId;
    switch (params.mode) {
      case 'stop':
        return [`stop container ${c} through the Docker API (SIGTERM, SIGKILL after ${formatDuration(params.stop_timeout)}; a manual stop: no restart policy fires)`, `after ${formatDuration(params.down_for ?? 0)}: start it again (revert)`];
      case 'restart':
        return [`restart container ${c} through the Docker API (SIGTERM, SIGKILL after ${formatDuration(params.stop_timeout)}, then start)`, 'revert: start the container if it is not running'];
      default:
        return [`SIGKILL the main process of container ${c} (its State.Pid, from the host); the restart policy decides whether it comes back`, 'revert: start the container if that incarnation never came back'];
    }
  },

  async prepare(target: FaultTarget, _params, ctx): Promise<UndoRecord> {
    const docker = requireDocker(ctx);
    const info = await docker.getContainer(target.containerId as string).inspect();
    if (!info.State.Running || info.State.Paused || info.State.Restarting || !info.State.Pid) {
      throw new GauntletError('GAUNTLET_FAULT_INJECT', ['node-kill', target.node, `container is ${info.State.Status}, not running`]);
    }
    if (!(await runningOn(hostOf(ctx), info.State.Pid))) {
      throw new GauntletError('GAUNTLET_FAULT_INJECT', ['node-kill', target.node, `the container's main pid ${info.State.Pid} is not visible here: Gauntlet must run in the Docker host's PID namespace`]);
    }
    return {
      containerId: info.Id,
      containerName: info.Name.replace(/^\//, ''),
      pid: info.State.Pid,
      /** The main process's start time (/proc), so a reused pid is never taken for it. */
      procStart: (await hostOf(ctx).stat(info.State.Pid))?.startTime ?? null,
      startedAt: info.State.StartedAt,
      restartCountBefore: info.RestartCount,
      restartPolicy: info.HostConfig.RestartPolicy?.Name ?? 'no',
    };
  },

  async inject(target, params, undo, ctx) {
    const docker = requireDocker(ctx);
    if (params.mode !== 'crash') {
      const container = docker.getContainer(undo.containerId as string);
      const t = Math.ceil(params.stop_timeout / 1000);
      const at = ctx.clock.now();
      if (params.mode === 'stop') await container.stop({ t });
      else await container.restart({ t });
      return { at, detail: { mode: params.mode, stop_timeout_s: t } };
    }
    // Re-read the pid right before the kill: never signal a pid the container no longer owns.
    const info = await docker.getContainer(undo.containerId as string).inspect();
    if (info.State.Pid !== undo.pid || !info.State.Running) {
      throw new GauntletError('GAUNTLET_FAULT_INJECT', ['node-kill', target.node, `container main pid changed (${String(undo.pid)} → ${info.State.Pid}) before the kill`]);
    }
    const at = ctx.clock.now();
    try {
      await hostOf(ctx).kill(info.State.Pid, 'SIGKILL');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ESRCH' ? "no such process: Gauntlet must run in the Docker host's PID namespace" : code === 'EPERM' ? 'not permitted: killing a container process from the host needs root' : (err as Error).message;
      throw new GauntletError('GAUNTLET_FAULT_INJECT', ['node-kill', target.node, `SIGKILL to pid ${info.State.Pid} failed: ${why}`]);
    }
    if (undo.restartPolicy === 'no') ctx.log.warn({ node: target.node }, 'container has no restart policy: it stays down until the fault is reverted');
    return { at, detail: { signal: 'SIGKILL', pid: info.State.Pid } };
  },

  async revert(undo, ctx) {
    const docker = requireDocker(ctx);
    const container = docker.getContainer(undo.containerId as string);
    let info: Awaited<ReturnType<typeof container.inspect>>;
    try {
      info = await container.inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return { action: 'nothing: container no longer exists' };
      throw err;
    }
    if (info.State.StartedAt !== undo.startedAt) {
      // A later incarnation has run since the kill: the fault's effect is over. Whatever state
      // the container is in now was not caused by this fault, and is not ours to change.
      if (info.State.Running || info.State.Restarting) {
        return { action: `nothing: container ${info.RestartCount > Number(undo.restartCountBefore ?? 0) ? 'restarted by its restart policy' : 'running again'}` };
      }
      return { action: 'nothing: the container ran again after the fault and was stopped since; left as it is' };
    }
    if (info.State.Running && info.State.Pid === undo.pid) {
      // A SIGKILLed process still has to be scheduled to die: on a busy host /proc shows it
      // alive for a moment. Only one still alive after a second truly survived (the kill never
      // landed, e.g. Gauntlet died between the ledger write and the kill).
      const alive = async (): Promise<boolean> => statRunning(await hostOf(ctx).stat(undo.pid as number), undo.procStart as string | null | undefined);
      for (let i = 0; i < 50 && (await alive()); i++) await machineClock(ctx).sleep(20);
      if (await alive()) return { action: 'nothing: the kill never landed; the process is still running' };
      // Killed, but Docker has not registered the exit yet (it takes ~150 ms). Deciding now
      // would see "running" and leave the node down: wait, bounded, for the exit.
      const bound = new AbortController();
      await Promise.race([
        container.wait({ condition: 'not-running', abortSignal: bound.signal }).catch(() => undefined),
        machineClock(ctx).sleep(REAP_WAIT_MS, bound.signal).catch(() => undefined),
      ]).finally(() => bound.abort());
      info = await container.inspect();
      if (info.State.Running && info.State.Pid === undo.pid) throw new Error(`pid ${String(undo.pid)} was killed but Docker still shows it running after ${REAP_WAIT_MS} ms`);
      if (info.State.StartedAt !== undo.startedAt) return { action: 'nothing: container restarted by its restart policy' };
    }
    if (info.State.Running || info.State.Restarting) return { action: 'nothing: container restarting by its restart policy' };
    try {
      await container.start();
    } catch (err) {
      // 304: the restart policy won the race and it is already running — that is the goal.
      if ((err as { statusCode?: number }).statusCode === 304) return { action: 'nothing: container restarted by its restart policy' };
      throw err;
    }
    return { action: 'started the container (it had not come back by itself)' };
  },
};
