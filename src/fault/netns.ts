// Commands inside a container's network namespace, entered from the host with nsenter
// (`nsenter -t <pid> -n <cmd> …`). Arguments go to execFile as an array: no shell, nothing
// built from input is ever parsed as a command line. Rules Gauntlet adds carry the comment
// `gauntlet:<fault id>`, so they can be listed and removed without the ledger.
import { localHost, runningOn, type HostAccess } from './host-access.js';
import type { ExecResult } from './exec.js';

export { run, type ExecResult } from './exec.js';

/**
 * Runs a program inside the network namespace of `pid` (a container's main process), on the
 * host `on` (default this machine; another engine's through its agent).
 */
export function inNetns(pid: number, file: string, args: readonly string[], on: HostAccess = localHost(), timeoutMs = 10_000): Promise<ExecResult> {
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`refusing to enter the network namespace of pid ${pid}`);
  return on.run('nsenter', ['-t', String(pid), '-n', '--', file, ...args], timeoutMs);
}

/** Like inNetns, but throws with the command and its stderr when it fails. */
export async function inNetnsOk(pid: number, file: string, args: readonly string[], on: HostAccess = localHost(), timeoutMs = 10_000): Promise<string> {
  const r = await inNetns(pid, file, args, on, timeoutMs);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} in the netns of pid ${pid}${on.local ? '' : ` on ${on.where}`} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export interface TaggedRule {
  table: string;
  /** The rule as iptables-save prints it, starting with "-A CHAIN". */
  spec: string;
  /** The fault id from the `gauntlet:<id>` comment. */
  faultId: string;
}

/** Rules carrying a `gauntlet:` comment, from `iptables-save` output. */
export function parseTaggedRules(save: string): TaggedRule[] {
  const rules: TaggedRule[] = [];
  let table = 'filter';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith('-A ')) {
      const m = /--comment "?gauntlet:([^"\s]+)"?/.exec(line);
      if (m?.[1]) rules.push({ table, spec: line, faultId: m[1] });
    }
  }
  return rules;
}

/** Splits an iptables-save rule into argv, honouring double quotes (comments are quoted). */
export function splitRule(spec: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(spec))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] as string));
  return out;
}

/** Gauntlet's rules in a namespace (optionally only one fault's). */
export async function listTaggedRules(pid: number, faultId?: string, on: HostAccess = localHost()): Promise<TaggedRule[]> {
  const save = await inNetnsOk(pid, 'iptables-save', [], on);
  return parseTaggedRules(save).filter((r) => faultId === undefined || r.faultId === faultId);
}

/** Deletes Gauntlet's rules (optionally one fault's) in a namespace; returns how many. */
export async function deleteTaggedRules(pid: number, faultId?: string, on: HostAccess = localHost()): Promise<number> {
  let n = 0;
  for (const r of await listTaggedRules(pid, faultId, on)) {
    const args = splitRule(r.spec);
    args[0] = '-D';
    await inNetnsOk(pid, 'iptables', ['-w', '5', '-t', r.table, ...args], on);
    n++;
  }
  return n;
}

/** The namespace's TCP retransmitted segments so far (/proc/net/snmp, read from inside it). */
export async function tcpRetransmits(pid: number, on: HostAccess = localHost()): Promise<number | null> {
  // /proc/<pid>/net is the network namespace of that process: no need to enter it
  const text = await on.readFile(`/proc/${pid}/net/snmp`);
  if (text === null) return null;
  const [head, values] = text.split('\n').filter((l) => l.startsWith('Tcp:'));
  const i = (head ?? '').split(/\s+/).indexOf('RetransSegs');
  const v = Number((values ?? '').split(/\s+/)[i]);
  return i < 0 || !Number.isFinite(v) ? null : v;
}

/** Packets matched so far by one fault's rules (iptables-save -c counters). */
export async function taggedRulePackets(pid: number, faultId: string, on: HostAccess = localHost()): Promise<number> {
  const save = await inNetnsOk(pid, 'iptables-save', ['-c'], on);
  let n = 0;
  for (const line of save.split('\n')) {
    const m = /^\[(\d+):\d+\] -A .*--comment "?gauntlet:([^"\s]+)"?/.exec(line);
    if (m && m[2] === faultId) n += Number(m[1]);
  }
  return n;
}

/** The functions above, bound to one host (a fault's node's: this machine, or an engine's agent). */
export function netnsOn(on: HostAccess) {
  return {
    inNetns: (pid: number, file: string, args: readonly string[], timeoutMs?: number) => inNetns(pid, file, args, on, timeoutMs),
    inNetnsOk: (pid: number, file: string, args: readonly string[], timeoutMs?: number) => inNetnsOk(pid, file, args, on, timeoutMs),
    listTaggedRules: (pid: number, faultId?: string) => listTaggedRules(pid, faultId, on),
    deleteTaggedRules: (pid: number, faultId?: string) => deleteTaggedRules(pid, faultId, on),
    tcpRetransmits: (pid: number) => tcpRetransmits(pid, on),
    taggedRulePackets: (pid: number, faultId: string) => taggedRulePackets(pid, faultId, on),
    running: (pid: number) => runningOn(on, pid),
  };
}
