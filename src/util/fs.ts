// File-system paths given by users (--db, --reports): created one folder at a time, so a path
// the file system refuses fails at once with a sentence naming it (Node's recursive mkdir spins
// on some, e.g. under /proc), and a file standing where a folder should be is named as such.
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { GauntletError } from '../errors.js';

/** What an errno means, in words. */
function reason(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'ENOTDIR':
      return 'a part of it is a file, not a folder';
    case 'ENOENT':
      return 'the file system does not let a folder be created there';
    case 'EEXIST':
      return 'a file of that name is in the way';
    default:
      return `${err.code ?? 'error'}: ${err.message}`;
  }
}

/** The nearest existing ancestor of `path` (itself if it exists). */
function existingAncestor(path: string): string {
  let p = resolve(path);
  for (;;) {
    try {
      statSync(p);
      return p;
    } catch {
      const up = dirname(p);
      if (up === p) return p;
      p = up;
    }
  }
}

/**
 * Checks, creating nothing, that `dir` is a folder or could be one: its nearest existing
 * ancestor is a folder this process may write in.
 */
export function checkDir(dir: string, what: string): { target: string; base: string } {
  const target = resolve(dir);
  const base = existingAncestor(target);
  if (!statSync(base).isDirectory()) {
    throw new GauntletError('GAUNTLET_PATH_UNUSABLE', [what, dir, base === target ? 'is a file, not a folder' : `${base} is a file, not a folder`]);
  }
  try {
    accessSync(base, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new GauntletError('GAUNTLET_PATH_UNUSABLE', [what, dir, `cannot write in ${base}: ${reason(err as NodeJS.ErrnoException)}`], { cause: err });
  }
  return { target, base };
}

/**
 * Makes sure `dir` is a writable folder, creating what is missing; `what` names it in errors
 * ("reports folder", "database folder"). Throws GAUNTLET_PATH_UNUSABLE (exit 2) with the reason.
 */
export function ensureDir(dir: string, what: string): void {
  const { target, base } = checkDir(dir, what);
  // Create each missing component in turn: one mkdir each, no retry loop.
  const missing: string[] = [];
  for (let p = target; p !== base; p = dirname(p)) missing.unshift(p);
  for (const p of missing) {
    try {
      mkdirSync(p);
    } catch (err) {
      throw new GauntletError('GAUNTLET_PATH_UNUSABLE', [what, dir, `cannot create ${p}: ${reason(err as NodeJS.ErrnoException)}`], { cause: err });
    }
  }
  try {
    accessSync(target, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new GauntletError('GAUNTLET_PATH_UNUSABLE', [what, dir, `cannot write there: ${reason(err as NodeJS.ErrnoException)}`], { cause: err });
  }
}

/** Describes an errno from writing `path` in words (for errors that reach the user). */
export function pathProblem(err: unknown): string {
  return reason(err as NodeJS.ErrnoException);
}
