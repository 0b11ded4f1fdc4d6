// What this host lets Gauntlet do — netem, iptables with the statistic match, entering another
// process's network namespace — found by trying each for real where it cannot hurt: the qdisc
// and the rule go into a throwaway network namespace (`unshare --net`), which the kernel drops
// with everything in it when the probe exits. Faults pick their driver from the answer
// (latency: netem or the proxy; packet loss: netem or iptables statistic), and `gauntlet doctor`
// prints it. Detected once per process.
import type { HostCaps } from './types.js';
import { run, type ExecResult } from './netns.js';

/** How a probe runs a program: `run` from netns.ts, or a fake in tests. */
export type Runner = (file: string, args: readonly string[], timeoutMs?: number) => Promise<ExecResult>;

/** Each probe is a few syscalls (iptables may wait up to 5 s for the xtables lock); longer means something is wrong. */
const PROBE_TIMEOUT_MS = 8_000;

export const NETEM_PROBE = ['unshare', '--net', '--', 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'] as const;
export const IPTABLES_PROBE = [
  'unshare', '--net', '--', 'iptables', '-w', '5', '-A', 'INPUT',
  '-m', 'statistic', '--mode', 'random', '--probability', '0.5',
  '-m', 'comment', '--comment', 'gauntlet:probe', '-j', 'DROP',
] as const;
export const nsenterProbe = (pid: number): string[] => ['nsenter', '-t', String(pid), '-n', '--', 'true'];

export interface Verdict {
  ok: boolean;
  /** Why not (absent when ok). */
  reason?: string;
  /** What to do about it (absent when ok). */
  fix?: string;
}

const no = (reason: string, fix: string): Verdict => ({ ok: false, reason, fix });

function firstLine(r: ExecResult): string {
  const text = (r.stderr.trim() || r.stdout.trim()).split('\n').find((l) => l.trim() !== '');
  return text?.trim() ?? `exit ${r.code}`;
}

const AS_ROOT = 'run Gauntlet as root (in a container: --privileged)';

/** Failures of `unshare --net -- <tool>` itself, shared by the netem and iptables probes. */
function unshareFailure(r: ExecResult, tool: string, pkg: string): Verdict | null {
  const msg = `${r.stderr}\n${r.stdout}`;
  if (/^unshare: not installed/m.test(msg)) return no('cannot test: unshare is not installed', 'apt-get install util-linux');
  if (/unshare: failed to execute/.test(msg)) return no(`${tool} is not installed`, `apt-get install ${pkg}`);
  if (/unshare failed: Operation not permitted/.test(msg)) return no('cannot test: creating a network namespace was not permitted', AS_ROOT);
  if (/timed out after/.test(msg)) return no(`cannot test: ${firstLine(r)}`, 'find out why the probe hangs (try the command by hand)');
  return null;
}

/** `unshare --net -- tc qdisc add dev lo root netem delay 1ms` → does the kernel have netem? */
export function classifyNetem(r: ExecResult): Verdict {
  if (r.code === 0) return { ok: true };
  const pre = unshareFailure(r, 'tc', 'iproute2');
  if (pre) return pre;
  if (/Specified qdisc kind is unknown/i.test(r.stderr)) {
    return no('the kernel has no netem qdisc (module sch_netem)', "`modprobe sch_netem`, or install the kernel's extra modules (Ubuntu: linux-modules-extra-$(uname -r))");
  }
  if (/Operation not permitted|must be root/i.test(r.stderr)) return no(`tc was not permitted (${firstLine(r)})`, AS_ROOT);
  return no(`tc netem failed: ${firstLine(r)}`, 'try the probe by hand: unshare --net -- tc qdisc add dev lo root netem delay 1ms');
}

/** The statistic + comment DROP rule in a throwaway namespace → can iptables drive packet loss? */
export function classifyIptables(r: ExecResult): Verdict {
  if (r.code === 0) return { ok: true };
  const pre = unshareFailure(r, 'iptables', 'iptables');
  if (pre) return pre;
  const msg = r.stderr;
  if (/you must be root|Permission denied/i.test(msg)) return no(`iptables was not permitted (${firstLine(r)})`, AS_ROOT);
  const match = /Couldn't load match `(\w+)'|Extension (\w+) revision \d+ not supported/.exec(msg);
  if (match) {
    const name = match[1] ?? match[2] ?? 'statistic';
    return no(`iptables cannot load the ${name} match (kernel module xt_${name})`, `\`modprobe xt_${name}\`, or install the kernel's extra modules`);
  }
  if (/Table does not exist|can't initialize iptables table/i.test(msg)) {
    return no(`iptables cannot reach the kernel's filter table (${firstLine(r)})`, 'load iptable_filter (or nf_tables), or switch with update-alternatives --set iptables /usr/sbin/iptables-legacy');
  }
  return no(`iptables failed: ${firstLine(r)}`, `try the probe by hand: ${IPTABLES_PROBE.join(' ')}`);
}

/** `nsenter -t <pid> -n -- true` → can this process enter another process's network namespace? */
export function classifyNsenter(r: ExecResult, uid: number | null): Verdict {
  if (r.code === 0) return { ok: true };
  const msg = `${r.stderr}\n${r.stdout}`;
  if (/^nsenter: not installed/m.test(msg)) return no('nsenter is not installed', 'apt-get install util-linux');
  if (/Permission denied|Operation not permitted/i.test(msg)) {
    return uid !== null && uid !== 0
      ? no(`entering a network namespace needs root; this process runs as uid ${uid}`, 'run Gauntlet as root')
      : no(`entering a network namespace was not permitted (${firstLine(r)})`, 'in a container, run Gauntlet with --privileged (it needs CAP_SYS_ADMIN and CAP_SYS_PTRACE)');
  }
  return no(`nsenter failed: ${firstLine(r)}`, 'try the probe by hand: nsenter -t <pid> -n -- true');
}

/** A missing capability as one line for HostCaps.notes: why, then what to do. */
function note(kind: 'netem' | 'iptables' | 'nsenter', v: Verdict): string {
  const base = `${v.reason ?? 'unavailable'} (fix: ${v.fix ?? 'see gauntlet doctor'})`;
  if (kind === 'netem') return `${base}; until then Gauntlet uses its proxy for latency and iptables statistic for packet loss`;
  return base;
}

export interface HostProbe {
  caps: HostCaps;
  /** The same answers with reason and fix kept apart, for gauntlet doctor. */
  verdicts: { netem: Verdict; iptables: Verdict; nsenter: Verdict };
}

export interface ProbeOptions {
  runner?: Runner;
  /** The process whose namespace nsenter enters (default this one: touching nothing). */
  pid?: number;
  /** The effective uid, for messages; null where the platform has none. */
  uid?: number | null;
}

/** Runs the three probes (concurrently, each bounded) and classifies what they printed. */
export async function probeHost(opts: ProbeOptions = {}): Promise<HostProbe> {
  const runner = opts.runner ?? run;
  const pid = opts.pid ?? process.pid;
  const uid = opts.uid !== undefined ? opts.uid : (process.geteuid?.() ?? null);
  const exec = (argv: readonly string[]): Promise<ExecResult> => runner(argv[0] as string, argv.slice(1), PROBE_TIMEOUT_MS);
  const [netem, iptables, nsenter] = await Promise.all([
    exec(NETEM_PROBE).then(classifyNetem),
    exec(IPTABLES_PROBE).then(classifyIptables),
    exec(nsenterProbe(pid)).then((r) => classifyNsenter(r, uid)),
  ]);
  const notes: Record<string, string> = {};
  if (!netem.ok) notes.netem = note('netem', netem);
  if (!iptables.ok) notes.iptables = note('iptables', iptables);
  if (!nsenter.ok) notes.nsenter = note('nsenter', nsenter);
  return { caps: { netem: netem.ok, iptables: iptables.ok, nsenter: nsenter.ok, notes }, verdicts: { netem, iptables, nsenter } };
}

/** Probes and returns only the capabilities (what faults need). */
export async function probeHostCaps(opts: ProbeOptions = {}): Promise<HostCaps> {
  return (await probeHost(opts)).caps;
}

let cached: Promise<HostProbe> | null = null;

/** This host's probe results, probed on first use and then remembered for the process. */
export function detectHost(): Promise<HostProbe> {
  cached ??= probeHost();
  return cached;
}

/** This host's capabilities, probed on first use and then remembered for the process. */
export async function detectHostCaps(): Promise<HostCaps> {
  return (await detectHost()).caps;
}

/** Forgets the remembered answer (tests; a host whose modules were just loaded). */
export function resetHostCaps(): void {
  cached = null;
}
