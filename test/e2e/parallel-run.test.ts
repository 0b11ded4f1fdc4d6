// `gauntlet run` with load.parallelism: the builtin engine on worker threads and (with a real
// k6) k6 split over execution segments, end to end against a simulator process. The report names
// every generator with its own signal, every arrival is accounted for, and report.json still
// conforms to its schema.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateK6, probeK6 } from '../../src/load/k6/binary.js';
import { runCli } from '../helpers/cli.js';
import { reportSchemaErrors } from '../helpers/report-schema.js';
import { startSimProcess, type SimProcess } from '../helpers/sim-process.js';
import { sshdAvailable, TestSshd } from '../helpers/sshd.js';
import { tempDir } from '../helpers/tmp.js';

const k6 = locateK6();
const realK6 = k6 !== null && (await probeK6(k6)).version.indexOf('fake') === -1 && !k6.includes('fake-k6');
if (!realK6) process.stderr.write('\n*** parallel-run.test.ts: the k6 cases are SKIPPED (no real k6 binary; set K6_BIN). ***\n\n');
const sshd = sshdAvailable();
if (process.env.CI === 'true' && !sshd) throw new Error('parallel-run.test.ts: CI=true but OpenSSH is not installed (scripts/ensure-ssh.sh installs it)');

interface Report {
  run: { status: string; engine: { name: string; capabilities: { notes: string[] } } | null };
  generator: { kept_up: boolean; generators: { name: string; kind: string; host: string; loop_lag_p99_max_ms: number | null; k6_cpu_max_cores: number | null; late_max_ms: number | null; clock_offset_ms: number | null }[] };
  requests: { accounting: { planned: number; sent: number; missed: number; interrupted: number; cancelled: number } | null };
}

describe('gauntlet run with several load generators', () => {
  const dir = tempDir();
  let sim: SimProcess;
  let server: TestSshd | null = null;
  beforeAll(async () => {
    sim = await startSimProcess(['--gpus', '4', '--load-ms', '0', '--ttft-ms', '20', '--itl-ms', '5']);
    if (sshd && realK6) server = await TestSshd.start(join(dir, 'sshd'));
  });
  afterAll(() => {
    sim?.kill();
    server?.stop();
  });

  const sshHosts = (): string =>
    server
      ? `engine: k6, k6_hosts: [{ host: local }, { host: "${server.url}", k6: "${k6}", identity_file: "${server.identityFile}", known_hosts_file: "${server.knownHostsFile}" }]`
      : '';
  const cases: [string, () => string, string[], boolean][] = [
    ['builtin on 3 worker threads', () => 'engine: builtin, parallelism: 3', ['gauntlet', 'builtin-1', 'builtin-2', 'builtin-3'], true],
    ['k6 in 2 execution segments', () => 'engine: k6, parallelism: 2', ['gauntlet', 'k6-1', 'k6-2'], realK6],
    ['k6 here and on a host over SSH', sshHosts, ['gauntlet', 'k6-1', 'k6-2'], realK6 && sshd],
  ];
  for (const [title, loadOf, names, enabled] of cases) {
    it.runIf(enabled)(title, async () => {
      const load = loadOf();
      const plan = join(dir, `${title.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(
        plan,
        `name: parallel\nduration: 5s\ntargets: [{ name: n, endpoint: "${sim.endpoint}" }]\n` +
          `load: { ${load}, rate: 20, arrival: constant, api: chat, stream: true, max_tokens: 6, prompt_tokens: 8, model: sim-llama, window: 1s }\n` +
          // (5 s cannot show an MTBF; the latency gates are the simulator's business here)
          `probes: { interval: 1s }\ngates: { mtbf_lower_bound: false, ttft: false, tpot: false }\n`,
      );
      const r = await runCli(['run', plan, '--db', join(dir, 'g.db'), '--reports', join(dir, 'reports')], { K6_BIN: k6 ?? '' });
      const id = /^run (\S+):/m.exec(r.stdout)?.[1] as string;
      expect(id, r.stdout + r.stderr).toBeTruthy();
      const report = JSON.parse(readFileSync(join(dir, 'reports', id, 'report.json'), 'utf8')) as Report;
      process.stderr.write(`${title}: exit ${r.code}; generators ${JSON.stringify(report.generator.generators)}; accounting ${JSON.stringify(report.requests.accounting)}\n`);
      expect(reportSchemaErrors(report)).toEqual([]);
      expect(report.run.status).toBe('completed');
      expect(report.generator.generators.map((g) => g.name)).toEqual(names);
      // each generator's own signal was recorded: a thread's loop lag, a k6 process's CPU (read
      // on its own host, here or over SSH) and how late it started arrivals
      for (const g of report.generator.generators.slice(1)) {
        if (g.kind === 'worker thread') expect(g.loop_lag_p99_max_ms, g.name).not.toBeNull();
        else {
          expect(g.late_max_ms, g.name).not.toBeNull();
          expect(g.k6_cpu_max_cores, g.name).not.toBeNull();
        }
      }
      const a = report.requests.accounting;
      // 100 arrivals; k6's arrival-rate executor has been seen to start one more on a saturated
      // machine (101 under stress-ng; grafana/k6#3052): Gauntlet counts what k6 started
      expect(a?.planned, JSON.stringify(a)).toBeGreaterThanOrEqual(100);
      expect(a?.planned, JSON.stringify(a)).toBeLessThanOrEqual(title.includes('k6') ? 101 : 100);
      expect((a?.sent ?? 0) + (a?.missed ?? 0) + (a?.interrupted ?? 0) + (a?.cancelled ?? 0)).toBe(a?.planned);
      expect(a?.sent).toBeGreaterThanOrEqual(98);
      expect(readFileSync(join(dir, 'reports', id, 'report.md'), 'utf8')).toContain(`| ${names[1]} |`);
      // where each ran: this machine, or the SSH host
      if (title.includes('SSH')) {
        expect(report.generator.generators.map((g) => g.host).slice(-1)).toEqual([`${server?.user}@127.0.0.1:${server?.port}`]);
        // its clock was measured (the same machine's: near 0) and its times corrected by it
        expect(Math.abs(report.generator.generators.at(-1)?.clock_offset_ms as number)).toBeLessThan(50);
      }
      // 0, or 3 when the generators could not keep up (a saturated machine: this test under
      // stress-ng beside another) — then the report says so, and the count above still holds
      expect(r.code === 0 || (r.code === 3 && !report.generator.kept_up), `exit ${r.code}: ${r.stdout}${r.stderr}`).toBe(true);
    }, 90_000);
  }
});
