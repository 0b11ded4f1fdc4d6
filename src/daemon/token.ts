// The daemon's API token: generated on first start into the data folder (mode 0600, 32 random
// bytes, base64url), read on every later start, and compared in constant time. A token file
// others can read is refused rather than used: whoever can read it can stop runs and inject faults.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GauntletError } from '../errors.js';

export const TOKEN_FILE = 'api-token';

/** The token in `dir` (created there, mode 0600, if there is none yet) and whether it was just made. */
export function ensureToken(dir: string): { token: string; path: string; created: boolean } {
  const path = join(dir, TOKEN_FILE);
  let fd: number;
  try {
    // O_EXCL: two daemons starting at once never both write a token
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { token: readToken(path), path, created: false };
  }
  const token = randomBytes(32).toString('base64url');
  try {
    writeSync(fd, `${token}\n`);
  } finally {
    closeSync(fd);
  }
  return { token, path, created: true };
}

function readToken(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if ((st.mode & 0o077) !== 0) {
      throw new GauntletError('GAUNTLET_TOKEN_UNSAFE', [path, `its mode is ${(st.mode & 0o777).toString(8)}, readable by others than its owner; chmod 600 it (or delete it for a new one)`]);
    }
    const token = readFileSync(fd, 'utf8').trim();
    if (token.length < 16) throw new GauntletError('GAUNTLET_TOKEN_UNSAFE', [path, 'it holds no token (fewer than 16 characters); delete it and a new one is made at the next start']);
    return token;
  } finally {
    closeSync(fd);
  }
}

/** Whether `given` is the token, in time that does not depend on where they differ. */
export function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  // equal-length digests: timingSafeEqual needs equal lengths, and the length of `given` says nothing
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** The token a request carries: `Authorization: Bearer <token>`, or the live page's cookie. */
export function requestToken(headers: { authorization?: string | undefined; cookie?: string | undefined }): string | undefined {
  const auth = headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : undefined;
  }
  const cookie = headers.cookie;
  if (cookie) {
    for (const part of cookie.split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k !== 'gauntlet_token') continue;
      try {
        return decodeURIComponent(v.join('='));
      } catch {
        return undefined; // a malformed cookie is no token (401), not an error
      }
    }
  }
  return undefined;
}
