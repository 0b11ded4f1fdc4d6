// Facts about processes on this host, from /proc (Linux). Used to tell a killed process from a
// live one, and whether the Gauntlet process that owns a ledger entry is still running.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export interface ProcStat {
  state: string;
  startTime: string;
}

/**
 * The host's processes as faults see them (node-kill signals a container's main process from
 * the host). Injected so a test can stand a fake Docker's containers in for real processes.
 */
export interface ProcessHost {
  stat(pid: number): ProcStat | null;
  running(pid: number): boolean;
  kill(pid: number, signal: NodeJS.Signals): void;
}

export const hostProcesses: ProcessHost = {
  stat: (pid) => procStat(pid),
  running: (pid) => processRunning(pid),
  kill: (pid, signal) => void process.kill(pid, signal),
};

/** State letter and start time (clock ticks since boot) of a pid, or null if not visible. */
export function procStat(pid: number): ProcStat | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** State letter and start time from the text of /proc/<pid>/stat. */
export function parseProcStat(text: string): ProcStat {
  // The command name is in parentheses and may contain spaces: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', startTime: fields[19] ?? '?' };
}

/** CPU time (user + system) in clock ticks, from the text of /proc/<pid>/stat; null if unreadable. */
export function statCpuTicks(text: string): number | null {
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
  return Number.isFinite(ticks) ? ticks : null;
}

/** How many CPUs a Cpus_allowed_list names ("0-3,8" → 5); null when it names none or is not one. */
export function cpuListCount(list: string): number | null {
  let n = 0;
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return null;
    n += m[2] === undefined ? 1 : Number(m[2]) - Number(m[1]) + 1;
  }
  return n > 0 ? n : null;
}

/**
 * A process is still running: its stat is there, it is not a zombie or dead, and — given the start
 * time recorded for it — it is the same process, not another that took its pid.
 */
export function statRunning(s: ProcStat | null, startTime?: string | null): s is ProcStat {
  return s !== null && s.state !== 'Z' && s.state !== 'X' && (startTime === undefined || startTime === null || s.startTime === startTime);
}

/** True when pid exists and is not a zombie (i.e. it has not been killed). */
export function processRunning(pid: number): boolean {
  return statRunning(procStat(pid));
}

/** Identifies this process across pid reuse: host, pid and start time. */
export function selfOwner(): string {
  return `${hostname()}|${process.pid}|${procStat(process.pid)?.startTime ?? '?'}`;
}

/** True when the owner is a process of this host that is still running (same pid and start time). */
export function ownerAlive(owner: string | null): boolean {
  if (!owner) return false;
  const [host, pid, start] = owner.split('|');
  if (host !== hostname() || !pid || Number(pid) === process.pid) return false;
  if (!start) return false;
  return statRunning(procStat(Number(pid)), start);
}

/** The soft limit on open files of this process, or null when it cannot be read. */
export function openFilesLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? null : Number(soft);
  } catch {
    return null;
  }
}
