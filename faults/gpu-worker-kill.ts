// gpu-worker-kill: one tensor-parallel GPU worker process inside the node's container dies
// (SIGKILL from the host), not the main process — an Xid error or a segfault in one rank.
// What follows is the node's own reaction, which is what this fault measures: vLLM and the
// simulator's default exit at once (a crash; the restart policy applies), a stuck collective
// leaves the node alive and answering nothing (a hang), or the node goes on degraded.
// The worker is found in the container's process list from the Docker API (`top` runs ps on
// the host, so the pids are host pids); its pid and /proc start time are checked again right
// before the kill, so a pid reused meanwhile is never signalled.
// Revert: if the incarnation we hit still runs short of workers, restart the container (the
// only way a real engine gets a rank back); if it exited and did not come back, start it;
// anything after a restart is not ours to undo.
import { statRunning } from '../src/util/proc.js';
import { z } from 'zod';
import { GauntletError } from '../src/errors.js';
import type { Docker } from '../src/docker/engine.js';
import { machineClock, type FaultContext, type FaultInjector, type FaultTarget, type UndoRecord } from '../src/fault/types.js';
import { hostOf } from '../src/fault/host-access.js';

/** The simulator's shards (`sim.cjs --worker <rank>`) and vLLM's workers (multiprocessing or Ray). */
export const DEFAULT_WORKER_PATTERN = '--worker |VllmWorker|RayWorkerWrapper|multiproc_worker';

/** ps columns for Docker's top. Not lstart: its spaces break Docker's column split. */
const PS_ARGS = '-eo pid,ppid,args';

/** How long revert waits for the killed worker to vanish from /proc. */
const KILL_LAND_MS = 1000;
/** How long revert gives a node whose reaction is to exit (crash) before judging it still running. */
const SETTLE_MS = 3000;

const Params = z.strictObject({
  /** A regular expression matched against each process's command line. */
  pattern: z
    .string()
    .min(1)
    .refine(compiles, { message: 'expected a regular expression (JavaScript syntax) matched against command lines' })
    .default(DEFAULT_WORKER_PATTERN),
  /** Which of the matching processes, counted from 0 in process-list order; default the last. */
  rank: z.number().int().min(0).optional(),
  /** restart: revert restarts a node still running short of workers; none: leave it so. */
  restore: z.enum(['restart', 'none']).default('restart'),
});
type Params = z.infer<typeof Params>;

function compiles(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

export interface ContainerProcess {
  pid: number;
  command: string;
}

/** The processes in Docker's top answer: the PID column and the command line (the last column). */
export function parseTop(top: { Titles?: string[] | null; Processes?: string[][] | null }): ContainerProcess[] {
  const titles = top.Titles ?? [];
  const pidCol = titles.indexOf('PID');
  if (pidCol < 0 || titles.length < 2) throw new Error(`unexpected process list from Docker (columns: ${titles.join(', ') || 'none'})`);
  return (top.Processes ?? []).map((row) => ({ pid: Number(row[pidCol]), command: row[titles.length - 1] ?? '' })).filter((p) => Number.isInteger(p.pid) && p.pid > 0);
}

export type WorkerChoice = { ok: true; chosen: ContainerProcess; index: number; matches: ContainerProcess[] } | { ok: false; why: string; matches: ContainerProcess[] };

/**
 * The worker processes (matching `pattern`, never the main process, never a zombie) and the
 * one to kill: `rank` counted in process-list order, by default the last.
 */
export function chooseWorker(processes: readonly ContainerProcess[], mainPid: number, pattern: string, rank?: number): WorkerChoice {
  const re = new RegExp(pattern);
  const matches = processes.filter((p) => p.pid !== mainPid && !/<defunct>\s*$/.test(p.command) && re.test(p.command));
  if (matches.length === 0) {
    const seen = processes.map((p) => `${p.pid}${p.pid === mainPid ? ' (main)' : ''} ${p.command}`).join('; ');
    return { ok: false, why: `no process matches /${pattern}/ besides the main process (pid ${mainPid}); processes seen: ${seen || 'none'}`, matches };
  }
  const index = rank ?? matches.length - 1;
  const chosen = matches[index];
  if (!chosen) {
    return { ok: false, why: `rank ${index} asked for, but only ${matches.length} process(es) match /${pattern}/: ${matches.map((p) => `${p.pid} ${p.command}`).join('; ')}`, matches };
  }
  return { ok: true, chosen, index, matches };
}

function requireDocker(ctx: FaultContext): Docker {
  if (!ctx.docker) throw new Error('gpu-worker-kill needs the Docker engine');
  return ctx.docker;
}

async function listProcesses(docker: Docker, containerId: string): Promise<ContainerProcess[]> {
  return parseTop(await docker.getContainer(containerId).top({ ps_args: PS_ARGS }));
}

function refuse(target: FaultTarget, why: string): GauntletError {
  return new GauntletError('GAUNTLET_FAULT_INJECT', ['gpu-worker-kill', target.node, why]);
}

export const gpuWorkerKill: FaultInjector<Params> = {
  kind: 'gpu-worker-kill',
  description: "SIGKILL one tensor-parallel GPU worker process in the node's container (not the main process); the node's own reaction follows",
  needsContainer: true,
  instant: true,
  params: Params,

  async describe(target, params) {
    const c = target.containerName ?? target.containerId;
    const which = params.rank === undefined ? 'the last' : `number ${params.rank} (from 0)`;
    return [
      `list the processes of container ${c} through the Docker API (top: host pids) and take ${which} of those whose command line matches /${params.pattern}/, never the main process (State.Pid)`,
      "SIGKILL that worker from the host, after checking its pid and /proc start time again; the node's reaction (exit, hang, or going on degraded) is what is measured",
      params.restore === 'restart'
        ? 'revert: if that incarnation still runs short of workers, restart the container through the Docker API; if it exited and did not come back, start it; after a restart, nothing'
        : 'revert (restore=none): leave a node running short of workers as it is; if it exited and did not come back, start it; after a restart, nothing',
    ];
  },

  async prepare(target, params, ctx): Promise<UndoRecord> {
    const docker = requireDocker(ctx);
    const info = await docker.getContainer(target.containerId as string).inspect();
    if (!info.State.Running || info.State.Paused || info.State.Restarting || !info.State.Pid) {
      throw refuse(target, `container is ${info.State.Status}, not running`);
    }
    const choice = chooseWorker(await listProcesses(docker, info.Id), info.State.Pid, params.pattern, params.rank);
    if (!choice.ok) throw refuse(target, choice.why);
    const { pid, command } = choice.chosen;
    const stat = await hostOf(ctx).stat(pid);
    if (!statRunning(stat)) {
      throw refuse(target, `worker pid ${pid} is not visible in /proc on ${hostOf(ctx).where}: Gauntlet must run in the Docker host's PID namespace`);
    }
    return {
      containerId: info.Id,
      containerName: info.Name.replace(/^\//, ''),
      mainPid: info.State.Pid,
      pid,
      command,
      index: choice.index,
      /** The worker's start time (/proc), so a reused pid is never taken for it. */
      procStart: stat.startTime,
      startedAt: info.State.StartedAt,
      workersBefore: choice.matches.length,
      pattern: params.pattern,
      restore: params.restore,
      restartCountBefore: info.RestartCount,
      restartPolicy: info.HostConfig.RestartPolicy?.Name ?? 'no',
    };
  },

  async inject(target, _params, undo, ctx) {
    const docker = requireDocker(ctx);
    const pid = undo.pid as number;
    const info = await docker.getContainer(undo.containerId as string).inspect();
    if (!info.State.Running || info.State.StartedAt !== undo.startedAt) {
      throw refuse(target, `container ${info.State.Running ? 'restarted' : `is ${info.State.Status}`} between prepare and the kill`);
    }
    const stat = await hostOf(ctx).stat(pid);
    if (!statRunning(stat, String(undo.procStart))) {
      throw refuse(target, `worker pid ${pid} (${String(undo.command)}) ${stat ? 'was reused by another process' : 'is gone'} before the kill`);
    }
    const at = ctx.clock.now();
    try {
      await hostOf(ctx).kill(pid, 'SIGKILL');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ESRCH' ? 'no such process (it exited just now)' : code === 'EPERM' ? 'not permitted: killing a container process from the host needs root' : (err as Error).message;
      throw refuse(target, `SIGKILL to worker pid ${pid} failed: ${why}`);
    }
    return { at, detail: { signal: 'SIGKILL', pid, command: undo.command, index: undo.index, workers: undo.workersBefore, mainPid: undo.mainPid } };
  },

  async revert(undo, ctx) {
    const docker = requireDocker(ctx);
    const container = docker.getContainer(undo.containerId as string);
    const inspect = async (): Promise<Docker.ContainerInspectInfo | null> => {
      try {
        return await container.inspect();
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return null;
        throw err;
      }
    };
    const restartedSince = (i: Docker.ContainerInspectInfo): string =>
      `nothing: the container has restarted since (${i.RestartCount > Number(undo.restartCountBefore ?? 0) ? 'by its restart policy' : 'started again'}); its workers came back with it`;

    let info = await inspect();
    if (!info) return { action: 'nothing: container no longer exists' };
    if (info.State.StartedAt !== undo.startedAt) return { action: restartedSince(info) };

    if (info.State.Running) {
      const pid = undo.pid as number;
      // A SIGKILLed process still has to be scheduled to die: on a busy host /proc shows it
      // for a moment. One still there after a second was never killed (Gauntlet died between
      // the ledger write and the kill).
      const alive = async (): Promise<boolean> => statRunning(await hostOf(ctx).stat(pid), String(undo.procStart));
      for (let i = 0; i < KILL_LAND_MS / 20 && (await alive()); i++) await machineClock(ctx).sleep(20);
      if (await alive()) return { action: `nothing: the kill never landed; worker pid ${pid} is still running` };
      // A node that reacts by exiting takes a moment to do it (and Docker another to see it):
      // judging before that would restart a container that is restarting itself.
      const bound = new AbortController();
      await Promise.race([
        container.wait({ condition: 'not-running', abortSignal: bound.signal }).catch(() => undefined),
        machineClock(ctx).sleep(SETTLE_MS, bound.signal).catch(() => undefined),
      ]).finally(() => bound.abort());
      info = await inspect();
      if (!info) return { action: 'nothing: container no longer exists' };
      if (info.State.StartedAt !== undo.startedAt) return { action: restartedSince(info) };
      if (info.State.Running) {
        const choice = chooseWorker(await listProcesses(docker, info.Id), info.State.Pid, undo.pattern as string);
        const now = choice.matches.length;
        const before = Number(undo.workersBefore);
        if (now >= before) return { action: `nothing: all ${before} workers are running again` };
        if (undo.restore === 'none') return { action: `nothing (restore=none): the node runs on with ${now} of ${before} workers`, result: { workers: now, of: before } };
        await container.restart();
        return { action: `restarted the container through the Docker API: it was still running with ${now} of ${before} GPU workers`, result: { workers: now, of: before } };
      }
    }
    if (info.State.Running || info.State.Restarting) return { action: 'nothing: container restarting by its restart policy' };
    try {
      await container.start();
    } catch (err) {
      // 304: the restart policy won the race and it is already running — that is the goal.
      if ((err as { statusCode?: number }).statusCode === 304) return { action: 'nothing: container restarted by its restart policy' };
      throw err;
    }
    return { action: 'started the container: it exited after losing a worker and did not come back by itself' };
  },
};
