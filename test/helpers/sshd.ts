// An sshd of the test's own on 127.0.0.1, standing in for a remote load host: its own host key,
// one client key authorised for the user running the tests, a known_hosts file naming it, no
// passwords. The machine's own sshd (if any) is not touched. Every wait is bounded.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../src/util/ports.js';

const run = promisify(execFile);

export const SSHD = '/usr/sbin/sshd';

/** Whether this machine can run the test's sshd (OpenSSH's server and client). */
export function sshdAvailable(): boolean {
  if (!existsSync(SSHD)) return false;
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
  } catch (err) {
    // ssh-keygen -? exits non-zero with its usage: present all the same
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
  }
  return true;
}

export class TestSshd {
  private constructor(
    readonly port: number,
    readonly user: string,
    readonly identityFile: string,
    readonly knownHostsFile: string,
    private readonly proc: ChildProcess,
    private readonly logPath: string,
  ) {}

  /** ssh://user@127.0.0.1:port */
  get url(): string {
    return `ssh://${this.user}@127.0.0.1:${this.port}`;
  }

  static async start(dir: string): Promise<TestSshd> {
    mkdirSync(dir, { recursive: true });
    // sshd's privilege separation needs this folder (Debian's package makes it at boot only)
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const hostKey = join(dir, 'host_key');
    const clientKey = join(dir, 'client_key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
    const authorized = join(dir, 'authorized_keys');
    writeFileSync(authorized, readFileSync(`${clientKey}.pub`), { mode: 0o600 });
    const port = await freePort();
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${port} ${readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ')}\n`);
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorized}`,
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin prohibit-password',
        'StrictModes no',
        'UsePAM no',
        'AllowTcpForwarding yes',
        'X11Forwarding no',
        'PrintMotd no',
        '',
      ].join('\n'),
    );
    const logPath = join(dir, 'sshd.log');
    const proc = spawn(SSHD, ['-D', '-e', '-f', config, '-E', logPath], { stdio: 'ignore' });
    const user = userInfo().username;
    const sshd = new TestSshd(port, user, clientKey, knownHosts, proc, logPath);
    // bounded: until a login runs a command
    for (let i = 0; i < 100; i++) {
      if (proc.exitCode !== null) throw new Error(`the test's sshd exited (${proc.exitCode}): ${sshd.log()}`);
      try {
        await run('ssh', ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=2', '-o', `UserKnownHostsFile=${knownHosts}`, '-i', clientKey, '-o', 'IdentitiesOnly=yes', '-p', String(port), `${user}@127.0.0.1`, '--', 'true'], { timeout: 5000 });
        return sshd;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    proc.kill('SIGKILL');
    throw new Error(`the test's sshd did not let a login in within ~10 s: ${sshd.log()}`);
  }

  log(): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-10).join('\n');
    } catch {
      return '(no log)';
    }
  }

  stop(): void {
    this.proc.kill('SIGTERM');
  }
}
