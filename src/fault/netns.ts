// Commands inside a container's network namespace, entered from the host with nsenter
// (`nsenter -t <pid> -n <cmd> …`). Arguments go to execFile as an array: no shell, nothing
// built from input is ever parsed as a command line. Rules Gauntlet adds carry the comment
// `gauntlet:<fault id>`, so they can be listed and removed without the ledger.
import { execFile } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with arguments (no shell), bounded in time; never throws for a non-zero exit. */
export function run(file: string, args: readonly string[], timeoutMs = 10_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(file, args as string[], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
      if (!e) return resolve({ code: 0, stdout, stderr });
      if (typeof e.code === 'string') return resolve({ code: 127, stdout, stderr: `${file}: ${e.code === 'ENOENT' ? 'not installed (not on PATH)' : e.message}` });
      resolve({ code: typeof e.code === 'number' ? e.code : 1, stdout, stderr: e.killed ? `${file}: timed out after ${timeoutMs} ms` : stderr || e.message });
    });
  });
}

/** Runs a program inside the network namespace of `pid` (a container's main process). */
export function inNetns(pid: number, file: string, args: readonly string[], timeoutMs = 10_000): Promise<ExecResult> {
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`refusing to enter the network namespace of pid ${pid}`);
  return run('nsenter', ['-t', String(pid), '-n', '--', file, ...args], timeoutMs);
}

/** Like inNetns, but throws with the command and its stderr when it fails. */
export async function inNetnsOk(pid: number, file: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  const r = await inNetns(pid, file, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} in the netns of pid ${pid} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
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
export async function listTaggedRules(pid: number, faultId?: string): Promise<TaggedRule[]> {
  const save = await inNetnsOk(pid, 'iptables-save', []);
  return parseTaggedRules(save).filter((r) => faultId === undefined || r.faultId === faultId);
}

/** Deletes Gauntlet's rules (optionally one fault's) in a namespace; returns how many. */
export async function deleteTaggedRules(pid: number, faultId?: string): Promise<number> {
  let n = 0;
  for (const r of await listTaggedRules(pid, faultId)) {
    const args = splitRule(r.spec);
    args[0] = '-D';
    await inNetnsOk(pid, 'iptables', ['-w', '5', '-t', r.table, ...args]);
    n++;
  }
  return n;
}

/** The namespace's TCP retransmitted segments so far (/proc/net/snmp, read from inside it). */
export async function tcpRetransmits(pid: number): Promise<number | null> {
  const r = await inNetns(pid, 'cat', ['/proc/net/snmp']);
  if (r.code !== 0) return null;
  const [head, values] = r.stdout.split('\n').filter((l) => l.startsWith('Tcp:'));
  const i = (head ?? '').split(/\s+/).indexOf('RetransSegs');
  const v = Number((values ?? '').split(/\s+/)[i]);
  return i < 0 || !Number.isFinite(v) ? null : v;
}

/** Packets matched so far by one fault's rules (iptables-save -c counters). */
export async function taggedRulePackets(pid: number, faultId: string): Promise<number> {
  const save = await inNetnsOk(pid, 'iptables-save', ['-c']);
  let n = 0;
  for (const line of save.split('\n')) {
    const m = /^\[(\d+):\d+\] -A .*--comment "?gauntlet:([^"\s]+)"?/.exec(line);
    if (m && m[2] === faultId) n += Number(m[1]);
  }
  return n;
}
