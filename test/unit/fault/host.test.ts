// Host capability probes: the commands they run and how their outputs are read, with a fake
// runner (the outputs are the ones seen on real machines), so nothing here depends on the host.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ExecResult } from '../../../src/fault/netns.js';

const runMock = vi.hoisted(() => vi.fn());
vi.mock('../../../src/fault/netns.js', () => ({ run: runMock }));

const { IPTABLES_PROBE, NETEM_PROBE, classifyIptables, classifyNetem, classifyNsenter, detectHostCaps, probeHost, resetHostCaps } = await import('../../../src/fault/host.js');

const ok: ExecResult = { code: 0, stdout: '', stderr: '' };
const fail = (code: number, stderr: string): ExecResult => ({ code, stdout: '', stderr });

describe('classifyNetem', () => {
  it('exit 0: the kernel has netem', () => {
    expect(classifyNetem(ok)).toEqual({ ok: true });
  });

  it('"Specified qdisc kind is unknown": no sch_netem, with modprobe as the fix', () => {
    const v = classifyNetem(fail(2, 'Error: Specified qdisc kind is unknown.\n'));
    expect(v.ok).toBe(false);
    expect(v.reason).toContain('no netem qdisc (module sch_netem)');
    expect(v.fix).toContain('modprobe sch_netem');
    expect(v.fix).toContain("kernel's extra modules");
  });

  it('tc missing, unshare missing, unshare not permitted, timeout: each says so', () => {
    expect(classifyNetem(fail(127, 'unshare: failed to execute tc: No such file or directory\n'))).toMatchObject({ ok: false, reason: 'tc is not installed', fix: 'apt-get install iproute2' });
    expect(classifyNetem(fail(127, 'unshare: not installed (not on PATH)'))).toMatchObject({ ok: false, fix: 'apt-get install util-linux' });
    expect(classifyNetem(fail(1, 'unshare: unshare failed: Operation not permitted\n'))).toMatchObject({ ok: false, reason: expect.stringContaining('not permitted'), fix: expect.stringContaining('root') });
    expect(classifyNetem(fail(1, 'unshare: timed out after 8000 ms')).reason).toContain('cannot test: unshare: timed out after 8000 ms');
  });

  it('anything else: the first line of what tc said', () => {
    expect(classifyNetem(fail(2, '\nRTNETLINK answers: Invalid argument\nmore\n')).reason).toBe('tc netem failed: RTNETLINK answers: Invalid argument');
  });
});

describe('classifyIptables', () => {
  it('exit 0: statistic and comment matches work', () => {
    expect(classifyIptables(ok)).toEqual({ ok: true });
  });

  it('names the match the kernel lacks', () => {
    const v = classifyIptables(fail(2, "iptables v1.8.9 (nf_tables): Couldn't load match `statistic':No such file or directory\n\nTry `iptables -h' for more information.\n"));
    expect(v).toMatchObject({ ok: false, reason: expect.stringContaining('statistic match (kernel module xt_statistic)'), fix: expect.stringContaining('modprobe xt_statistic') });
    expect(classifyIptables(fail(1, 'Warning: Extension comment revision 0 not supported, missing kernel module?')).reason).toContain('xt_comment');
  });

  it('not root, not installed', () => {
    expect(classifyIptables(fail(4, 'iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n'))).toMatchObject({ ok: false, fix: expect.stringContaining('root') });
    expect(classifyIptables(fail(127, 'unshare: failed to execute iptables: No such file or directory'))).toMatchObject({ reason: 'iptables is not installed', fix: 'apt-get install iptables' });
  });
});

describe('classifyNsenter', () => {
  it('exit 0: can enter namespaces', () => {
    expect(classifyNsenter(ok, 0)).toEqual({ ok: true });
  });

  it('permission denied: not root, or root without the capabilities (a container without --privileged)', () => {
    const denied = fail(1, 'nsenter: cannot open /proc/3722/ns/net: Permission denied\n');
    expect(classifyNsenter(denied, 65534)).toMatchObject({ ok: false, reason: expect.stringContaining('uid 65534'), fix: 'run Gauntlet as root' });
    expect(classifyNsenter(denied, 0)).toMatchObject({ ok: false, fix: expect.stringContaining('--privileged') });
  });

  it('not installed', () => {
    expect(classifyNsenter(fail(127, 'nsenter: not installed (not on PATH)'), 0)).toMatchObject({ reason: 'nsenter is not installed', fix: 'apt-get install util-linux' });
  });
});

describe('probeHost', () => {
  it('runs the three probes with argument arrays and bounded timeouts, and notes why each missing one is missing', async () => {
    const calls: Array<{ argv: string[]; timeoutMs: number | undefined }> = [];
    const runner = async (file: string, args: readonly string[], timeoutMs?: number): Promise<ExecResult> => {
      calls.push({ argv: [file, ...args], timeoutMs });
      if (args.includes('netem')) return fail(2, 'Error: Specified qdisc kind is unknown.\n');
      return ok;
    };
    const p = await probeHost({ runner, pid: 4242, uid: 0 });
    expect(p.caps).toMatchObject({ netem: false, iptables: true, nsenter: true });
    expect(Object.keys(p.caps.notes)).toEqual(['netem']);
    expect(p.caps.notes.netem).toContain('modprobe sch_netem');
    expect(p.caps.notes.netem).toContain('proxy for latency and iptables statistic for packet loss');
    expect(calls.map((c) => c.argv)).toEqual([[...NETEM_PROBE], [...IPTABLES_PROBE], ['nsenter', '-t', '4242', '-n', '--', 'true']]);
    // Every probe that touches the network stack does so in a throwaway namespace.
    expect(calls.slice(0, 2).every((c) => c.argv.slice(0, 3).join(' ') === 'unshare --net --')).toBe(true);
    expect(calls.every((c) => typeof c.timeoutMs === 'number' && c.timeoutMs > 0 && c.timeoutMs <= 10_000)).toBe(true);
  });

  it('everything missing: every capability false with a note', async () => {
    const p = await probeHost({ runner: async () => fail(1, 'unshare: unshare failed: Operation not permitted'), uid: 1000, pid: 7 });
    expect(p.caps).toMatchObject({ netem: false, iptables: false, nsenter: false });
    expect(Object.keys(p.caps.notes).sort()).toEqual(['iptables', 'netem', 'nsenter']);
  });
});

describe('detectHostCaps', () => {
  afterEach(() => {
    resetHostCaps();
    runMock.mockReset();
  });

  it('probes once per process until reset', async () => {
    runMock.mockResolvedValue(ok);
    const [a, b] = await Promise.all([detectHostCaps(), detectHostCaps()]);
    expect(a).toEqual({ netem: true, iptables: true, nsenter: true, notes: {} });
    expect(b).toBe(a);
    expect(runMock).toHaveBeenCalledTimes(3);
    resetHostCaps();
    runMock.mockResolvedValue(fail(2, 'Error: Specified qdisc kind is unknown.'));
    const c = await detectHostCaps();
    expect(c.netem).toBe(false);
    expect(runMock).toHaveBeenCalledTimes(6);
  });
});
