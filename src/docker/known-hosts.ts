// Host key checking for Docker engines reached over SSH (docker-modem's ssh2 transport has none
// of its own): the engine host's key must be in a known_hosts file — OpenSSH's format, plain or
// hashed (`ssh-keygen -H`) names, `[host]:port` for ports other than 22, `*`/`?` patterns,
// `@revoked` lines — as `ssh -o StrictHostKeyChecking=yes` would require.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface KnownKey {
  revoked: boolean;
  keyType: string;
  key: string;
}

/** The name OpenSSH looks a host up by. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function patternMatches(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

function hostsMatch(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const p of field.split(',')) {
    if (p.startsWith('!')) {
      if (patternMatches(p.slice(1), name)) return false;
    } else if (patternMatches(p, name)) matched = true;
  }
  return matched;
}

/** The keys a known_hosts text holds for a host. */
export function knownKeys(text: string, host: string, port: number): KnownKey[] {
  const name = knownHostName(host, port);
  const out: KnownKey[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0]?.startsWith('@')) {
      const marker = fields.shift();
      if (marker === '@revoked') revoked = true;
      else continue; // @cert-authority: certificates are not supported here
    }
    const [hosts, keyType, key] = fields;
    if (!hosts || !keyType || !key) continue;
    if (hostsMatch(hosts, name)) out.push({ revoked, keyType, key });
  }
  return out;
}

/**
 * A verifier for ssh2's hostVerifier: true only for a key the file lists for the host (and
 * does not revoke). `onRefuse` is told why a key was refused.
 */
export function knownHostsVerifier(file: string, host: string, port: number, onRefuse: (why: string) => void = () => undefined): (key: Buffer) => boolean {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const why = `cannot read the known_hosts file ${file}: ${(err as Error).message}`;
    return () => {
      onRefuse(why);
      return false;
    };
  }
  const keys = knownKeys(text, host, port);
  return (key: Buffer) => {
    const b64 = key.toString('base64');
    const match = keys.find((k) => k.key === b64);
    if (match?.revoked) onRefuse(`the host key of ${knownHostName(host, port)} is marked @revoked in ${file}`);
    else if (!match) onRefuse(keys.length === 0 ? `${knownHostName(host, port)} is not in ${file} (add its key: ssh-keyscan -p ${port} ${host} >> ${file})` : `the host key of ${knownHostName(host, port)} does not match ${file}: refused (a different host, or a changed key)`);
    return match !== undefined && !match.revoked;
  };
}
