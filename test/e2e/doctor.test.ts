// gauntlet doctor on this machine, as a user runs it: Docker is reported ok, and its netem and
// iptables verdicts agree with the same probes run here independently.
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { DoctorCheck } from '../../src/doctor.js';
import { runCli } from '../helpers/cli.js';
import { describeDocker, docker } from '../helpers/docker.js';

interface DoctorJson {
  ok: boolean;
  checks: DoctorCheck[];
}

/** Exit status of a program run without a shell, bounded in time. */
function exitOf(argv: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(argv[0] as string, argv.slice(1), { timeout: 10_000, encoding: 'utf8' });
  return { status: r.error ? null : r.status, stderr: r.stderr ?? '' };
}

describeDocker('gauntlet doctor on this host', () => {
  it('--json: Docker ok with its version; netem and iptables as the kernel says; exit code from the required checks', async () => {
    const r = await runCli(['doctor', '--json']);
    const report = JSON.parse(r.stdout) as DoctorJson;
    const byName = new Map(report.checks.map((c) => [c.name, c]));

    const d = byName.get('docker');
    expect(d?.status).toBe('ok');
    expect(d?.required).toBe(true);
    expect(d?.detail).toContain(`${docker.reason} (API `);

    // The same probe, run here: a netem qdisc on lo of a throwaway network namespace.
    const netem = exitOf(['unshare', '--net', '--', 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']);
    expect(byName.get('netem')?.status).toBe(netem.status === 0 ? 'ok' : 'missing');
    if (/Specified qdisc kind is unknown/.test(netem.stderr)) expect(byName.get('netem')?.detail).toContain('no netem qdisc');

    const ipt = exitOf(['unshare', '--net', '--', 'iptables', '-w', '5', '-A', 'INPUT', '-m', 'statistic', '--mode', 'random', '--probability', '0.5', '-j', 'DROP']);
    expect(byName.get('iptables')?.status).toBe(ipt.status === 0 ? 'ok' : 'missing');

    const missingRequired = report.checks.filter((c) => c.required && c.status === 'missing');
    expect(report.ok).toBe(missingRequired.length === 0);
    expect(r.code).toBe(report.ok ? 0 : 1);
    for (const c of report.checks) if (c.status !== 'ok') expect(c.fix, `${c.name} has a fix`).toBeTruthy();
  });

  it('text: one line per check in the status column, then the summary', async () => {
    const r = await runCli(['doctor']);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(9);
    expect(lines[0]).toMatch(/^ok {7}docker: engine \S+ \(API [\d.]+\)/);
    for (const l of lines.slice(0, 8)) expect(l).toMatch(/^(ok {7}|MISSING {2}|warn {5})[a-z0-9-]+: /);
    expect(lines[8]).toMatch(/^doctor: \d+ ok, \d+ warn, \d+ missing; /);
    expect(r.stderr).toBe('');
  });

  it('changes nothing on the host: no probe rule left behind, lo\'s qdisc as it was', async () => {
    const lo = (): string => execFileSync('tc', ['qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8', timeout: 10_000 });
    const before = lo();
    await runCli(['doctor']);
    expect(lo()).toBe(before);
    expect(execFileSync('iptables-save', [], { encoding: 'utf8', timeout: 10_000 })).not.toContain('gauntlet:probe');
  });
});

describe('gauntlet doctor without an engine', () => {
  it('reports Docker missing with the fix, and exits 1', async () => {
    const r = await runCli(['doctor'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^MISSING {2}docker: engine not reachable at unix:\/\/\/nonexistent\/docker\.sock: .* — fix: start the engine/m);
    expect(r.stdout).toContain('required and missing: docker');
  });
});
