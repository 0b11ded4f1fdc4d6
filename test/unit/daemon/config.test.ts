// The daemon's config is checked as a plan is: every problem at once, at its line, with "did you
// mean"; each schedule's cron expression, time zone and plan checked at start.
import { chmodSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultDaemonConfig, loadDaemonConfig, parseDaemonConfig } from '../../../src/daemon/config.js';
import { ensureToken, requestToken, tokenMatches } from '../../../src/daemon/token.js';
import { isGauntletError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/tmp.js';

const dir = tempDir();
const plan = join(dir, 'nightly.yaml');
writeFileSync(plan, 'name: nightly\nduration: 1h\ntargets: [{ name: a, endpoint: "http://127.0.0.1:1" }]\nload: { rate: 1 }\n');
writeFileSync(join(dir, 'broken.yaml'), 'name: broken\nduration: 1h\ntargets: []\nload: { rate: 1 }\n');

function problems(text: string): string {
  try {
    parseDaemonConfig(text, 'gauntlet.yaml', dir);
  } catch (err) {
    if (isGauntletError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'valid';
}

describe('daemon config', () => {
  it('defaults: 127.0.0.1:7878, no schedules, paths from the config folder', () => {
    const c = defaultDaemonConfig(dir);
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 7878 });
    expect(c.schedules).toEqual([]);
    expect(c.data_dir).toBe(join(dir, '.gauntlet'));
    expect(c.public_routes).toEqual(['/health', '/metrics']);
  });

  it('a schedule: its plan found from the config folder, time zone and policy defaulted', () => {
    const c = parseDaemonConfig('schedules:\n  - { name: nightly, cron: "0 2 * * *", plan: nightly.yaml }\n', 'gauntlet.yaml', dir);
    expect(c.schedules).toEqual([{ name: 'nightly', cron: '0 2 * * *', timezone: 'UTC', plan: plan, when_busy: 'skip', enabled: true }]);
  });

  it('every problem at once, each at its line: unknown keys with did-you-mean, a bad cron, an unknown zone, a duplicate name, a plan that does not validate or is missing', () => {
    const text = [
      'listen: { host: 127.0.0.1, prot: 7878 }', // 1
      'schedules:', // 2
      '  - name: nightly', // 3
      '    cron: "61 2 * * *"', // 4
      '    timezone: Mars/Olympus', // 5
      '    plan: nightly.yaml', // 6
      '  - { name: nightly, cron: "0 3 * * *", plan: broken.yaml, when_busy: wait }', // 7
      '  - { name: other, cron: "0 4 * * *", plan: missing.yaml }', // 8
    ].join('\n');
    const out = problems(text);
    expect(out).toMatch(/^GAUNTLET_CONFIG_INVALID/);
    expect(out).toContain('gauntlet.yaml:1: listen.prot: unknown key; did you mean "port"?');
    expect(out).toMatch(/gauntlet\.yaml:4: schedules\[0\]\.cron: got "61 2 \* \* \*"; not a cron expression: minute "61"/);
    expect(out).toMatch(/gauntlet\.yaml:5: schedules\[0\]\.timezone: got "Mars\/Olympus"; expected an IANA time zone/);
    expect(out).toMatch(/gauntlet\.yaml:7: schedules\[1\]\.name: got "nightly"; schedule names must be unique/);
    expect(out).toMatch(/gauntlet\.yaml:7: schedules\[1\]\.when_busy: got "wait"/);
    expect(out).toMatch(/gauntlet\.yaml:7: schedules\[1\]\.plan: broken\.yaml: .*targets/);
    expect(out).toMatch(/gauntlet\.yaml:8: schedules\[2\]\.plan: missing\.yaml: .*ENOENT/);
  });

  it('not YAML, or not readable: said so', () => {
    expect(problems('schedules: [')).toMatch(/^GAUNTLET_CONFIG_YAML/);
    expect(() => loadDaemonConfig(join(dir, 'nope.yaml'))).toThrow(/cannot read daemon config .*ENOENT/);
  });
});

describe('API token', () => {
  it('is made once, mode 0600, and read back the same', () => {
    const d = mkdtempSync(join(dir, 'tok-'));
    const a = ensureToken(d);
    expect(a.created).toBe(true);
    expect(a.token.length).toBeGreaterThanOrEqual(40);
    expect(statSync(a.path).mode & 0o777).toBe(0o600);
    const b = ensureToken(d);
    expect(b).toMatchObject({ token: a.token, created: false });
  });

  it('a token file others can read is refused', () => {
    const d = mkdtempSync(join(dir, 'tok-'));
    const a = ensureToken(d);
    chmodSync(a.path, 0o644);
    expect(() => ensureToken(d)).toThrow(/GAUNTLET_TOKEN_UNSAFE|readable by others/);
    chmodSync(a.path, 0o600);
    writeFileSync(a.path, '\n');
    expect(() => ensureToken(d)).toThrow(/holds no token/);
  });

  it('matches only the token, and is read from a bearer header or the page cookie', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abd', 'abc')).toBe(false);
    expect(tokenMatches('', 'abc')).toBe(false);
    expect(tokenMatches(undefined, 'abc')).toBe(false);
    expect(requestToken({ authorization: 'Bearer s3cr3t' })).toBe('s3cr3t');
    expect(requestToken({ authorization: 'Basic s3cr3t' })).toBeUndefined();
    expect(requestToken({ cookie: 'a=1; gauntlet_token=s%2F3' })).toBe('s/3');
    expect(requestToken({})).toBeUndefined();
  });
});
