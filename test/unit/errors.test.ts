import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, GauntletError, errorMessage } from '../../src/errors.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('error registry', () => {
  it('every code is documented in README.md, and README documents no code that does not exist', () => {
    // The rows of the README's error-code table.
    const documented = new Set([...readme.matchAll(/^\| `(GAUNTLET_[A-Z0-9_]+)` \|/gm)].map((m) => m[1] as string));
    expect(documented.size).toBeGreaterThan(5);
    for (const code of Object.keys(ERRORS)) expect(documented, code).toContain(code);
    for (const code of documented) expect(Object.keys(ERRORS), code).toContain(code);
  });

  it('codes follow GAUNTLET_<AREA>_<WHAT> and messages fill their placeholders', () => {
    for (const code of Object.keys(ERRORS)) expect(code).toMatch(/^GAUNTLET_[A-Z0-9]+_[A-Z0-9_]+$/);
    const e = new GauntletError('GAUNTLET_RUN_NOT_FOUND', ['r1', 'x.db']);
    expect(e.message).toBe('no run with id r1 in x.db');
    expect(e.status).toBe(404);
  });

  it('errorMessage keeps codes and causes', () => {
    const inner = Object.assign(new Error('connect refused'), { code: 'ECONNREFUSED' });
    expect(errorMessage(new Error('probe failed', { cause: inner }))).toBe('probe failed (ECONNREFUSED: connect refused)');
  });
});
