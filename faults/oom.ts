// oom: memory exhaustion inside the node's own memory cgroup.
//   mode "kill": the kernel OOM-kills the target's main process. Its oom_score_adj is raised
//   to 1000 from the host, then a memory hog runs inside the container (a static binary
//   copied in and started with docker exec, so its pages are charged to the target's
//   cgroup). The kernel picks the target, Docker reports OOMKilled: true and the restart
//   policy fires. (On cgroup v1 a limit can thrash instead of killing when the pages are
//   file-backed; anonymous pages plus the score make the kill happen — DESIGN.md.)
//   mode "pressure": the hog fills `share` of the container's limit, holds it for
//   `duration`, and lets go. Nothing is forced: the node survives or it does not.
// The hog removes its own file and exits by itself after its hold, so the fault ends even if
// Gauntlet is gone; a container that dies takes the hog with it. The result says what
// happened: OOM-killed, survived (with the numbers), or refused (no memory limit).
import { statRunning } from '../src/util/proc.js';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { singleFileTar } from '../src/docker/tar.js';
import { GauntletError, errorMessage } from '../src/errors.js';
import type { FaultContext, FaultInjector, FaultTarget, UndoRecord } from '../src/fault/types.js';
import { formatDuration } from '../src/util/duration.js';
import { packageRoot } from '../src/util/paths.js';
import { hostOf, runningOn, type HostAccess } from '../src/fault/host-access.js';
import { durationParam, share } from './params.js';

const MIB = 1024 * 1024;

const Params = z
  .strictObject({
    mode: z.enum(['kill', 'pressure']).default('kill'),
    /** pressure: the share of the container's memory limit the hog fills. */
    share: share('share').default(0.8),
    /** pressure: how long the memory is held. */
    duration: durationParam('duration', 100, 86_400_000).optional(),
    /** kill: how long the hog keeps trying before it gives up and exits by itself. */
    hog_timeout: durationParam('hog_timeout', 1000, 3_600_000).default(60_000),
    /** MiB the hog adds per step (smaller: a gentler ramp). */
    step_mb: z.number().int().min(1).max(1024).default(16),
  })
  .superRefine((p, ctx) => {
    if (p.mode === 'pressure' && p.duration === undefined) ctx.addIssue({ code: 'custom', message: 'mode pressure needs duration (how long the memory is held, e.g. "30s")', path: ['duration'] });
    if (p.mode === 'kill' && p.duration !== undefined) ctx.addIssue({ code: 'custom', message: 'duration is only used with mode pressure (mode kill is instant)', path: ['duration'], input: p.duration });
  });
type Params = z.infer<typeof Params>;

export function hogBinaryPath(): string {
  return join(packageRoot(), 'dist', 'helpers', 'gauntlet-hog');
}

function requireDocker(ctx: FaultContext) {
  if (!ctx.docker) throw new Error('oom needs the Docker engine');
  return ctx.docker;
}

function refuse(node: string, why: string): never {
  throw new GauntletError('GAUNTLET_FAULT_INJECT', ['oom', node, why]);
}

async function readScore(host: HostAccess, pid: number): Promise<number | null> {
  const text = await host.readFile(`/proc/${pid}/oom_score_adj`);
  return text === null ? null : Number(text.trim());
}

/** The pid's oom_score_adj, written only while it is still the same process (start time). */
async function writeScore(host: HostAccess, pid: number, procStart: unknown, value: number): Promise<boolean> {
  const st = await host.stat(pid);
  if (!statRunning(st, typeof procStart === 'string' ? procStart : null)) return false;
  await host.writeFile(`/proc/${pid}/oom_score_adj`, String(value));
  return true;
}

/** The hog's host pids, from the container's process list (docker top shows host pids). */
async function hogPids(ctx: FaultContext, containerId: string, hogName: string): Promise<number[]> {
  const top = (await requireDocker(ctx).getContainer(containerId).top({ ps_args: '-eo pid,args' })) as { Titles: string[]; Processes: string[][] };
  const pidCol = top.Titles.indexOf('PID');
  const argsCol = top.Titles.findIndex((t) => t === 'COMMAND' || t === 'CMD' || t === 'ARGS');
  return top.Processes.filter((p) => (p[argsCol] ?? '').includes(hogName)).map((p) => Number(p[pidCol]));
}

async function memoryNumbers(ctx: FaultContext, containerId: string): Promise<Record<string, number | null>> {
  try {
    const s = (await requireDocker(ctx).getContainer(containerId).stats({ stream: false })) as { memory_stats?: { usage?: number; max_usage?: number; limit?: number } };
    const m = s.memory_stats ?? {};
    const mib = (v: number | undefined): number | null => (v === undefined ? null : Math.round((v / MIB) * 10) / 10);
    return { usage_mib: mib(m.usage), max_usage_mib: mib(m.max_usage), limit_mib: mib(m.limit) };
  } catch {
    return {};
  }
}

export const oom: FaultInjector<Params> = {
  kind: 'oom',
  description: 'memory exhaustion in the container: the kernel OOM-kills the node (kill), or a share of its limit is held for a while (pressure)',
  needsContainer: true,
  instant: (p) => p.mode === 'kill',
  holdMs: (p) => p.duration ?? 0,
  params: Params,

  async unsupported() {
    return existsSync(hogBinaryPath()) ? null : `the memory hog ${hogBinaryPath()} is not built (apt-get install gcc libc6-dev, then npm run build)`;
  },

  async describe(target, params) {
    const c = target.containerName ?? target.containerId;
    const copy = `copy the static memory hog into container ${c} (Docker putArchive to /) and start it with docker exec`;
    if (params.mode === 'kill') {
      return [
        `raise oom_score_adj of ${c}'s main process to 1000 (host /proc), so the kernel picks it`,
        `${copy}: it allocates up to twice the container's memory limit, ${params.step_mb} MiB at a time, and gives up after ${formatDuration(params.hog_timeout)}`,
        'expected: the kernel OOM-kills the main process, Docker reports OOMKilled and the restart policy fires',
        'revert: kill the hog if it still runs, restore oom_score_adj if the process survived, start the container if it stayed down',
      ];
    }
    return [
      `${copy}: it fills ${Math.round(params.share * 100)} % of the container's memory limit and holds it for ${formatDuration(params.duration ?? 0)}, then exits`,
      'revert: kill the hog if it still runs; report whether the node survived, with its memory numbers',
    ];
  },

  async prepare(target: FaultTarget, params, ctx): Promise<UndoRecord> {
    const docker = requireDocker(ctx);
    if (!existsSync(hogBinaryPath())) refuse(target.node, `the memory hog ${hogBinaryPath()} is not built (apt-get install gcc libc6-dev, then npm run build)`);
    const info = await docker.getContainer(target.containerId as string).inspect();
    if (!info.State.Running || info.State.Paused || !info.State.Pid) refuse(target.node, `container is ${info.State.Paused ? 'paused' : info.State.Status}, not running`);
    const limit = info.HostConfig.Memory ?? 0;
    if (!limit) {
      refuse(target.node, `container ${info.Name.replace(/^\//, '')} has no memory limit (HostConfig.Memory is 0): an OOM would be the host's, not the node's; refused (give the container a limit, docker run -m)`);
    }
    if (params.mode === 'kill' && !(await runningOn(hostOf(ctx), info.State.Pid))) {
      refuse(target.node, `the container's main pid ${info.State.Pid} is not visible here: Gauntlet must run in the Docker host's PID namespace`);
    }
    return {
      containerId: info.Id,
      containerName: info.Name.replace(/^\//, ''),
      mode: params.mode,
      pid: info.State.Pid,
      procStart: (await hostOf(ctx).stat(info.State.Pid))?.startTime ?? null,
      startedAt: info.State.StartedAt,
      restartCountBefore: info.RestartCount,
      restartPolicy: info.HostConfig.RestartPolicy?.Name ?? 'no',
      limitBytes: limit,
      oomScoreAdjBefore: await readScore(hostOf(ctx), info.State.Pid),
      scoreRaised: false,
      hogName: `.gauntlet-hog-${(ctx.faultId ?? 'manual').replace(/[^A-Za-z0-9._-]/g, '_')}`,
    };
  },

  async inject(target, params, undo, ctx) {
    const container = requireDocker(ctx).getContainer(undo.containerId as string);
    const limitMb = Number(undo.limitBytes) / MIB;
    let mb: number;
    let holdS: number;
    if (params.mode === 'kill') {
      // Raised before the hog exists: the kernel must find the node, not the hog, the worst.
      // The ledger's undo record (written before this) holds the old value for the revert.
      if (!(await writeScore(hostOf(ctx), undo.pid as number, undo.procStart, 1000))) refuse(target.node, `main pid ${String(undo.pid)} is gone before the hog started`);
      mb = Math.ceil(limitMb * 2);
      holdS = Math.ceil(params.hog_timeout / 1000);
    } else {
      mb = Math.max(1, Math.floor(limitMb * params.share));
      holdS = Math.ceil((params.duration ?? 0) / 1000);
    }
    await container.putArchive(singleFileTar(undo.hogName as string, readFileSync(hogBinaryPath())), { path: '/' });
    const exec = await container.exec({ Cmd: [`/${String(undo.hogName)}`, String(mb), String(holdS), String(params.step_mb)], AttachStdout: false, AttachStderr: false });
    const at = ctx.clock.now();
    // Detached, the engine still hands back a stream; left open it would hold the socket (and
    // the CLI) for minutes. Nothing comes on it: close it.
    const stream = (await exec.start({ Detach: true })) as unknown as { destroy?: () => void } | undefined;
    stream?.destroy?.();
    return { at, detail: { mode: params.mode, hog_mib: mb, hold_s: holdS, limit_mib: Math.round(limitMb), oom_score_adj: params.mode === 'kill' ? 1000 : undo.oomScoreAdjBefore } };
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
    const notes: string[] = [];
    if (info.State.Running && !info.State.Paused) {
      for (const pid of await hogPids(ctx, info.Id, undo.hogName as string)) {
        try {
          await hostOf(ctx).kill(pid, 'SIGKILL');
          notes.push(`killed the hog (pid ${pid})`);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') notes.push(`could not kill the hog pid ${pid}: ${errorMessage(err)}`);
        }
      }
    }
    const sameIncarnation = info.State.StartedAt === undo.startedAt;
    const restarts = info.RestartCount - Number(undo.restartCountBefore ?? 0);
    if (sameIncarnation && info.State.Running) {
      // It survived: put its score back, and say with what numbers.
      const before = undo.oomScoreAdjBefore;
      if (undo.mode === 'kill' && typeof before === 'number' && (await readScore(hostOf(ctx), undo.pid as number)) !== before) {
        if (await writeScore(hostOf(ctx), undo.pid as number, undo.procStart, before)) notes.push(`restored oom_score_adj ${before}`);
      }
      const numbers = await memoryNumbers(ctx, info.Id);
      notes.unshift(`the node survived${undo.mode === 'kill' ? ' (no OOM kill happened: the hog was refused or killed instead)' : ''}`);
      return { action: notes.join('; '), result: { outcome: 'survived', ...numbers } };
    }
    const killed = { outcome: info.State.OOMKilled ? 'oom_killed' : sameIncarnation ? 'died' : 'restarted', oom_killed: info.State.OOMKilled, exit_code: sameIncarnation ? info.State.ExitCode : null, restarts };
    if (!sameIncarnation) {
      const how = info.State.OOMKilled ? 'the node was OOM-killed' : "the node's incarnation ended without an OOM kill (restarted by someone else)";
      notes.unshift(`${how}; it ${info.State.Running || info.State.Restarting ? `runs again (restart policy restarts: ${restarts})` : 'ran again since'}; the hog went with it`);
      return { action: notes.join('; '), result: killed };
    }
    if (info.State.Restarting) return { action: `the node was ${info.State.OOMKilled ? 'OOM-killed' : 'killed'}; restarting by its restart policy`, result: killed };
    try {
      await container.start();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 304) throw err;
    }
    return { action: `the node was ${info.State.OOMKilled ? 'OOM-killed' : 'killed'} and stayed down; started the container`, result: killed };
  },
};
