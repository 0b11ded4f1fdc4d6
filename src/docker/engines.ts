// The Docker engines a plan's targets live on. Targets name no engine by default: they are on the
// engine DOCKER_HOST names (or the local socket). A plan can name others — a rack's engine over
// TCP with TLS, or over SSH — and put targets on them:
//
//   engines:
//     - { name: rack-b, host: "tcp://10.0.0.5:2376", tls: { ca: ca.pem, cert: cert.pem, key: key.pem } }
//   targets:
//     - { name: node-3, container: vllm-3, engine: rack-b }
//
// Each fault goes to its node's engine. What a fault does on the node's host (signals, /proc,
// entering a network namespace) is done on this machine for an engine on a local socket, and on
// the engine's own host, through an agent container, for any other (src/fault/host-access.ts).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { knownHostsVerifier } from './known-hosts.js';
import Docker from 'dockerode';
import { GauntletError } from '../errors.js';
import { withDeadlines } from './deadline.js';

/** An engine as a plan (and the fault ledger, to revert without the plan) names it. */
export interface EngineSpec {
  name: string;
  /** DOCKER_HOST form: unix:///path, tcp://host:port, ssh://user@host[:port]. */
  host: string;
  /** Client certificate and the CA that signed the engine's (files; TCP only). */
  tls?: { ca: string; cert: string; key: string };
  /** SSH only: the private key (default: the ssh agent at SSH_AUTH_SOCK). */
  identity_file?: string;
  /** SSH only: the host's key must be listed here (default ~/.ssh/known_hosts). */
  known_hosts_file?: string;
}

export type EngineAddress =
  | { kind: 'unix'; socketPath: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'ssh'; host: string; port: number; user: string };

/** Parses an engine's host; a string saying what is wrong when it cannot. */
export function parseEngineHost(host: string): EngineAddress | string {
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    if (!socketPath.startsWith('/')) return 'expected unix:///absolute/path';
    return { kind: 'unix', socketPath };
  }
  let url: URL;
  try {
    url = new URL(host);
  } catch {
    return 'expected unix:///path, tcp://host:port or ssh://user@host[:port]';
  }
  if (url.pathname !== '' && url.pathname !== '/') return `expected no path after the host and port (${url.pathname})`;
  const name = url.hostname.replace(/^\[|\]$/g, '');
  if (!/^[A-Za-z0-9.:_-]+$/.test(name) || name.startsWith('-')) return `expected a host name or address (${url.hostname})`;
  if (url.protocol === 'tcp:') {
    if (!url.port) return 'expected a port (tcp://host:2376)';
    if (url.username || url.password) return 'a tcp:// engine takes no user (TLS certificates authenticate it)';
    return { kind: 'tcp', host: name, port: Number(url.port) };
  }
  if (url.protocol === 'ssh:') {
    if (!url.username || !/^[A-Za-z0-9._][A-Za-z0-9._-]*$/.test(url.username)) return 'expected ssh://user@host[:port]';
    if (url.password) return 'no password in an engine address: use an SSH key (identity_file, or the ssh agent)';
    return { kind: 'ssh', host: name, port: url.port ? Number(url.port) : 22, user: url.username };
  }
  return `expected unix://, tcp:// or ssh:// (not ${url.protocol}//)`;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';
}

/** Problems with an engine spec beyond its address's syntax (for the plan's checks). */
export function engineSpecProblems(spec: EngineSpec): { path: string; message: string }[] {
  const addr = parseEngineHost(spec.host);
  if (typeof addr === 'string') return [{ path: 'host', message: addr }];
  const out: { path: string; message: string }[] = [];
  if (spec.tls && addr.kind !== 'tcp') out.push({ path: 'tls', message: `tls is for tcp:// engines; ${addr.kind}:// is ${addr.kind === 'ssh' ? 'encrypted by SSH' : 'a local socket'}` });
  if (spec.identity_file && addr.kind !== 'ssh') out.push({ path: 'identity_file', message: 'identity_file is for ssh:// engines' });
  if (spec.known_hosts_file && addr.kind !== 'ssh') out.push({ path: 'known_hosts_file', message: 'known_hosts_file is for ssh:// engines' });
  if (addr.kind === 'tcp' && !spec.tls && !isLoopback(addr.host)) {
    out.push({ path: 'tls', message: `an engine on tcp://${addr.host} without TLS gives root on that host to anyone who can reach the port: give tls (ca, cert, key), or reach it over ssh://` });
  }
  return out;
}

function readPem(what: string, path: string, engine: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new GauntletError('GAUNTLET_DOCKER_UNAVAILABLE', [`engine ${engine}`, `cannot read its TLS ${what} ${path}: ${(err as Error).message}`]);
  }
}

/** Why an engine's SSH host key was refused (by engine name), for the error a refused connection gives. */
const refused = new Map<string, string>();

/** The reason the last SSH connection to this engine was refused by host key checking, if it was. */
export function hostKeyRefusal(name: string): string | undefined {
  return refused.get(name);
}

/** A Docker client for the engine (every call that does not stream has a deadline). */
export function engineClient(spec: EngineSpec): Docker {
  const addr = parseEngineHost(spec.host);
  if (typeof addr === 'string') throw new GauntletError('GAUNTLET_DOCKER_UNAVAILABLE', [`engine ${spec.name}`, addr]);
  if (addr.kind === 'unix') return withDeadlines(new Docker({ socketPath: addr.socketPath }));
  if (addr.kind === 'tcp') {
    if (!spec.tls) return withDeadlines(new Docker({ protocol: 'http', host: addr.host, port: addr.port }));
    return withDeadlines(
      new Docker({
        protocol: 'https',
        host: addr.host,
        port: addr.port,
        ca: readPem('CA', spec.tls.ca, spec.name),
        cert: readPem('certificate', spec.tls.cert, spec.name),
        key: readPem('key', spec.tls.key, spec.name),
      }),
    );
  }
  // docker-modem over ssh2: `docker system dial-stdio` on the remote host (its docker CLI). The
  // host's key must be known (ssh2 checks none by itself).
  const knownHosts = spec.known_hosts_file ?? join(homedir(), '.ssh', 'known_hosts');
  const sshOptions: Record<string, unknown> = {
    hostVerifier: knownHostsVerifier(knownHosts, addr.host, addr.port, (why) => {
      refused.set(spec.name, why);
    }),
  };
  if (spec.identity_file) sshOptions.privateKey = readPem('SSH key', spec.identity_file, spec.name);
  else if (process.env.SSH_AUTH_SOCK) sshOptions.agent = process.env.SSH_AUTH_SOCK;
  return withDeadlines(new Docker({ protocol: 'ssh', host: addr.host, port: addr.port, username: addr.user, sshOptions } as Docker.DockerOptions));
}

/**
 * Where a container's published ports on this engine are reached from here: null for an engine
 * on this machine (its bindings say), the engine's host otherwise.
 */
export function engineHostAddress(spec: EngineSpec | null): string | null {
  if (!spec) return null;
  const addr = parseEngineHost(spec.host);
  return typeof addr === 'string' || addr.kind === 'unix' ? null : addr.host;
}

/** True when the engine runs on this machine (a local socket): host work is done from here. */
export function engineIsLocal(spec: EngineSpec | null): boolean {
  if (!spec) return !process.env.DOCKER_HOST || process.env.DOCKER_HOST.startsWith('unix://');
  const addr = parseEngineHost(spec.host);
  return typeof addr !== 'string' && addr.kind === 'unix';
}

/** DOCKER_HOST's engine, as messages name it. */
export function defaultEngineLabel(): string {
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

/** The name a DOCKER_HOST engine has in the ledger and in messages. */
export const DOCKER_HOST_ENGINE = 'DOCKER_HOST';

/**
 * DOCKER_HOST's engine as a spec when it is another machine's (null for a socket here): TLS as
 * the docker CLI and dockerode take it (DOCKER_TLS_VERIFY=1, or port 2376, with ca.pem, cert.pem
 * and key.pem in DOCKER_CERT_PATH, default ~/.docker); over SSH the host key checked against
 * ~/.ssh/known_hosts. The ledger records it, so a revert reaches that engine whatever the
 * reverting process's DOCKER_HOST.
 */
export function defaultEngineSpec(env: NodeJS.ProcessEnv = process.env): EngineSpec | null {
  const host = env.DOCKER_HOST;
  if (!host || host.startsWith('unix://') || host.startsWith('npipe://')) return null;
  const addr = parseEngineHost(host);
  if (typeof addr === 'string') return null;
  if (addr.kind === 'tcp' && ((env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== '' && env.DOCKER_TLS_VERIFY !== '0') || addr.port === 2376)) {
    const dir = env.DOCKER_CERT_PATH || join(homedir(), '.docker');
    return { name: DOCKER_HOST_ENGINE, host, tls: { ca: join(dir, 'ca.pem'), cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } };
  }
  return { name: DOCKER_HOST_ENGINE, host };
}

/** One engine's identity (map keys, ledger rows): its spec, every field. */
export function engineKey(spec: EngineSpec): string {
  return JSON.stringify({ name: spec.name, host: spec.host, tls: spec.tls ?? null, identity_file: spec.identity_file ?? null, known_hosts_file: spec.known_hosts_file ?? null });
}

/** How the engine is named in messages and reports. */
export function engineLabel(spec: EngineSpec | null): string {
  return spec ? `${spec.name} (${spec.host})` : defaultEngineLabel();
}

/** A plan's engine with its files made absolute (relative to the plan's folder). */
export function engineSpecOf(e: EngineSpec, dir: string): EngineSpec {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p));
  return {
    name: e.name,
    host: e.host,
    ...(e.tls ? { tls: { ca: abs(e.tls.ca), cert: abs(e.tls.cert), key: abs(e.tls.key) } } : {}),
    ...(e.identity_file ? { identity_file: abs(e.identity_file) } : {}),
    ...(e.known_hosts_file ? { known_hosts_file: abs(e.known_hosts_file) } : {}),
  };
}
