import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { knownHostsVerifier, knownKeys } from '../../../src/docker/known-hosts.js';
import { tempDir } from '../../helpers/tmp.js';

const KEY_A = 'AAAAC3NzaC1lZDI1NTE5AAAAIB0Cv8sVn1Dq6WqDqPj3wJ6Jtq1m0l7yqX0b7s6bqDqP';
const KEY_B = 'AAAAC3NzaC1lZDI1NTE5AAAAIKm8Tg9o1m5s0hM9nq8Yb4Jt2a2vJc6oYtF7wZ3cLx9Q';

describe('known_hosts for engines over SSH', () => {
  it('finds a host by plain name, [host]:port, pattern and negation; @revoked marks a key', () => {
    const text = [
      '# comment',
      `rack-b,10.0.0.5 ssh-ed25519 ${KEY_A}`,
      `[10.0.0.6]:2222 ssh-ed25519 ${KEY_B}`,
      `*.lab,!bad.lab ssh-ed25519 ${KEY_B}`,
      `@revoked 10.0.0.9 ssh-ed25519 ${KEY_A}`,
    ].join('\n');
    expect(knownKeys(text, '10.0.0.5', 22).map((k) => k.key)).toEqual([KEY_A]);
    expect(knownKeys(text, '10.0.0.5', 2222)).toEqual([]); // another port is another host
    expect(knownKeys(text, '10.0.0.6', 2222).map((k) => k.key)).toEqual([KEY_B]);
    expect(knownKeys(text, 'gpu1.lab', 22)).toHaveLength(1);
    expect(knownKeys(text, 'bad.lab', 22)).toEqual([]);
    expect(knownKeys(text, '10.0.0.9', 22)).toEqual([{ revoked: true, keyType: 'ssh-ed25519', key: KEY_A }]);
  });

  it('accepts only the listed key; says why it refuses; reads hashed names (ssh-keygen -H)', () => {
    const dir = tempDir();
    const file = join(dir, 'known_hosts');
    writeFileSync(file, `[127.0.0.1]:2200 ssh-ed25519 ${KEY_A}\n@revoked 10.0.0.9 ssh-ed25519 ${KEY_B}\n`);
    const why: string[] = [];
    const v = knownHostsVerifier(file, '127.0.0.1', 2200, (w) => why.push(w));
    expect(v(Buffer.from(KEY_A, 'base64'))).toBe(true);
    expect(v(Buffer.from(KEY_B, 'base64'))).toBe(false);
    expect(why.at(-1)).toMatch(/does not match .*known_hosts: refused/);
    expect(knownHostsVerifier(file, '10.0.0.7', 22, (w) => why.push(w))(Buffer.from(KEY_A, 'base64'))).toBe(false);
    expect(why.at(-1)).toMatch(/10\.0\.0\.7 is not in .*ssh-keyscan/);
    expect(knownHostsVerifier(file, '10.0.0.9', 22, (w) => why.push(w))(Buffer.from(KEY_B, 'base64'))).toBe(false);
    expect(why.at(-1)).toMatch(/@revoked/);
    expect(knownHostsVerifier(join(dir, 'none'), 'h', 22, (w) => why.push(w))(Buffer.from(KEY_A, 'base64'))).toBe(false);
    expect(why.at(-1)).toMatch(/cannot read the known_hosts file/);
    // hashed by OpenSSH itself
    try {
      execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    } catch {
      return; // no ssh-keygen here: the plain names above still stand
    }
    expect(knownKeys(readFileSync(file, 'utf8'), '127.0.0.1', 2200).map((k) => k.key)).toEqual([KEY_A]);
  });
});
