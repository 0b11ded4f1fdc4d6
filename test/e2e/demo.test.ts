// The README's demo, as a user runs it: two simulated 4-GPU nodes, the demo plan, a report,
// the containers gone afterwards.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { dockerClient, inspectContainer } from '../../src/docker/engine.js';
import { DEMO_NODES } from '../../src/demo.js';
import type { ReportJson } from '../../src/report/build.js';
import { runCli } from '../helpers/cli.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

describeDocker('gauntlet demo (real Docker)', () => {
  it('runs, crashes each node at least once, and reports every recovery', async () => {
    const dir = tempDir();
    const r = await runCli(['demo', '--db', join(dir, 'g.db'), '--reports', join(dir, 'reports')]);
    expect(r.code, r.stderr).toBe(0);
    const reportPath = /^report: (\S+)\/report\.md/m.exec(r.stdout)?.[1];
    expect(reportPath, r.stdout).toBeDefined();
    const report = JSON.parse(readFileSync(join(reportPath as string, 'report.json'), 'utf8')) as ReportJson;

    expect(report.run.status).toBe('completed');
    expect(report.nodes.map((n) => n.name)).toEqual(['node-a', 'node-b']);
    const injected = report.episodes.filter((e) => e.cause.startsWith('injected:'));
    expect(injected.length).toBeGreaterThanOrEqual(2);
    expect(new Set(injected.map((e) => e.node))).toEqual(new Set(['node-a', 'node-b']));
    for (const e of injected) {
      expect(e.status).toBe('recovered');
      expect(e.recovery_ms).toBeGreaterThan(0);
      expect(e.restart_ms).toBeGreaterThan(0);
      expect(e.recovery_ms as number).toBeGreaterThan(e.restart_ms as number);
      expect(e.exit_code).toBe(137);
    }
    expect(report.failures.spontaneous).toBe(0);
    expect(report.recovery.count).toBe(injected.length);
    expect(report.faults.every((f) => f.state === 'reverted')).toBe(true);
    expect(report.nodes.every((n) => n.restarts !== null && n.restarts >= 1)).toBe(true);
    expect(report.requests.ok).toBeGreaterThan(500);
    expect(report.mtbf.lower_bound_hours).toBeGreaterThan(0);
    expect(readFileSync(join(reportPath as string, 'report.md'), 'utf8')).toContain('## Recovery');
    process.stderr.write(`demo: ${r.stdout.split('\n').filter((l) => /recovery|wall time/.test(l)).join(' | ')}\n`);

    const docker = dockerClient();
    for (const n of DEMO_NODES) expect(await inspectContainer(docker, n.name)).toBeNull();
  }, 300_000);
});
