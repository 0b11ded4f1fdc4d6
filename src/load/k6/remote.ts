// k6 instances on other machines, reached over SSH (load.k6_hosts): the bundle, its config and
// prompt files go over as one tar stream into a fresh folder there; k6 runs its execution
// segment paused with its REST API on the remote loopback, forwarded to a local port (ssh -L) so
// Gauntlet resumes and stops it as it does a local one; its JSON output comes back on the SSH
// session's stdout. Nothing from the plan reaches a shell unvalidated: the remote command is built
// from Gauntlet's own folder name, numbers and a k6 path that must look like one, each quoted.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { filesTar, type TarFile } from '../../docker/tar.js';
import { cpuListCount, statCpuTicks } from '../../util/proc.js';

export interface SshHost {
  user: string | null;
  host: string;
  port: number;
  /** ssh -i: the private key to log in with (else ssh's defaults). */
  identityFile: string | null;
  /** UserKnownHostsFile (else ssh's default); unknown host keys are refused either way (BatchMode). */
  knownHostsFile: string | null;
  /** The k6 binary there (a path or a name on its PATH). */
  k6: string;
}

/** Where one k6 instance runs. */
export type K6Host = { kind: 'local' } | ({ kind: 'ssh' } & SshHost);

/**
 * A plan's load.k6_hosts, one entry per instance, in order (the order of their execution
 * segments). Key and known-hosts files are read relative to `baseDir` (the plan's folder).
 */
export function k6HostsOf(entries: readonly { host: string; instances: number; k6: string; identity_file?: string | undefined; known_hosts_file?: string | undefined }[], baseDir: string): K6Host[] {
  return entries.flatMap((e) => {
    let h: K6Host = { kind: 'local' };
    if (e.host !== 'local') {
      const u = parseSshUrl(e.host);
      if (!u) throw new Error(`k6 host ${e.host}: expected local or ssh://[user@]host[:port]`);
      h = { kind: 'ssh', ...u, k6: e.k6, identityFile: e.identity_file ? resolve(baseDir, e.identity_file) : null, knownHostsFile: e.known_hosts_file ? resolve(baseDir, e.known_hosts_file) : null };
    }
    return Array.from({ length: e.instances }, () => h);
  });
}

/** A k6 path or command name as the remote shell will see it: no spaces, quotes or metacharacters. */
export const K6_PATH = /^[A-Za-z0-9_./+-]+$/;

// (user and host start with a letter or digit: nothing ssh could take for an option)
const SSH_URL = /^ssh:\/\/(?:([A-Za-z0-9][A-Za-z0-9._-]*)@)?([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;

/** ssh://[user@]host[:port] → its parts (null: not such a URL). */
export function parseSshUrl(url: string): { user: string | null; host: string; port: number } | null {
  const m = SSH_URL.exec(url);
  if (!m) return null;
  const port = m[3] ? Number(m[3]) : 22;
  if (!(port >= 1 && port <= 65535)) return null;
  return { user: m[1] ?? null, host: (m[2] as string).replace(/^\[|\]$/g, ''), port };
}

/** How the report names the host. */
export function sshHostName(h: Pick<SshHost, 'user' | 'host' | 'port'>): string {
  return `${h.user ? `${h.user}@` : ''}${h.host}${h.port !== 22 ? `:${h.port}` : ''}`;
}

/** One word for a POSIX shell, single-quoted. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** ssh's own arguments: no prompts, host keys checked, bounded connect, keep-alives; then `--` and the destination. */
export function sshArgs(h: SshHost, extra: string[] = []): string[] {
  return [
    '-o', 'BatchMode=yes',
    // whatever the user's ssh config says: a host whose key is not known is refused
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'ConnectTimeout=10',
    '-o', 'ServerAliveInterval=15',
    '-o', 'ServerAliveCountMax=4',
    '-o', 'LogLevel=ERROR',
    ...(h.knownHostsFile ? ['-o', `UserKnownHostsFile=${h.knownHostsFile}`] : []),
    ...(h.identityFile ? ['-i', h.identityFile, '-o', 'IdentitiesOnly=yes'] : []),
    '-p', String(h.port),
    ...extra,
    '--',
    h.user ? `${h.user}@${h.host}` : h.host,
  ];
}

/** Runs one command there with `input` on its stdin; rejects with ssh's own words when it fails. */
function sshRun(h: SshHost, command: string, input: Buffer | null, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('ssh', [...sshArgs(h), command], { timeout: timeoutMs, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ssh ${sshHostName(h)}: ${(stderr || err.message).trim().split('\n').slice(-3).join(' ')}`));
      else resolve(stdout);
    });
    if (input) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/** A fresh folder there for one instance, named by Gauntlet (nothing from the plan in it). */
export function remoteDir(): string {
  return `/tmp/gauntlet-k6-${randomBytes(6).toString('hex')}`;
}

/** Copies files into a new folder there (one tar stream), and checks the k6 binary runs. */
export async function uploadBundle(h: SshHost, dir: string, files: readonly TarFile[]): Promise<void> {
  if (!K6_PATH.test(h.k6)) throw new Error(`k6 path ${JSON.stringify(h.k6)}: expected a path or command name without spaces or shell characters`);
  await sshRun(h, `mkdir -p ${shellQuote(dir)} && tar -x -C ${shellQuote(dir)} && ${shellQuote(h.k6)} version`, filesTar(files), 60_000);
}

/**
 * How far that host's clock is from this one's (theirs − ours, ms), from one SSH session: a few
 * lines sent and `date +%s%N` read back each time, the reading taken at the midpoint of the
 * quickest round trip (its half is the error). Null when the host's `date` cannot say nanoseconds.
 */
export function remoteClockOffset(h: SshHost, rounds = 5): Promise<{ offsetMs: number; errorMs: number } | null> {
  return new Promise((resolve) => {
    const child = spawn('ssh', [...sshArgs(h), 'while read -r _; do date +%s%N; done'], { stdio: ['pipe', 'pipe', 'ignore'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    let best: { offsetMs: number; errorMs: number } | null = null;
    let sentAt = 0;
    let left = rounds;
    let buffered = '';
    const ask = (): void => {
      sentAt = performance.timeOrigin + performance.now();
      child.stdin.write('\n');
    };
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        const now = performance.timeOrigin + performance.now();
        if (!/^\d{19}$/.test(line)) {
          child.stdin.end();
          continue;
        }
        const theirs = Number(BigInt(line) / 1000n) / 1000; // ns → ms, µs kept
        const rtt = now - sentAt;
        if (!best || rtt / 2 < best.errorMs) best = { offsetMs: theirs - (sentAt + rtt / 2), errorMs: rtt / 2 };
        if (--left > 0) ask();
        else child.stdin.end();
      }
    });
    child.stdin.on('error', () => undefined);
    child.once('close', () => {
      clearTimeout(timer);
      resolve(best);
    });
    child.once('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
    // (the first round trip includes the session's setup: the quickest of the others counts)
    ask();
  });
}

/**
 * Kills a k6 still running from the folder there (one that never heard its stop: its REST API
 * did not answer), then removes the folder. Best effort: the run's result does not hang on it.
 */
export async function removeRemoteDir(h: SshHost, dir: string): Promise<void> {
  const m = /^\/tmp\/gauntlet-k6-([0-9a-f]{12})$/.exec(dir);
  if (!m) throw new Error(`not a folder of Gauntlet's: ${dir}`);
  // ([g]…: the pattern does not match the shell that runs pkill, whose command line holds it)
  const pattern = `[g]auntlet-k6-${m[1]}/scenario[.]js`;
  await sshRun(h, `pkill -KILL -f -- ${shellQuote(pattern)}; rm -rf ${shellQuote(dir)}`, null, 30_000).catch(() => undefined);
}

/**
 * Starts k6 there: `args` after `k6 run`, its REST API on the remote 127.0.0.1:remotePort
 * forwarded to 127.0.0.1:localPort here, its JSON output on this process's stdout.
 */
export function spawnRemoteK6(h: SshHost, dir: string, args: readonly string[], ports: { local: number; remote: number }): ChildProcess {
  const command = ['exec', h.k6, 'run', ...args].map(shellQuote).join(' ');
  return spawn('ssh', [...sshArgs(h, ['-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${ports.local}:127.0.0.1:${ports.remote}`]), `cd ${shellQuote(dir)} && ${command}`], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One reading of a remote k6's CPU: cores used since the last reading, and the share of those it may use. */
export interface RemoteCpuSample {
  cores: number;
  share: number;
}

/**
 * Reads the lines of the remote CPU watch (watchRemoteCpu): `info <CLK_TCK> <CPUs> <allowed list>`
 * once, then `stat <ns since the epoch> <the text of /proc/<pid>/stat>` every second. The rate is
 * taken between the remote host's own timestamps (the SSH link's delays do not skew it); a host
 * whose `date` has no nanoseconds falls back to the time each line arrived here.
 */
export class RemoteCpuReader {
  private hz = 100;
  private allowed: number | null = null;
  private last: { atMs: number; ticks: number } | null = null;

  constructor(
    private readonly emit: (s: RemoteCpuSample) => void,
    private readonly now: () => number = () => performance.timeOrigin + performance.now(),
  ) {}

  /** Takes one line; what is wrong with it, or null. */
  line(text: string): string | null {
    const info = /^info (\d+) (\d+) ?(\S*)$/.exec(text);
    if (info) {
      const hz = Number(info[1]);
      const cpus = Number(info[2]);
      const list = info[3] ? cpuListCount(info[3]) : null;
      if (!(hz > 0) || !(cpus > 0)) return `unreadable CPU facts: ${JSON.stringify(text.slice(0, 120))}`;
      this.hz = hz;
      this.allowed = Math.min(cpus, list ?? cpus);
      return null;
    }
    const stat = /^stat (\S+) (\d+ \(.*\) .*)$/.exec(text);
    if (!stat) return `unexpected line ${JSON.stringify(text.slice(0, 120))}`;
    const ticks = statCpuTicks(stat[2] as string);
    if (ticks === null) return `unreadable /proc stat line ${JSON.stringify(text.slice(0, 120))}`;
    const atMs = /^\d{19}$/.test(stat[1] as string) ? Number(BigInt(stat[1] as string) / 1000n) / 1000 : this.now();
    const last = this.last;
    this.last = { atMs, ticks };
    if (this.allowed === null || !last || atMs <= last.atMs || ticks < last.ticks) return null;
    const cores = (ticks - last.ticks) / this.hz / ((atMs - last.atMs) / 1000);
    this.emit({ cores, share: cores / this.allowed });
    return null;
  }
}

/**
 * Watches the CPU of the k6 running from Gauntlet's folder `dir` there, over an SSH session of its
 * own: the process is found by its script's path (Gauntlet's folder name; nothing from the plan),
 * then its /proc stat is read every second until it ends or `stop()`. What goes wrong is said
 * through `problem` once; the load does not depend on it.
 */
export function watchRemoteCpu(h: SshHost, dir: string, emit: (s: RemoteCpuSample) => void, problem: (why: string) => void): { stop(): void; done: Promise<void> } {
  const m = /^\/tmp\/gauntlet-k6-([0-9a-f]{12})$/.exec(dir);
  if (!m) throw new Error(`not a folder of Gauntlet's: ${dir}`);
  // ([g]…: the pattern does not match this shell, whose command line holds it)
  const pattern = shellQuote(`[g]auntlet-k6-${m[1]}/scenario[.]js`);
  const script = [
    `p=''; n=0`,
    `while [ -z "$p" ] && [ $n -lt 100 ]; do p=$(pgrep -f -- ${pattern} | head -n 1); n=$((n+1)); [ -n "$p" ] || sleep 0.1; done`,
    `[ -n "$p" ] || { echo 'no k6 process found' >&2; exit 3; }`,
    `echo "info $(getconf CLK_TCK) $(nproc --all) $(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$p/status)"`,
    `while s=$(cat /proc/$p/stat 2>/dev/null); do echo "stat $(date +%s%N) $s"; sleep 1; done`,
  ].join('\n');
  const child = spawn('ssh', [...sshArgs(h), script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const reader = new RemoteCpuReader(emit);
  let said = false;
  const say = (why: string): void => {
    if (said) return;
    said = true;
    problem(why);
  };
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const why = reader.line(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      if (why) say(why);
    }
    if (buffered.length > 65_536) {
      say('a line of over 64 KiB');
      buffered = '';
    }
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-2000);
  });
  let stopped = false;
  const done = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      say(`ssh could not be started: ${err.message}`);
      resolve();
    });
    child.once('close', (code) => {
      if (!stopped && code !== 0) say(`the watch ended with ${code === null ? 'a signal' : `code ${code}`}${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-2).join(' ')}` : ''}`);
      resolve();
    });
  });
  return {
    stop: () => {
      stopped = true;
      child.kill('SIGTERM');
    },
    done,
  };
}
