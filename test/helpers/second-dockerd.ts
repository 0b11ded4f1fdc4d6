// A Docker engine of the test's own, beside the machine's: its own data root, exec root (and
// so its own containerd), socket and pid file, its own bridge and no iptables rules (containers
// use the host's network and listen on 127.0.0.1), live-restore on. (Not `--bridge none`: a
// dockerd without a bridge deletes docker0, the machine engine's bridge, at start.) The test can stop and restart
// it — what a dockerd upgrade or crash does — without touching the engine the rest of the
// suite uses. Every wait is bounded.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { RealClock } from '../../src/util/clock.js';

const clock = new RealClock();

export class SecondEngine {
  readonly socket: string;
  readonly docker: Dockerode;
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  /**
   * `root`: an empty folder of the test's (kept short: containerd's socket paths live under it).
   * `opts.tcpPort`: also listen on tcp://127.0.0.1:<port> (plain: loopback only), as a "remote"
   * engine is reached; `opts.subnet`: the third octet of its bridge's 10.213.x.0/24.
   */
  constructor(
    private readonly root: string,
    private readonly opts: { tcpPort?: number; subnet?: number; name?: string; tls?: { ca: string; cert: string; key: string } } = {},
  ) {
    this.socket = join(root, 'docker.sock');
    this.docker = new Dockerode({ socketPath: this.socket });
    this.bridge = `${opts.name ?? 'gtest'}${process.pid % 100_000}`;
  }

  /** The bridge this engine owns (a name of its own: docker0 is the machine engine's). */
  readonly bridge: string;

  /** Its TCP address (DOCKER_HOST form), when it listens on one. */
  get tcpHost(): string | null {
    return this.opts.tcpPort ? `tcp://127.0.0.1:${this.opts.tcpPort}` : null;
  }

  get logPath(): string {
    return join(this.root, 'dockerd.log');
  }

  /** Starts dockerd and waits (at most 60 s) until it answers. */
  async start(): Promise<void> {
    if (this.proc) throw new Error('the second engine is already running');
    mkdirSync(join(this.root, 'data'), { recursive: true });
    mkdirSync(join(this.root, 'exec'), { recursive: true });
    // its bridge, made here: dockerd takes an existing one by name and leaves docker0 alone
    try {
      execFileSync('ip', ['link', 'show', this.bridge], { stdio: 'ignore' });
    } catch {
      execFileSync('ip', ['link', 'add', this.bridge, 'type', 'bridge'], { stdio: 'ignore' });
      execFileSync('ip', ['addr', 'add', `10.213.${this.opts.subnet ?? 77}.1/24`, 'dev', this.bridge], { stdio: 'ignore' });
      execFileSync('ip', ['link', 'set', this.bridge, 'up'], { stdio: 'ignore' });
    }
    const log = openSync(this.logPath, 'a');
    const proc = spawn(
      'dockerd',
      [
        '--data-root', join(this.root, 'data'),
        '--exec-root', join(this.root, 'exec'),
        '--pidfile', join(this.root, 'dockerd.pid'),
        '--host', `unix://${this.socket}`,
        ...(this.opts.tcpPort ? ['--host', `tcp://127.0.0.1:${this.opts.tcpPort}`] : []),
        ...(this.opts.tls ? ['--tlsverify', '--tlscacert', this.opts.tls.ca, '--tlscert', this.opts.tls.cert, '--tlskey', this.opts.tls.key] : []),
        '--live-restore',
        '--bridge', this.bridge,
        '--iptables=false',
        '--ip6tables=false',
        '--cgroup-parent', 'gauntlet-test-engine',
      ],
      { stdio: ['ignore', log, log], detached: true },
    );
    closeSync(log);
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    proc.once('exit', () => {
      if (this.proc === proc) this.proc = null;
    });
    for (let i = 0; i < 600; i++) {
      if (!this.proc) throw new Error(`the second dockerd exited at start; its log:\n${this.tail()}`);
      try {
        await this.docker.ping();
        return;
      } catch {
        await clock.sleep(100);
      }
    }
    throw new Error(`the second dockerd did not answer within 60 s; its log:\n${this.tail()}`);
  }

  /** SIGTERM and wait for it to exit (live-restore: its containers keep running); SIGKILL after 30 s. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.pid === undefined) return;
    proc.kill('SIGTERM');
    const done = await Promise.race([this.exited.then(() => true), clock.sleep(30_000).then(() => false)]);
    if (!done) {
      proc.kill('SIGKILL');
      await this.exited;
    }
    this.proc = null;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Removes every container of this engine, stops it (and its containerd) and deletes its folders. */
  async destroy(): Promise<void> {
    if (this.proc) {
      try {
        const all = await this.docker.listContainers({ all: true });
        await Promise.all(all.map((c) => this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
      } catch {
        // the engine is not answering: its containers go with it below
      }
    }
    await this.stop();
    // its managed containerd outlives a live-restore stop: end it too
    try {
      const pid = Number(readFileSync(join(this.root, 'exec', 'containerd', 'containerd.pid'), 'utf8'));
      if (pid > 0) process.kill(pid, 'SIGTERM');
    } catch {
      // none
    }
    // dockerd bind-mounts its data root onto itself and its default netns under its exec root:
    // unmounted (deepest first) before the folders can go
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => m === this.root || m.startsWith(`${this.root}/`))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    rmSync(this.root, { recursive: true, force: true });
    try {
      execFileSync('ip', ['link', 'del', this.bridge], { stdio: 'ignore' });
    } catch {
      // gone
    }
  }

  private tail(): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '(no log)';
    }
  }
}
