// What a fault does on its node's host rather than through the Docker API: signal a container's
// main process by pid, read and write /proc, run iptables/tc/ss inside a container's network
// namespace. For an engine on this machine that is done from here. For any other engine (TCP,
// SSH) it is done on that engine's host by an agent container Gauntlet starts there — in the
// host's PID and network namespaces, with the capabilities that work needs, with node, nsenter, iptables, tc, ip and ss in it —
// through `docker exec` with an argument array (no shell anywhere), the way Pumba runs tc from
// a helper container. The agent is labelled with its owner; the sweep removes one whose owner
// died, and a run removes its own at the end.
import { PassThrough } from 'node:stream';
import type { Docker } from '../docker/engine.js';
import { ensureAgentImage } from '../docker/sim-image.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { hostProcesses, parseProcStat, selfOwner, type ProcessHost, type ProcStat, statRunning } from '../util/proc.js';
import { run, type ExecResult } from './exec.js';
import type { FaultContext, HostCaps } from './types.js';
import { detectHostCaps, probeHostCaps } from './host.js';

export interface HostAccess {
  /** Where, for messages: "this machine", or the engine's host through its agent. */
  readonly where: string;
  readonly local: boolean;
  /** A test's stand-in processes (a fake Docker's containers): no program runs there. */
  readonly simulated?: boolean;
  /** Runs a program on that host, as root, in its namespaces (argument array, no shell); never throws for a non-zero exit. */
  run(file: string, args: readonly string[], timeoutMs?: number): Promise<ExecResult>;
  stat(pid: number): Promise<ProcStat | null>;
  kill(pid: number, signal: NodeJS.Signals): Promise<void>;
  /** A small file's text (a /proc entry); null when it cannot be read. */
  readFile(path: string): Promise<string | null>;
  writeFile(path: string, text: string): Promise<void>;
}

/** This machine, or a test's stand-in processes (a fake Docker's containers). */
export function localHost(processes: ProcessHost = hostProcesses): HostAccess {
  const simulated = processes !== hostProcesses;
  return {
    where: simulated ? 'the simulated host' : 'this machine',
    local: true,
    simulated,
    // the pids of a simulated host are not this machine's: no program is pointed at them
    run: simulated ? async (file) => ({ code: 127, stdout: '', stderr: `${file}: not run on a simulated host` }) : (file, args, timeoutMs) => run(file, args, timeoutMs),
    stat: async (pid) => processes.stat(pid),
    kill: async (pid, signal) => processes.kill(pid, signal),
    readFile: async (path) => {
      if (simulated) return null;
      const { readFileSync } = await import('node:fs');
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return null;
      }
    },
    writeFile: async (path, text) => {
      if (simulated) throw new Error(`${path}: not written on a simulated host`);
      const { writeFileSync } = await import('node:fs');
      writeFileSync(path, text);
    },
  };
}

/** The host a fault works on: the context's, else this machine (or a test's stand-in processes). */
export function hostOf(ctx: FaultContext): HostAccess {
  return ctx.host ?? localHost(ctx.processes ?? hostProcesses);
}

const probed = new WeakMap<HostAccess, Promise<HostCaps>>();

/** What the host can do (netem, iptables, nsenter), probed once per host: this machine's, or through an agent. */
export function capsOf(host: HostAccess): Promise<HostCaps> {
  if (host.local) return detectHostCaps();
  let p = probed.get(host);
  if (!p) {
    // nsenter into the agent's own namespace there (the host's: it shares it), touching nothing.
    // An agent that cannot start makes every host capability missing, with the reason (not a
    // failed run), and is asked again next time.
    p = (async () => probeHostCaps({ runner: (file, args, timeoutMs) => host.run(file, args, timeoutMs), pid: await (host as AgentHost).pid(), uid: 0 }))().catch((err: unknown) => {
      probed.delete(host);
      const why = errorMessage(err);
      return { netem: false, iptables: false, nsenter: false, notes: { netem: why, iptables: why, nsenter: why } };
    });
    probed.set(host, p);
  }
  return p;
}

/** True when a pid exists there and is not a zombie. */
export async function runningOn(host: HostAccess, pid: number): Promise<boolean> {
  return statRunning(await host.stat(pid));
}

export const AGENT_COMPONENT = 'agent';

/** A program the agent runs with node: argv after `-e <code>` is process.argv[1..]. */
const NODE_KILL = 'process.kill(Number(process.argv[1]), process.argv[2])';
const NODE_READ = "process.stdout.write(require('fs').readFileSync(process.argv[1], 'utf8'))";
const NODE_WRITE = "require('fs').writeFileSync(process.argv[1], process.argv[2])";

/** What a failed `node -e` said: its Error line, or its exit code. */
function nodeError(r: ExecResult): string {
  return r.stderr.trim().split('\n').find((l) => /Error/.test(l)) ?? `exit ${r.code}`;
}

/**
 * The host of another Docker engine, reached through an agent container on it. Started on first
 * use; `close()` removes it.
 */
export class AgentHost implements HostAccess {
  readonly local = false;
  private container: Promise<string> | null = null;

  constructor(
    private readonly docker: Docker,
    /** The engine's label, for messages. */
    private readonly engine: string,
    private readonly log: Logger,
  ) {}

  get where(): string {
    return `the host of engine ${this.engine} (through Gauntlet's agent container there)`;
  }

  private agent(): Promise<string> {
    this.container ??= this.start().catch((err: unknown) => {
      this.container = null;
      throw new Error(`cannot start Gauntlet's agent container on engine ${this.engine}: ${errorMessage(err)}`);
    });
    return this.container;
  }

  private async start(): Promise<string> {
    const image = await ensureAgentImage(this.docker, this.log);
    const name = `gauntlet-agent-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
    const c = await this.docker.createContainer({
      name,
      Image: image,
      // node waits for ever; every command is a `docker exec`
      Cmd: ['-e', 'setInterval(() => undefined, 1 << 30)'],
      Labels: { gauntlet: '1', 'gauntlet.component': AGENT_COMPONENT, 'gauntlet.owner': selfOwner() },
      // The capabilities its work needs, not --privileged (which also asks for CAP_SYS_RESOURCE,
      // which some hosts — these machines among them — cannot give): entering namespaces
      // (SYS_ADMIN, SYS_PTRACE), rules and qdiscs (NET_ADMIN, NET_RAW), signals (KILL).
      HostConfig: {
        PidMode: 'host',
        NetworkMode: 'host',
        CapAdd: ['SYS_ADMIN', 'SYS_PTRACE', 'NET_ADMIN', 'NET_RAW', 'KILL'],
        SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
        RestartPolicy: { Name: 'no' },
      },
    });
    await c.start();
    this.log.info({ engine: this.engine, agent: name }, `agent container ${name} started on engine ${this.engine}`);
    return c.id;
  }

  async run(file: string, args: readonly string[], timeoutMs = 10_000): Promise<ExecResult> {
    // The whole of it within the deadline (the hijacked exec stream has none of Docker's);
    // an agent that is gone (removed, its engine restarted) is started again, once.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<ExecResult>((resolve) => {
      timer = setTimeout(() => resolve({ code: 124, stdout: '', stderr: `${file}: no answer within ${timeoutMs} ms (on ${this.where})` }), timeoutMs);
    });
    try {
      return await Promise.race([
        this.runOnce(file, args).catch(async (err: unknown) => {
          const status = (err as { statusCode?: number }).statusCode;
          if (status !== 404 && status !== 409) throw err;
          this.container = null;
          return this.runOnce(file, args);
        }),
        deadline,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async runOnce(file: string, args: readonly string[]): Promise<ExecResult> {
    const id = await this.agent();
    const exec = await this.docker.getContainer(id).exec({ Cmd: [file, ...args], AttachStdout: true, AttachStderr: true, Tty: false });
    const stream = await exec.start({ hijack: true, stdin: false });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const so = new PassThrough();
    const se = new PassThrough();
    so.on('data', (b: Buffer) => out.push(b));
    se.on('data', (b: Buffer) => err.push(b));
    this.docker.modem.demuxStream(stream, so, se);
    await new Promise<void>((resolve) => {
      stream.once('end', () => resolve());
      stream.once('close', () => resolve());
      stream.once('error', () => resolve());
    });
    // Docker records the exit a moment after the stream ends: ask until it says (bounded by run's deadline)
    let info = await exec.inspect();
    for (let i = 0; i < 100 && info.Running; i++) {
      await new Promise((r) => setTimeout(r, 10));
      info = await exec.inspect();
    }
    const code = info.ExitCode ?? 1;
    const stderr = Buffer.concat(err).toString('utf8');
    // exec of a program the image lacks: the runtime's message, as `run` gives it for ENOENT
    return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: code === 127 && !stderr ? `${file}: not installed in the agent image` : stderr };
  }

  /** The agent's own process, as the host sees it. */
  async pid(): Promise<number> {
    const id = await this.agent();
    return (await this.docker.getContainer(id).inspect()).State.Pid;
  }

  async stat(pid: number): Promise<ProcStat | null> {
    const text = await this.readFile(`/proc/${pid}/stat`);
    return text === null ? null : parseProcStat(text);
  }

  async kill(pid: number, signal: NodeJS.Signals): Promise<void> {
    const r = await this.run('node', ['-e', NODE_KILL, String(pid), signal]);
    if (r.code !== 0) {
      const code = /ESRCH/.test(r.stderr) ? 'ESRCH' : /EPERM/.test(r.stderr) ? 'EPERM' : undefined;
      throw Object.assign(new Error(`kill ${signal} ${pid} on ${this.where}: ${nodeError(r)}`), code ? { code } : {});
    }
  }

  async readFile(path: string): Promise<string | null> {
    const r = await this.run('node', ['-e', NODE_READ, path]);
    return r.code === 0 ? r.stdout : null;
  }

  async writeFile(path: string, text: string): Promise<void> {
    const r = await this.run('node', ['-e', NODE_WRITE, path, text]);
    if (r.code !== 0) throw new Error(`writing ${path} on ${this.where}: ${nodeError(r)}`);
  }

  /** Removes the agent container (if one was started). */
  async close(): Promise<void> {
    const c = this.container;
    this.container = null;
    if (!c) return;
    try {
      const id = await c;
      await this.docker.getContainer(id).remove({ force: true });
    } catch {
      // never started, or gone: the sweep removes an agent whose owner died
    }
  }
}
