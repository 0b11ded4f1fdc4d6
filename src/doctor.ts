// `gauntlet doctor`: what this host lets Gauntlet do, and what to do about what it does not.
// Read-only: it asks the Docker engine, reads /proc and the files Gauntlet built, and runs the
// host probes of src/fault/host.ts (which only touch throwaway network namespaces).
// Each check is built by a small function from the facts gathered, so tests feed it facts.
import { accessSync, constants, existsSync, openSync, readSync, closeSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dockerClient } from './docker/engine.js';
import { errorMessage } from './errors.js';
import { detectHost, type HostProbe, type Runner, type Verdict } from './fault/host.js';
import { run } from './fault/netns.js';
import { locateK6, probeK6, type K6Binary } from './load/k6/binary.js';
import { packageRoot } from './util/paths.js';
import { processRunning } from './util/proc.js';

export type CheckStatus = 'ok' | 'missing' | 'warn';

export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  /** True when Gauntlet cannot do its job without it: `gauntlet doctor` exits 1 if one is not ok. */
  required: boolean;
  detail: string;
  /** What to do about it; present whenever the status is not ok. */
  fix?: string;
}

/** The little of the Docker engine API doctor reads (dockerode's client fits it). */
export interface DoctorDocker {
  version(): Promise<{ Version: string; ApiVersion: string }>;
  info(): Promise<EngineInfo>;
  listContainers(opts: { filters: { status: string[] } }): Promise<Array<{ Id: string; Names?: string[] }>>;
  getContainer(id: string): { inspect(): Promise<{ Id: string; Name: string; State: { Pid: number; Running: boolean } }> };
}

export interface EngineInfo {
  CgroupVersion?: string;
  CgroupDriver?: string;
  MemoryLimit?: boolean;
  SwapLimit?: boolean;
  OomKillDisable?: boolean;
}

/** What doctor reads from /proc and the filesystem (a fake in tests). */
export interface ProcView {
  /** /proc/<pid>/cgroup, or null when the pid is not visible (or not running). */
  cgroupOf(pid: number): string | null;
  /** Why this process looks containerised (/.dockerenv …), or null when it does not. */
  containerMarker(): string | null;
  /** The pid of a visible dockerd, or null. */
  dockerdPid(): number | null;
}

export interface HogFacts {
  path: string;
  exists: boolean;
  executable: boolean;
  /** True when the ELF has no program interpreter (static); null when it is not an ELF. */
  isStatic: boolean | null;
  bytes: number;
}

export type K6Facts = { found: false; error?: string; fix?: string } | { found: true; binary: K6Binary } | { found: true; path: string; error: string };

export interface DoctorOptions {
  docker?: DoctorDocker;
  /** Where the engine is, for messages (DOCKER_HOST or the default socket). */
  dockerWhere?: string;
  host?: () => Promise<HostProbe>;
  /** Runs `iptables --version` (the version is only for the message). */
  runner?: Runner;
  proc?: ProcView;
  hog?: () => HogFacts;
  k6?: () => Promise<K6Facts>;
  /** Bound on each Docker API call. */
  dockerTimeoutMs?: number;
}

const FIX_DOCKER = 'start the engine (as root on Debian: bash scripts/ensure-docker.sh) or set DOCKER_HOST';
const FIX_HOST_PID = 'run Gauntlet on the Docker host, or in a container with --pid=host --privileged';
const FIX_HOG = 'apt-get install gcc libc6-dev && npm run build';

// ---------------------------------------------------------------------------------------------
// The checks, from facts.

export type DockerFacts = { ok: true; version: string; apiVersion: string } | { ok: false; error: string };

export function dockerCheck(f: DockerFacts, where: string): DoctorCheck {
  if (f.ok) return { name: 'docker', status: 'ok', required: true, detail: `engine ${f.version} (API ${f.apiVersion}) at ${where}` };
  const fix = /EACCES|permission denied/i.test(f.error)
    ? 'run Gauntlet as root (its faults need root anyway), or give this user access to the socket (the docker group)'
    : FIX_DOCKER;
  return { name: 'docker', status: 'missing', required: true, detail: `engine not reachable at ${where}: ${f.error}`, fix };
}

const notChecked = (name: string, what: string): DoctorCheck => ({
  name,
  status: 'warn',
  required: false,
  detail: `not checked: ${what}`,
  fix: 'start the Docker engine, then run gauntlet doctor again',
});

export function cgroupCheck(info: EngineInfo | null, error?: string): DoctorCheck {
  if (!info) return notChecked('cgroup', error ? `docker info failed: ${error}` : 'Docker is not reachable');
  const version = info.CgroupVersion ?? '1';
  const yes = (b: boolean | undefined): string => (b ? 'yes' : 'no');
  const facts = `cgroup v${version}${info.CgroupDriver ? ` (${info.CgroupDriver} driver)` : ''}, memory limits ${yes(info.MemoryLimit)}, swap limits ${yes(info.SwapLimit)}`;
  if (!info.MemoryLimit) {
    return {
      name: 'cgroup',
      status: 'missing',
      required: false,
      detail: `${facts}: the engine cannot limit container memory, so the oom fault cannot run`,
      fix: 'enable the memory controller (kernel command line: cgroup_enable=memory swapaccount=1), reboot, restart dockerd',
    };
  }
  if (version === '1') {
    return {
      name: 'cgroup',
      status: 'warn',
      required: false,
      detail:
        `${facts}: a v1 limit can thrash instead of OOM-killing, so the oom fault raises the target's oom_score_adj to 1000 ` +
        "and runs its hog inside the target's cgroup (the kernel then kills the target; Docker reports OOMKilled)",
      fix: 'nothing needed; cgroup v2 (kernel command line systemd.unified_cgroup_hierarchy=1) avoids the thrashing',
    };
  }
  if (!info.SwapLimit) {
    return {
      name: 'cgroup',
      status: 'warn',
      required: false,
      detail: `${facts}: without swap limits a target may swap instead of being OOM-killed`,
      fix: 'add swapaccount=1 to the kernel command line, or start targets with --memory-swap equal to --memory',
    };
  }
  return { name: 'cgroup', status: 'ok', required: false, detail: `${facts}: the oom fault can rely on the memory limit` };
}

const fixOf = (v: Verdict): string => v.fix ?? 'see the reason';

export function netemCheck(netem: Verdict, iptables: Verdict): DoctorCheck {
  if (netem.ok) return { name: 'netem', status: 'ok', required: false, detail: 'the kernel has the netem qdisc: latency and packet-loss faults use netem' };
  const loss = iptables.ok ? 'packet loss will use iptables statistic' : 'packet-loss faults cannot run (iptables is unusable too, see below)';
  return { name: 'netem', status: 'missing', required: false, detail: `${netem.reason ?? 'unavailable'}: latency will use Gauntlet's proxy, ${loss}`, fix: fixOf(netem) };
}

export function iptablesCheck(iptables: Verdict, netem: Verdict, version: string | null): DoctorCheck {
  const what = version ?? 'iptables';
  if (iptables.ok) {
    const role = netem.ok ? 'the fallback for packet loss (netem is used first)' : 'the packet-loss driver here (no netem)';
    return { name: 'iptables', status: 'ok', required: false, detail: `${what} with the statistic and comment matches: ${role}` };
  }
  const effect = netem.ok ? 'packet loss will use netem' : 'packet-loss faults cannot run (no netem either)';
  return { name: 'iptables', status: 'missing', required: false, detail: `${iptables.reason ?? 'unavailable'}: ${effect}`, fix: fixOf(iptables) };
}

export function nsenterCheck(nsenter: Verdict, dockerUp: boolean): DoctorCheck {
  if (nsenter.ok) {
    return { name: 'nsenter', status: 'ok', required: dockerUp, detail: "this process can enter a container's network namespace (qdiscs and iptables rules go there)" };
  }
  return {
    name: 'nsenter',
    status: 'missing',
    required: dockerUp,
    detail: `${nsenter.reason ?? 'unavailable'}: network faults (latency, packet loss) cannot reach a container`,
    fix: fixOf(nsenter),
  };
}

export type HostPidFacts =
  /** A running container's main pid, and its /proc/<pid>/cgroup here (null: not visible). */
  | { kind: 'container'; name: string; id: string; pid: number; cgroup: string | null }
  /** No running container to look at: what the process can tell about itself. */
  | { kind: 'inferred'; dockerUp: boolean; marker: string | null; dockerdPid: number | null };

export function hostPidCheck(f: HostPidFacts): DoctorCheck {
  const name = 'host-pid';
  if (f.kind === 'container') {
    if (f.cgroup === null) {
      return {
        name,
        status: 'missing',
        required: true,
        detail: `container ${f.name}'s main pid ${f.pid} is not visible in /proc here: node-kill, oom and network faults act on that pid from the host`,
        fix: FIX_HOST_PID,
      };
    }
    if (!f.cgroup.includes(f.id)) {
      return {
        name,
        status: 'missing',
        required: true,
        detail: `pid ${f.pid} here is not container ${f.name}'s main process (its cgroup does not name the container): this process is in another PID namespace`,
        fix: FIX_HOST_PID,
      };
    }
    return { name, status: 'ok', required: true, detail: `container ${f.name}'s main pid ${f.pid} is visible in /proc: Gauntlet shares the Docker host's PID namespace` };
  }
  const required = f.dockerUp;
  if (f.dockerUp && f.dockerdPid !== null) {
    return { name, status: 'ok', required, detail: `no running container to check; dockerd (pid ${f.dockerdPid}) is visible here, so its containers' pids are too` };
  }
  if (f.marker && f.dockerUp) {
    return {
      name,
      status: 'missing',
      required,
      detail: `this process runs in a container (${f.marker}) and cannot see dockerd: containers' main pids will not be visible`,
      fix: FIX_HOST_PID,
    };
  }
  if (f.marker) {
    return {
      name,
      status: 'warn',
      required,
      detail: `this process runs in a container (${f.marker}): unless the engine runs in this same container, containers' main pids will not be visible (not confirmed: Docker is not reachable)`,
      fix: `${FIX_HOST_PID}; start the engine and run gauntlet doctor again to confirm`,
    };
  }
  return {
    name,
    status: 'warn',
    required,
    detail: f.dockerUp
      ? 'cannot confirm: no running container to check and dockerd is not visible here (a remote engine?)'
      : 'this process does not look containerised, so it should see containers\' pids (not confirmed: Docker is not reachable)',
    fix: f.dockerUp ? `start any container and run gauntlet doctor again; ${FIX_HOST_PID}` : 'start the Docker engine, then run gauntlet doctor again',
  };
}

export function hogCheck(f: HogFacts): DoctorCheck {
  const name = 'hog';
  if (!f.exists) return { name, status: 'missing', required: false, detail: `${f.path} is not built: the oom fault refuses without it`, fix: FIX_HOG };
  if (!f.executable) return { name, status: 'missing', required: false, detail: `${f.path} is not executable: the oom fault refuses without it`, fix: `chmod +x ${f.path}, or ${FIX_HOG}` };
  if (f.isStatic === null) return { name, status: 'missing', required: false, detail: `${f.path} is not an ELF binary`, fix: FIX_HOG };
  if (!f.isStatic) {
    return { name, status: 'warn', required: false, detail: `${f.path} is dynamically linked: it fails inside target images without a matching libc`, fix: FIX_HOG };
  }
  return { name, status: 'ok', required: false, detail: `${f.path} (static, ${Math.round(f.bytes / 1024)} KiB): the oom fault's memory hog` };
}

export function k6Check(f: K6Facts): DoctorCheck {
  const name = 'k6';
  const fix = 'install k6 built with xk6-sse (xk6 build --with github.com/phymbert/xk6-sse) and set K6_BIN or put it on PATH';
  if (!f.found) {
    return {
      name,
      status: 'missing',
      required: false,
      detail: `${f.error ?? 'no k6 at K6_BIN or on PATH'}: plans with load.engine: k6 refuse; the builtin engine needs nothing`,
      fix: f.fix ?? fix,
    };
  }
  if ('error' in f) return { name, status: 'missing', required: false, detail: `${f.path} does not work: ${f.error}`, fix };
  const b = f.binary;
  if (!b.sse) {
    return {
      name,
      status: 'warn',
      required: false,
      detail: `k6 ${b.version} at ${b.path}, without xk6-sse: its TTFT is time to first byte and inter-token gaps are not measured`,
      fix,
    };
  }
  return { name, status: 'ok', required: false, detail: `k6 ${b.version} at ${b.path}, with xk6-sse` };
}

// ---------------------------------------------------------------------------------------------
// Gathering the facts.

function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

export const realProc: ProcView = {
  cgroupOf(pid) {
    if (!processRunning(pid)) return null;
    try {
      return readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    } catch {
      return null;
    }
  },
  containerMarker() {
    if (existsSync('/.dockerenv')) return '/.dockerenv exists';
    if (existsSync('/run/.containerenv')) return '/run/.containerenv exists';
    try {
      const line = readFileSync('/proc/1/cgroup', 'utf8')
        .split('\n')
        .find((l) => /\/(docker|kubepods|containerd|lxc|libpod)/.test(l));
      if (line) return `/proc/1/cgroup says ${line.trim()}`;
    } catch {
      // no /proc/1/cgroup: nothing to say
    }
    return null;
  },
  dockerdPid() {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'dockerd') return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
    return null;
  },
};

/** ELF64/ELF32: is there a PT_INTERP program header (a dynamic executable)? */
function elfIsStatic(path: string): boolean | null {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(64);
    if (readSync(fd, head, 0, 64, 0) < 52 || head.readUInt32BE(0) !== 0x7f454c46) return null;
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b: Buffer, o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const phoff = is64 ? Number(le ? head.readBigUInt64LE(32) : head.readBigUInt64BE(32)) : u32(head, 28);
    const phentsize = u16(head, is64 ? 54 : 42);
    const phnum = u16(head, is64 ? 56 : 44);
    const ph = Buffer.alloc(phentsize);
    for (let i = 0; i < Math.min(phnum, 256); i++) {
      if (readSync(fd, ph, 0, phentsize, phoff + i * phentsize) < 4) return null;
      if (u32(ph, 0) === 3) return false; // PT_INTERP
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

export function hogFacts(path = join(packageRoot(), 'dist', 'helpers', 'gauntlet-hog')): HogFacts {
  if (!existsSync(path)) return { path, exists: false, executable: false, isStatic: null, bytes: 0 };
  let executable = true;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    executable = false;
  }
  let isStatic: boolean | null = null;
  try {
    isStatic = elfIsStatic(path);
  } catch {
    isStatic = null;
  }
  return { path, exists: true, executable, isStatic, bytes: statSync(path).size };
}

async function k6Facts(env: NodeJS.ProcessEnv = process.env): Promise<K6Facts> {
  let path: string | null;
  try {
    path = locateK6(env);
  } catch {
    return { found: false, error: `K6_BIN=${env.K6_BIN ?? ''} is not an executable file`, fix: 'point K6_BIN at a k6 binary (built with xk6-sse), or unset it to use k6 from PATH' };
  }
  if (!path) return { found: false };
  try {
    return { found: true, binary: await probeK6(path) };
  } catch (e) {
    return { found: true, path, error: errorMessage(e) };
  }
}

async function dockerFacts(docker: DoctorDocker, ms: number): Promise<DockerFacts> {
  try {
    const v = await bounded(docker.version(), ms, 'the Docker engine');
    return { ok: true, version: v.Version, apiVersion: v.ApiVersion };
  } catch (e) {
    return { ok: false, error: errorMessage(e) };
  }
}

async function hostPidFacts(docker: DoctorDocker, dockerUp: boolean, proc: ProcView, ms: number): Promise<HostPidFacts> {
  if (dockerUp) {
    try {
      const running = await bounded(docker.listContainers({ filters: { status: ['running'] } }), ms, 'docker ps');
      for (const c of running.slice(0, 5)) {
        const info = await bounded(docker.getContainer(c.Id).inspect(), ms, 'docker inspect').catch(() => null);
        if (!info?.State.Running || !info.State.Pid) continue; // gone or restarting meanwhile
        return { kind: 'container', name: info.Name.replace(/^\//, ''), id: info.Id, pid: info.State.Pid, cgroup: proc.cgroupOf(info.State.Pid) };
      }
    } catch {
      // fall back to what the process can tell about itself
    }
  }
  return { kind: 'inferred', dockerUp, marker: proc.containerMarker(), dockerdPid: dockerUp ? proc.dockerdPid() : null };
}

/** Runs every check; changes nothing on the host. */
export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorCheck[]> {
  const docker = opts.docker ?? (dockerClient() as DoctorDocker);
  const where = opts.dockerWhere ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const ms = opts.dockerTimeoutMs ?? 10_000;
  const proc = opts.proc ?? realProc;
  const runner = opts.runner ?? run;

  const [d, host, ipt, k6] = await Promise.all([
    dockerFacts(docker, ms),
    (opts.host ?? detectHost)(),
    runner('iptables', ['--version'], 5_000),
    (opts.k6 ?? (() => k6Facts()))(),
  ]);
  let info: EngineInfo | null = null;
  let infoError: string | undefined;
  if (d.ok) {
    try {
      info = await bounded(docker.info(), ms, 'docker info');
    } catch (e) {
      infoError = errorMessage(e);
    }
  }
  const pid = await hostPidFacts(docker, d.ok, proc, ms);
  const v = host.verdicts;
  const iptVersion = ipt.code === 0 ? ipt.stdout.trim().split('\n')[0] ?? null : null;
  return [
    dockerCheck(d, where),
    cgroupCheck(info, infoError),
    netemCheck(v.netem, v.iptables),
    iptablesCheck(v.iptables, v.netem, iptVersion),
    nsenterCheck(v.nsenter, d.ok),
    hostPidCheck(pid),
    hogCheck((opts.hog ?? hogFacts)()),
    k6Check(k6),
  ];
}

// ---------------------------------------------------------------------------------------------
// Output.

const LABEL: Record<CheckStatus, string> = { ok: 'ok', missing: 'MISSING', warn: 'warn' };

/** `ok       docker: engine 20.10.24 (API 1.41)` / `MISSING  netem: … — fix: …` */
export function formatCheck(c: DoctorCheck): string {
  return `${LABEL[c.status].padEnd(9)}${c.name}: ${c.detail}${c.status !== 'ok' && c.fix ? ` — fix: ${c.fix}` : ''}`;
}

/** A required check fails only when it is missing; a warning (works, with a caveat) passes. */
export function doctorPassed(checks: readonly DoctorCheck[]): boolean {
  return checks.every((c) => !c.required || c.status !== 'missing');
}

export function summaryLine(checks: readonly DoctorCheck[]): string {
  const count = (s: CheckStatus): number => checks.filter((c) => c.status === s).length;
  const failed = checks.filter((c) => c.required && c.status === 'missing').map((c) => c.name);
  const tally = `${count('ok')} ok, ${count('warn')} warn, ${count('missing')} missing`;
  return failed.length === 0
    ? `doctor: ${tally}; every required check passed: Gauntlet can run here${count('missing') + count('warn') > 0 ? ' (see the fixes above for what is optional)' : ''}`
    : `doctor: ${tally}; required and missing: ${failed.join(', ')} — Gauntlet cannot drive Docker nodes or inject faults here until ${failed.length === 1 ? 'it is' : 'they are'} fixed`;
}
