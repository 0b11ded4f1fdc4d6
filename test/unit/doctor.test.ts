// gauntlet doctor: each check built from facts, the line format, pass/fail, and runDoctor with
// a fake engine, host probe, /proc and k6 — nothing here depends on this host.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cgroupCheck,
  dockerCheck,
  doctorPassed,
  formatCheck,
  hogCheck,
  hogFacts,
  hostPidCheck,
  iptablesCheck,
  k6Check,
  netemCheck,
  nsenterCheck,
  runDoctor,
  summaryLine,
  type DoctorCheck,
  type DoctorDocker,
  type DoctorOptions,
  type ProcView,
} from '../../src/doctor.js';
import type { HostProbe, Verdict } from '../../src/fault/host.js';
import type { ExecResult } from '../../src/fault/netns.js';
import { tempDir } from '../helpers/tmp.js';

const yes: Verdict = { ok: true };
const noNetem: Verdict = { ok: false, reason: 'the kernel has no netem qdisc (module sch_netem)', fix: '`modprobe sch_netem`' };
const noIpt: Verdict = { ok: false, reason: 'iptables is not installed', fix: 'apt-get install iptables' };
const dir = tempDir();
const ID = 'bd4ce41c557c3f7830f7c475653b621daea9b9079dcef575100f8d624ab3df8c';

describe('formatCheck', () => {
  it('status column, name, detail; the fix only when not ok', () => {
    expect(formatCheck({ name: 'docker', status: 'ok', required: true, detail: 'engine 20.10.24 (API 1.41)' })).toBe('ok       docker: engine 20.10.24 (API 1.41)');
    expect(formatCheck({ name: 'netem', status: 'missing', required: false, detail: 'no netem', fix: 'modprobe sch_netem' })).toBe('MISSING  netem: no netem — fix: modprobe sch_netem');
    expect(formatCheck({ name: 'cgroup', status: 'warn', required: false, detail: 'v1', fix: 'nothing' })).toBe('warn     cgroup: v1 — fix: nothing');
  });
});

describe('pass/fail and the summary', () => {
  const c = (name: string, status: DoctorCheck['status'], required: boolean): DoctorCheck => ({ name, status, required, detail: 'x', ...(status === 'ok' ? {} : { fix: 'y' }) });

  it('passes when no required check is missing (optional ones and warnings do not count)', () => {
    const checks = [c('docker', 'ok', true), c('host-pid', 'warn', true), c('netem', 'missing', false), c('k6', 'missing', false)];
    expect(doctorPassed(checks)).toBe(true);
    expect(summaryLine(checks)).toBe('doctor: 1 ok, 1 warn, 2 missing; every required check passed: Gauntlet can run here (see the fixes above for what is optional)');
  });

  it('fails naming the required checks that are missing', () => {
    const checks = [c('docker', 'ok', true), c('nsenter', 'missing', true), c('host-pid', 'missing', true)];
    expect(doctorPassed(checks)).toBe(false);
    expect(summaryLine(checks)).toContain('required and missing: nsenter, host-pid');
  });
});

describe('the checks', () => {
  it('docker: version and API, or what to do', () => {
    expect(dockerCheck({ ok: true, version: '20.10.24', apiVersion: '1.41' }, 'unix:///var/run/docker.sock')).toMatchObject({ status: 'ok', required: true, detail: 'engine 20.10.24 (API 1.41) at unix:///var/run/docker.sock' });
    const down = dockerCheck({ ok: false, error: 'connect ENOENT /var/run/docker.sock' }, 'unix:///var/run/docker.sock');
    expect(down).toMatchObject({ status: 'missing', required: true, fix: expect.stringContaining('ensure-docker.sh') });
    expect(dockerCheck({ ok: false, error: 'connect EACCES /var/run/docker.sock' }, 'x').fix).toContain('root');
  });

  it('cgroup: v1 warns about thrashing and says what the oom fault does; no memory limit is missing; v2 is ok', () => {
    const v1 = cgroupCheck({ CgroupVersion: '1', CgroupDriver: 'cgroupfs', MemoryLimit: true, SwapLimit: true, OomKillDisable: true });
    expect(v1.status).toBe('warn');
    expect(v1.detail).toContain('cgroup v1 (cgroupfs driver), memory limits yes, swap limits yes');
    expect(v1.detail).toContain('thrash');
    expect(v1.detail).toContain('oom_score_adj');
    expect(cgroupCheck({ CgroupVersion: '2', MemoryLimit: false }).status).toBe('missing');
    expect(cgroupCheck({ CgroupVersion: '2', MemoryLimit: true, SwapLimit: false })).toMatchObject({ status: 'warn', fix: expect.stringContaining('swapaccount=1') });
    expect(cgroupCheck({ CgroupVersion: '2', CgroupDriver: 'systemd', MemoryLimit: true, SwapLimit: true }).status).toBe('ok');
    expect(cgroupCheck(null)).toMatchObject({ status: 'warn', required: false, detail: 'not checked: Docker is not reachable' });
  });

  it('netem and iptables say which driver latency and packet loss will use', () => {
    expect(netemCheck(yes, yes)).toMatchObject({ status: 'ok', detail: expect.stringContaining('latency and packet-loss faults use netem') });
    const missing = netemCheck(noNetem, yes);
    expect(missing).toMatchObject({ status: 'missing', required: false, fix: '`modprobe sch_netem`' });
    expect(missing.detail).toContain("latency will use Gauntlet's proxy, packet loss will use iptables statistic");
    expect(netemCheck(noNetem, noIpt).detail).toContain('packet-loss faults cannot run');

    expect(iptablesCheck(yes, noNetem, 'iptables v1.8.9 (nf_tables)').detail).toBe('iptables v1.8.9 (nf_tables) with the statistic and comment matches: the packet-loss driver here (no netem)');
    expect(iptablesCheck(yes, yes, null).detail).toContain('fallback');
    expect(iptablesCheck(noIpt, yes, null)).toMatchObject({ status: 'missing', detail: 'iptables is not installed: packet loss will use netem', fix: 'apt-get install iptables' });
  });

  it('nsenter is required only when Docker is there', () => {
    expect(nsenterCheck(yes, true)).toMatchObject({ status: 'ok', required: true });
    expect(nsenterCheck({ ok: false, reason: 'needs root', fix: 'run Gauntlet as root' }, false)).toMatchObject({ status: 'missing', required: false, fix: 'run Gauntlet as root' });
  });

  it('host-pid: a running container\'s pid visible and its own, not visible, or someone else\'s', () => {
    const cgroup = `4:memory:/docker/${ID}\n0::/\n`;
    expect(hostPidCheck({ kind: 'container', name: 't1', id: ID, pid: 3337, cgroup })).toMatchObject({ status: 'ok', required: true });
    const hidden = hostPidCheck({ kind: 'container', name: 't1', id: ID, pid: 3337, cgroup: null });
    expect(hidden).toMatchObject({ status: 'missing', required: true, fix: 'run Gauntlet on the Docker host, or in a container with --pid=host --privileged' });
    expect(hostPidCheck({ kind: 'container', name: 't1', id: ID, pid: 3337, cgroup: '0::/user.slice\n' }).status).toBe('missing');
  });

  it('host-pid with no running container: inferred from dockerd and container markers', () => {
    expect(hostPidCheck({ kind: 'inferred', dockerUp: true, marker: '/.dockerenv exists', dockerdPid: 2594 })).toMatchObject({ status: 'ok', required: true });
    expect(hostPidCheck({ kind: 'inferred', dockerUp: true, marker: '/.dockerenv exists', dockerdPid: null })).toMatchObject({ status: 'missing', required: true, fix: expect.stringContaining('--pid=host --privileged') });
    expect(hostPidCheck({ kind: 'inferred', dockerUp: true, marker: null, dockerdPid: null })).toMatchObject({ status: 'warn', required: true });
    expect(hostPidCheck({ kind: 'inferred', dockerUp: false, marker: '/.dockerenv exists', dockerdPid: null })).toMatchObject({ status: 'warn', required: false });
    expect(hostPidCheck({ kind: 'inferred', dockerUp: false, marker: null, dockerdPid: null })).toMatchObject({ status: 'warn', required: false });
  });

  it('hog: built and static, or how to build it', () => {
    const p = '/x/dist/helpers/gauntlet-hog';
    expect(hogCheck({ path: p, exists: true, executable: true, isStatic: true, bytes: 763_000 })).toMatchObject({ status: 'ok', detail: `${p} (static, 745 KiB): the oom fault's memory hog` });
    expect(hogCheck({ path: p, exists: false, executable: false, isStatic: null, bytes: 0 })).toMatchObject({ status: 'missing', fix: 'apt-get install gcc libc6-dev && npm run build' });
    expect(hogCheck({ path: p, exists: true, executable: true, isStatic: false, bytes: 9 }).status).toBe('warn');
    expect(hogCheck({ path: p, exists: true, executable: false, isStatic: true, bytes: 9 }).fix).toContain('chmod +x');
  });

  it('hogFacts reads the ELF headers: a dynamic executable, a non-ELF file, no file', () => {
    expect(hogFacts(process.execPath)).toMatchObject({ exists: true, executable: true, isStatic: false });
    const text = join(dir, 'not-elf');
    writeFileSync(text, '#!/bin/sh\necho hi\n'.repeat(10));
    chmodSync(text, 0o755);
    expect(hogFacts(text)).toMatchObject({ exists: true, executable: true, isStatic: null });
    expect(hogFacts(join(dir, 'absent')).exists).toBe(false);
  });

  it('k6: with xk6-sse ok, without it a warning, absent optional', () => {
    expect(k6Check({ found: true, binary: { path: '/bin/k6', version: 'v0.49.0', sse: true } })).toMatchObject({ status: 'ok', required: false, detail: 'k6 v0.49.0 at /bin/k6, with xk6-sse' });
    expect(k6Check({ found: true, binary: { path: '/bin/k6', version: 'v0.49.0', sse: false } })).toMatchObject({ status: 'warn', fix: expect.stringContaining('xk6-sse') });
    expect(k6Check({ found: false })).toMatchObject({ status: 'missing', required: false, detail: expect.stringContaining('the builtin engine needs nothing') });
    expect(k6Check({ found: true, path: '/bin/k6', error: 'exit 1' }).status).toBe('missing');
  });
});

describe('runDoctor', () => {
  const host = (netem: boolean): HostProbe => ({
    caps: { netem, iptables: true, nsenter: true, notes: netem ? {} : { netem: 'no netem' } },
    verdicts: { netem: netem ? yes : noNetem, iptables: yes, nsenter: yes },
  });
  const proc = (visible: Record<number, string>): ProcView => ({
    cgroupOf: (pid) => visible[pid] ?? null,
    containerMarker: () => null,
    dockerdPid: () => null,
  });
  const iptablesVersion = async (): Promise<ExecResult> => ({ code: 0, stdout: 'iptables v1.8.9 (nf_tables)\n', stderr: '' });
  const engine = (running: boolean): DoctorDocker => ({
    version: async () => ({ Version: '20.10.24', ApiVersion: '1.41' }),
    info: async () => ({ CgroupVersion: '1', CgroupDriver: 'cgroupfs', MemoryLimit: true, SwapLimit: true, OomKillDisable: true }),
    listContainers: async () => (running ? [{ Id: ID, Names: ['/t1'] }] : []),
    getContainer: () => ({ inspect: async () => ({ Id: ID, Name: '/t1', State: { Pid: 3337, Running: true } }) }),
  });
  const base = (over: Partial<DoctorOptions>): DoctorOptions => ({
    docker: engine(true),
    dockerWhere: 'unix:///var/run/docker.sock',
    host: async () => host(false),
    runner: iptablesVersion,
    proc: proc({ 3337: `4:memory:/docker/${ID}\n` }),
    hog: () => ({ path: '/x/gauntlet-hog', exists: true, executable: true, isStatic: true, bytes: 1024 }),
    k6: async () => ({ found: false }),
    ...over,
  });

  it('a host like this one: Docker ok, cgroup v1 warned, no netem, iptables ok, the container pid visible', async () => {
    const checks = await runDoctor(base({}));
    expect(checks.map((c) => [c.name, c.status])).toEqual([
      ['docker', 'ok'],
      ['cgroup', 'warn'],
      ['netem', 'missing'],
      ['iptables', 'ok'],
      ['nsenter', 'ok'],
      ['host-pid', 'ok'],
      ['hog', 'ok'],
      ['k6', 'missing'],
    ]);
    expect(checks.filter((c) => c.required).map((c) => c.name)).toEqual(['docker', 'nsenter', 'host-pid']);
    expect(checks.every((c) => c.status === 'ok' || (c.fix ?? '').length > 0)).toBe(true);
    expect(doctorPassed(checks)).toBe(true);
    expect(checks[3]?.detail).toContain('iptables v1.8.9 (nf_tables)');
  });

  it('Gauntlet in a container without the host PID namespace fails host-pid', async () => {
    const checks = await runDoctor(base({ proc: proc({}) }));
    expect(checks.find((c) => c.name === 'host-pid')).toMatchObject({ status: 'missing', required: true });
    expect(doctorPassed(checks)).toBe(false);
  });

  it('no engine: docker missing (required), the engine checks not run, nsenter and host-pid optional', async () => {
    const down: DoctorDocker = {
      ...engine(false),
      version: async () => {
        throw new Error('connect ENOENT /var/run/docker.sock');
      },
    };
    const checks = await runDoctor(base({ docker: down, host: async () => host(true) }));
    expect(checks.find((c) => c.name === 'docker')).toMatchObject({ status: 'missing', required: true });
    expect(checks.find((c) => c.name === 'cgroup')?.detail).toContain('not checked');
    expect(checks.filter((c) => c.required).map((c) => c.name)).toEqual(['docker']);
    expect(doctorPassed(checks)).toBe(false);
  });

  it('an engine that never answers is bounded', async () => {
    const hung: DoctorDocker = { ...engine(false), version: () => new Promise(() => undefined) };
    const checks = await runDoctor(base({ docker: hung, dockerTimeoutMs: 50 }));
    expect(checks[0]).toMatchObject({ name: 'docker', status: 'missing', detail: expect.stringContaining('did not answer within 50 ms') });
  });

  it('no running container: host-pid is inferred (dockerd visible → ok)', async () => {
    const checks = await runDoctor(base({ docker: engine(false), proc: { cgroupOf: () => null, containerMarker: () => '/.dockerenv exists', dockerdPid: () => 2594 } }));
    expect(checks.find((c) => c.name === 'host-pid')).toMatchObject({ status: 'ok', detail: expect.stringContaining('dockerd (pid 2594)') });
  });
});
