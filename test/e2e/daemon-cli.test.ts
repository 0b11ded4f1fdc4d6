// The CLI beside a running daemon, as a user runs them: `gauntlet daemon` in its own process,
// then `gauntlet runs` answered by the daemon, `gauntlet run` refused on the database the daemon
// keeps (no second Gauntlet on the same targets), `gauntlet run --via-daemon` sent to it and
// followed to its report, and SIGTERM ending the daemon cleanly (its daemon.json gone).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_FILE } from '../../src/daemon/client.js';
import { runCli, startCli, until, type CliRun } from '../helpers/cli.js';
import { startSimProcess, type SimProcess } from '../helpers/sim-process.js';
import { tempDir } from '../helpers/tmp.js';

describe('the CLI and a running daemon', () => {
  const dir = tempDir();
  const data = join(dir, 'data');
  const db = join(data, 'gauntlet.db');
  let sim: SimProcess;
  let daemon: CliRun;

  beforeAll(async () => {
    sim = await startSimProcess(['--gpus', '1', '--ttft-ms', '10', '--itl-ms', '2', '--load-ms', '0']);
    writeFileSync(join(dir, 'gauntlet.yaml'), `listen: { port: 0 }\ndata_dir: data\nreports_dir: reports\n`);
    writeFileSync(join(dir, 'short.yaml'), `name: short\nduration: 3s\ntargets: [{ name: sim, endpoint: "${sim.endpoint}" }]\nload: { rate: 5, api: chat, stream: true, prompt_tokens: 16, max_tokens: 4, model: sim-llama }\nprobes: { interval: 500ms }\ntelemetry: { interval: 0s }\ngates: { mtbf_lower_bound: false, availability: false, ttft: false, tpot: false }\n`);
    daemon = startCli(['daemon', '--config', join(dir, 'gauntlet.yaml')]);
    await until('the daemon to say where it listens', () => existsSync(join(data, DAEMON_FILE)) || daemon.proc.exitCode !== null, 30_000);
    expect(daemon.proc.exitCode, daemon.stderr()).toBeNull();
  }, 60_000);

  afterAll(() => {
    if (daemon.proc.exitCode === null) daemon.proc.kill('SIGKILL');
    sim.kill();
  });

  it('runs, run (refused), run --via-daemon, then SIGTERM', async () => {
    const empty = await runCli(['runs', '--db', db]);
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.stdout).toMatch(/from the daemon, pid \d+/);

    const refused = await runCli(['run', join(dir, 'short.yaml'), '--db', db, '--reports', join(dir, 'reports')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/GAUNTLET_DAEMON_RUNNING: a daemon runs on .*: pid \d+ at http:\/\/127\.0\.0\.1:\d+; send the run to it with --via-daemon/);

    const via = await runCli(['run', join(dir, 'short.yaml'), '--db', db, '--via-daemon']);
    expect(via.code, `${via.stdout}\n${via.stderr}`).toBe(0);
    expect(via.stderr).toMatch(/sent to the daemon \(pid \d+, http:\/\/127\.0\.0\.1:\d+\): run short-\S+, running/);
    const id = /^run (short-\S+): completed/m.exec(via.stdout)?.[1];
    expect(id, via.stdout).toBeDefined();
    // the report is the daemon's, in its reports folder
    expect(via.stdout).toContain(join(dir, 'reports', id as string, 'report.html'));
    expect(JSON.parse(readFileSync(join(dir, 'reports', id as string, 'report.json'), 'utf8')).requests.total).toBeGreaterThan(5);
    const listed = await runCli(['runs', '--db', db]);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+short\\s+completed`));

    daemon.proc.kill('SIGTERM');
    expect(await daemon.exit).toBe(0);
    expect(existsSync(join(data, DAEMON_FILE))).toBe(false);
    // with the daemon gone, the CLI reads the database itself
    const after = await runCli(['runs', '--db', db]);
    expect(after.stdout).not.toMatch(/from the daemon/);
    expect(after.stdout).toMatch(new RegExp(`${id}\\s+short\\s+completed`));
    const noDaemon = await runCli(['run', join(dir, 'short.yaml'), '--db', db, '--via-daemon']);
    expect(noDaemon.code).toBe(2);
    expect(noDaemon.stderr).toMatch(/GAUNTLET_DAEMON_NOT_RUNNING/);
  }, 90_000);
});
