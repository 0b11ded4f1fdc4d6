// The reader of a remote k6's CPU watch (src/load/k6/remote.ts): rates between the remote host's
// own timestamps, its CLK_TCK and the CPUs the process may use, and bad lines named.
import { describe, expect, it } from 'vitest';
import { RemoteCpuReader, type RemoteCpuSample } from '../../../../src/load/k6/remote.js';
import { cpuListCount, statCpuTicks } from '../../../../src/util/proc.js';

/** A /proc/<pid>/stat line with the given utime and stime (fields 14 and 15), and a name with spaces. */
const stat = (utime: number, stime: number): string =>
  `4242 (k6 run (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 ${utime} ${stime} 0 0 20 0 12 0 555 1000 200 18446744073709551615`;
/** `date +%s%N` at `ms` after an instant of 2025 (19 digits). */
const ns = (ms: number): string => `${1_765_000_000_000 + ms}000000`;

describe('remote k6 CPU', () => {
  it('reads ticks and allowed-CPU lists', () => {
    expect(statCpuTicks(stat(150, 50))).toBe(200);
    expect(statCpuTicks('garbage')).toBeNull();
    expect(cpuListCount('0-3,8')).toBe(5);
    expect(cpuListCount('0')).toBe(1);
    expect(cpuListCount('0-3,x')).toBeNull();
  });

  it('gives cores between the remote timestamps, at the host CLK_TCK, as a share of the CPUs allowed', () => {
    const got: RemoteCpuSample[] = [];
    const r = new RemoteCpuReader((s) => got.push(s), () => 0);
    expect(r.line('info 250 16 0-3')).toBeNull();
    const t0 = 1_765_000_000_000;
    expect(r.line(`stat ${t0}000000 ${stat(1000, 0)}`)).toBeNull();
    expect(got).toEqual([]); // one reading: no rate yet
    // 2 s later, 750 more ticks at 250/s: 3 s of CPU in 2 s = 1.5 cores, of 4 allowed
    expect(r.line(`stat ${t0 + 2000}000000 ${stat(1500, 250)}`)).toBeNull();
    expect(got).toHaveLength(1);
    expect(got[0]?.cores).toBeCloseTo(1.5, 9);
    expect(got[0]?.share).toBeCloseTo(0.375, 9);
  });

  it('without nanoseconds from date, times the lines as they arrive', () => {
    const got: RemoteCpuSample[] = [];
    let now = 10_000;
    const r = new RemoteCpuReader((s) => got.push(s), () => now);
    r.line('info 100 2 0-1');
    r.line(`stat %N ${stat(0, 0)}`);
    now += 500;
    r.line(`stat %N ${stat(50, 0)}`);
    expect(got[0]?.cores).toBeCloseTo(1, 9);
    expect(got[0]?.share).toBeCloseTo(0.5, 9);
  });

  it('names a bad line, and gives no rate before the host facts or across a restarted process', () => {
    const got: RemoteCpuSample[] = [];
    const r = new RemoteCpuReader((s) => got.push(s), () => 0);
    expect(r.line('hello')).toMatch(/unexpected line "hello"/);
    expect(r.line('info 0 4 0-3')).toMatch(/unreadable CPU facts/);
    r.line(`stat ${ns(1000)} ${stat(100, 0)}`);
    r.line(`stat ${ns(2000)} ${stat(200, 0)}`);
    expect(got).toEqual([]); // no info line yet: the share is unknown
    r.line('info 100 4 0-3');
    r.line(`stat ${ns(3000)} ${stat(300, 0)}`);
    expect(got).toHaveLength(1);
    r.line(`stat ${ns(4000)} ${stat(5, 0)}`); // fewer ticks than before: not the same process
    expect(got).toHaveLength(1);
  });
});
