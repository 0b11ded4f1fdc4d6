// k6 instances on a "remote" host over SSH (load.k6_hosts): an sshd of the test's own on
// 127.0.0.1 stands in for the load host, with the real k6. One plan split over a local instance
// and two remote ones sends what one k6 sends, every record comes back over the SSH sessions into
// one run, a stop reaches the remote k6 (no process left there), the remote folders are removed,
// and a host that cannot be reached is a clear error. Needs a real k6 and OpenSSH's sshd: with
// CI=true a missing sshd fails (scripts/ensure-ssh.sh installs it), otherwise it is skipped, loudly.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateK6, probeK6 } from '../../src/load/k6/binary.js';
import { K6Engine } from '../../src/load/k6/engine.js';
import { k6HostsOf, parseSshUrl, remoteClockOffset, shellQuote, sshHostName, watchRemoteCpu } from '../../src/load/k6/remote.js';
import { statCpuTicks } from '../../src/util/proc.js';
import type { RequestRecord } from '../../src/load/types.js';
import { silentLogger } from '../../src/log.js';
import { freePort } from '../../src/util/ports.js';
import { startSimProcess, type SimProcess } from '../helpers/sim-process.js';
import { sshdAvailable, TestSshd } from '../helpers/sshd.js';
import { tempDir } from '../helpers/tmp.js';
import { twoNodeK6Workload } from '../helpers/workload.js';

const k6 = locateK6();
const realK6 = k6 !== null && (await probeK6(k6)).version.indexOf('fake') === -1 && !k6.includes('fake-k6');
const sshd = sshdAvailable();
if (process.env.CI === 'true' && !sshd) throw new Error('k6-ssh.test.ts: CI=true but OpenSSH is not installed (scripts/ensure-ssh.sh installs it)');
if (!realK6 || !sshd) process.stderr.write(`\n*** SKIPPED k6-ssh.test.ts: ${!realK6 ? 'no real k6 binary (set K6_BIN)' : 'no OpenSSH server (apt-get install openssh-server)'}. ***\n\n`);

/** Remote folders of Gauntlet's left in /tmp (the "remote" host is this machine). */
const leftovers = (): string[] => readdirSync('/tmp').filter((n) => /^gauntlet-k6-[0-9a-f]{12}$/.test(n));

describe('ssh:// load hosts', () => {
  it('parses ssh URLs, names hosts, quotes for the remote shell', () => {
    expect(parseSshUrl('ssh://gauntlet@loadgen-1.example:2222')).toEqual({ user: 'gauntlet', host: 'loadgen-1.example', port: 2222 });
    expect(parseSshUrl('ssh://10.0.0.5')).toEqual({ user: null, host: '10.0.0.5', port: 22 });
    expect(parseSshUrl('ssh://[::1]:22')).toEqual({ user: null, host: '::1', port: 22 });
    for (const bad of ['loadgen-1', 'ssh://a b', 'ssh://x;rm -rf /', 'ssh://h:99999', 'http://h', 'ssh://-V', 'ssh://-oProxyCommand=x@h', 'ssh://u@-h']) expect(parseSshUrl(bad), bad).toBeNull();
    expect(sshHostName({ user: 'g', host: 'h', port: 22 })).toBe('g@h');
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    const hosts = k6HostsOf([{ host: 'local', instances: 1, k6: 'k6' }, { host: 'ssh://g@h:2222', instances: 2, k6: '/opt/k6', identity_file: 'keys/id' }], '/plans');
    expect(hosts.map((h) => h.kind)).toEqual(['local', 'ssh', 'ssh']);
    expect(hosts[1]).toMatchObject({ user: 'g', host: 'h', port: 2222, k6: '/opt/k6', identityFile: '/plans/keys/id', knownHostsFile: null });
  });
});

describe.runIf(realK6 && sshd)('k6 instances over SSH (real k6, a local sshd)', () => {
  const dir = tempDir();
  let sim: SimProcess;
  let server: TestSshd;
  beforeAll(async () => {
    sim = await startSimProcess(['--gpus', '8', '--load-ms', '0', '--ttft-ms', '30', '--itl-ms', '5']);
    server = await TestSshd.start(`${dir}/sshd`);
  });
  afterAll(() => {
    sim?.kill();
    server?.stop();
  });

  const sshHost = () => {
    const u = parseSshUrl(server.url) as NonNullable<ReturnType<typeof parseSshUrl>>;
    return { kind: 'ssh' as const, ...u, identityFile: server.identityFile, knownHostsFile: server.knownHostsFile, k6: k6 as string };
  };

  const workload = (durationMs: number) => twoNodeK6Workload(sim.endpoint, durationMs);

  it('a local and two remote instances send what one k6 sends; every record comes back, numbered once', async () => {
    const run = async (engine: K6Engine, signal = new AbortController().signal) => {
      const recs: RequestRecord[] = [];
      let planned = 0;
      const late: string[] = [];
      const cpu = new Map<string, number[]>();
      await engine.run(workload(4000), signal, {
        record: (r) => recs.push(r),
        planned: (_n, _a, c) => (planned += c),
        generator: (name, _at, metric, value) => {
          if (metric === 'late_ms_max') late.push(name);
          if (metric === 'k6_cpu_cores') cpu.set(name, [...(cpu.get(name) ?? []), value]);
        },
      });
      return { recs, planned, late, cpu };
    };
    // the "remote" host is this machine: its clock is this one's, to the measurement's error
    const offset = await remoteClockOffset(sshHost());
    expect(offset).not.toBeNull();
    expect(Math.abs((offset as { offsetMs: number }).offsetMs)).toBeLessThanOrEqual((offset as { errorMs: number }).errorMs + 5);
    const one = await run(await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger }));
    const engine = await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger, hosts: [{ kind: 'local' }, sshHost(), sshHost()] });
    expect(engine.generators()).toEqual([
      { name: 'k6-1', host: null },
      { name: 'k6-2', host: `${server.user}@127.0.0.1:${server.port}` },
      { name: 'k6-3', host: `${server.user}@127.0.0.1:${server.port}` },
    ]);
    const three = await run(engine);
    process.stderr.write(`k6 over ssh: planned ${one.planned} vs ${three.planned}, records ${one.recs.length} vs ${three.recs.length}; lateness reported by ${[...new Set(three.late)].join(', ')}\n`);
    expect(one.planned).toBe(120);
    expect(three.planned).toBe(120);
    expect(three.recs.length).toBe(one.recs.length);
    expect(new Set(three.recs.map((r) => r.seq)).size).toBe(three.recs.length);
    expect(three.recs.filter((r) => r.outcome !== 'ok').map((r) => r.error)).toEqual([]);
    // every instance reported its own lateness: the remote ones too
    expect(new Set(three.late)).toEqual(new Set(['k6-1', 'k6-2', 'k6-3']));
    // each remote k6's CPU, read on its host every second (a local one's is the run monitor's):
    // busy sending and reading streams, so above nothing, and within the host's cores
    process.stderr.write(`k6 over ssh, CPU read there: ${[...three.cpu].map(([n, v]) => `${n} ${v.map((x) => x.toFixed(2)).join('/')} cores`).join('; ')}\n`);
    // (its accuracy is checked against /proc below, with a process of known load)
    expect([...three.cpu.keys()].sort()).toEqual(['k6-2', 'k6-3']);
    for (const v of three.cpu.values()) {
      // (a 4 s load: under stress-ng the watch's own SSH session takes a second or two to open)
      expect(v.length).toBeGreaterThanOrEqual(1);
      for (const x of v) expect(x >= 0 && x <= cpus().length + 0.5, String(x)).toBe(true);
    }
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it("a remote k6's CPU read over SSH agrees with /proc read here for the same process", async () => {
    // A CPU-bound process standing in for k6, found there as k6 is: by its script's path in a
    // Gauntlet folder name (the "remote" host is this machine, so /proc here is the truth)
    const hex = randomBytes(6).toString('hex');
    const dir = `/tmp/gauntlet-k6-${hex}`;
    const burner = spawn(process.execPath, ['-e', 'const end = Date.now() + 8000; while (Date.now() < end);', `${dir}/scenario.js`], { stdio: 'ignore' });
    try {
      const ticks = (): number => statCpuTicks(readFileSync(`/proc/${burner.pid}/stat`, 'utf8')) as number;
      const samples: number[] = [];
      let first: { at: number; ticks: number } | null = null;
      let last: { at: number; ticks: number } | null = null;
      const watch = watchRemoteCpu(sshHost(), dir, (x) => {
        // the truth over the same spans: this host's /proc, read as each sample arrives
        const now = { at: performance.now(), ticks: ticks() };
        first ??= now;
        last = now;
        samples.push(x.cores);
      }, (why) => samples.push(Number.NaN) && process.stderr.write(`watch: ${why}\n`));
      // (the burner runs 8 s; the watch needs a second or two to find it)
      await new Promise((r) => setTimeout(r, 6000));
      watch.stop();
      await watch.done;
      expect(samples.every(Number.isFinite)).toBe(true);
      expect(samples.length).toBeGreaterThanOrEqual(3);
      const f = first as unknown as { at: number; ticks: number };
      const l = last as unknown as { at: number; ticks: number };
      const truth = (l.ticks - f.ticks) / 100 / ((l.at - f.at) / 1000);
      // the samples after the first cover the same span as the truth (each is the second before it)
      const measured = samples.slice(1).reduce((a, b) => a + b, 0) / (samples.length - 1);
      process.stderr.write(`remote CPU watch: ${samples.map((x) => x.toFixed(2)).join('/')} cores; mean ${measured.toFixed(3)} vs /proc here ${truth.toFixed(3)}\n`);
      expect(truth).toBeGreaterThan(0.2);
      expect(Math.abs(measured - truth)).toBeLessThan(0.15 + 0.1 * truth);
    } finally {
      burner.kill('SIGKILL');
    }
  }, 60_000);

  it('a single remote instance runs, and a stop reaches it through its REST API: nothing is left running there', async () => {
    const engine = await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger, hosts: [sshHost()] });
    expect(engine.generators()).toEqual([{ name: 'k6-1', host: `${server.user}@127.0.0.1:${server.port}` }]);
    const ac = new AbortController();
    let records = 0;
    const started = Date.now();
    await engine.run(workload(60_000), ac.signal, {
      record: () => {
        if (++records === 20) ac.abort();
      },
    });
    expect(records).toBeGreaterThanOrEqual(20);
    expect(Date.now() - started).toBeLessThan(45_000);
    // no k6 of a remote folder left running (the remote host is this machine)
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    expect(ps.split('\n').filter((l) => /gauntlet-k6-[0-9a-f]{12}/.test(l))).toEqual([]);
    expect(leftovers()).toEqual([]);
  }, 120_000);

  it('a host that cannot be reached is a clear error, before any load', async () => {
    const closed = await freePort();
    const engine = await K6Engine.create({ script: null, arrival: 'constant', maxInFlight: null, log: silentLogger, hosts: [{ kind: 'local' }, { ...sshHost(), port: closed }] });
    let records = 0;
    await expect(engine.run(workload(3000), new AbortController().signal, { record: () => records++ })).rejects.toThrow(/k6-2 on .*:\d+\) could not be set up: ssh /);
    expect(records).toBe(0);
  }, 60_000);
});
