// gpu-worker-kill without Docker: reading Docker's top answer, choosing the worker, the params
// and the dry-run description.
import { describe, expect, it } from 'vitest';
import { DEFAULT_WORKER_PATTERN, chooseWorker, gpuWorkerKill, parseTop } from '../../../faults/gpu-worker-kill.js';
import { silentLogger } from '../../../src/log.js';
import { VirtualClock } from '../../../src/util/clock.js';

/** What Docker answered for a 4-GPU simulator container (ps_args '-eo pid,ppid,args'). */
const SIM_TOP = {
  Titles: ['PID', 'PPID', 'COMMAND'],
  Processes: [
    ['6115', '6095', '/usr/bin/node /opt/gauntlet/sim.cjs --host 0.0.0.0 --port 8000 --gpus 4 --load-ms 500'],
    ['6151', '6115', '/usr/bin/node /opt/gauntlet/sim.cjs --worker 0 500 8'],
    ['6152', '6115', '/usr/bin/node /opt/gauntlet/sim.cjs --worker 1 500 8'],
    ['6153', '6115', '/usr/bin/node /opt/gauntlet/sim.cjs --worker 2 500 8'],
    ['6154', '6115', '/usr/bin/node /opt/gauntlet/sim.cjs --worker 3 500 8'],
  ],
};

/** A vLLM-like container: API server, engine core, multiprocessing workers, a dead one. */
const VLLM_TOP = {
  Titles: ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'],
  Processes: [
    ['root', '900', '880', '3', '14:29', '?', '00:01:00', 'python3 -m vllm.entrypoints.openai.api_server --model m --tensor-parallel-size 2'],
    ['root', '950', '900', '0', '14:29', '?', '00:00:00', 'VLLM::EngineCore'],
    ['root', '960', '950', '9', '14:29', '?', '00:05:00', 'VllmWorker TP0'],
    ['root', '961', '950', '9', '14:29', '?', '00:05:00', 'VllmWorker TP1'],
    ['root', '962', '950', '0', '14:30', '?', '00:00:00', '[VllmWorker TP2] <defunct>'],
    ['root', '990', '900', '0', '14:29', '?', '00:00:00', 'ray::RayWorkerWrapper.execute_method'],
  ],
};

describe('parseTop', () => {
  it('takes the PID column and the command line (the last column, spaces and all)', () => {
    expect(parseTop(SIM_TOP)[1]).toEqual({ pid: 6151, command: '/usr/bin/node /opt/gauntlet/sim.cjs --worker 0 500 8' });
    expect(parseTop(VLLM_TOP).map((p) => p.pid)).toEqual([900, 950, 960, 961, 962, 990]);
    expect(parseTop({ Titles: ['PID', 'CMD'], Processes: null })).toEqual([]);
  });

  it('refuses an answer without a PID column', () => {
    expect(() => parseTop({ Titles: ['USER', 'CMD'], Processes: [['root', 'x']] })).toThrow('unexpected process list from Docker (columns: USER, CMD)');
  });
});

describe('chooseWorker', () => {
  const sim = parseTop(SIM_TOP);

  it("takes the simulator's last worker by default, never the main process", () => {
    const c = chooseWorker(sim, 6115, DEFAULT_WORKER_PATTERN);
    expect(c).toMatchObject({ ok: true, index: 3, chosen: { pid: 6154 } });
    expect(c.matches.map((p) => p.pid)).toEqual([6151, 6152, 6153, 6154]);
  });

  it('takes the one asked for by rank, in process-list order', () => {
    expect(chooseWorker(sim, 6115, DEFAULT_WORKER_PATTERN, 0)).toMatchObject({ ok: true, index: 0, chosen: { pid: 6151 } });
  });

  it('excludes the main process even when the pattern matches it', () => {
    const c = chooseWorker(sim, 6115, 'sim\\.cjs');
    expect(c.matches.map((p) => p.pid)).toEqual([6151, 6152, 6153, 6154]);
  });

  it('matches vLLM and Ray workers and skips a zombie', () => {
    const c = chooseWorker(parseTop(VLLM_TOP), 900, DEFAULT_WORKER_PATTERN);
    expect(c.matches.map((p) => p.pid)).toEqual([960, 961, 990]);
    expect(chooseWorker(parseTop(VLLM_TOP), 900, 'VllmWorker')).toMatchObject({ ok: true, chosen: { pid: 961, command: 'VllmWorker TP1' } });
  });

  it('refuses when nothing matches, listing the processes it saw', () => {
    const c = chooseWorker(sim.slice(0, 1), 6115, DEFAULT_WORKER_PATTERN);
    expect(c).toEqual({
      ok: false,
      matches: [],
      why: `no process matches /${DEFAULT_WORKER_PATTERN}/ besides the main process (pid 6115); processes seen: 6115 (main) /usr/bin/node /opt/gauntlet/sim.cjs --host 0.0.0.0 --port 8000 --gpus 4 --load-ms 500`,
    });
  });

  it('refuses a rank past the matches, listing them', () => {
    const c = chooseWorker(sim, 6115, '--worker [01] ', 2);
    expect(c.ok).toBe(false);
    expect(!c.ok && c.why).toBe('rank 2 asked for, but only 2 process(es) match /--worker [01] /: 6151 /usr/bin/node /opt/gauntlet/sim.cjs --worker 0 500 8; 6152 /usr/bin/node /opt/gauntlet/sim.cjs --worker 1 500 8');
  });
});

describe('gpu-worker-kill params and dry run', () => {
  it('defaults: the worker pattern, the last match, restore by restart; instant', () => {
    expect(gpuWorkerKill.params.parse({})).toEqual({ pattern: DEFAULT_WORKER_PATTERN, restore: 'restart' });
    expect(gpuWorkerKill.instant).toBe(true);
    expect(gpuWorkerKill.needsContainer).toBe(true);
  });

  it('refuses a pattern that is not a regular expression, a negative rank and unknown keys', () => {
    const bad = (p: unknown): string => {
      const r = gpuWorkerKill.params.safeParse(p);
      return r.success ? 'accepted' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    };
    expect(bad({ pattern: '(' })).toBe('pattern: expected a regular expression (JavaScript syntax) matched against command lines');
    expect(bad({ rank: -1 })).toMatch(/^rank: /);
    expect(bad({ restore: 'reboot' })).toMatch(/^restore: /);
    expect(bad({ signal: 'KILL' })).toMatch(/signal/);
  });

  it('describe lists the actions without touching Docker', async () => {
    const lines = await gpuWorkerKill.describe(
      { node: 'node-a', containerId: 'c1', containerName: 'sim-a' },
      { pattern: DEFAULT_WORKER_PATTERN, rank: 1, restore: 'none' },
      { docker: null, log: silentLogger, clock: new VirtualClock() },
    );
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain('container sim-a');
    expect(lines[0]).toContain('number 1 (from 0)');
    expect(lines[2]).toMatch(/^revert \(restore=none\)/);
  });
});
