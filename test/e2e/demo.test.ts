// The README's demo, as a user runs it: two simulated 4-GPU nodes, the demo plan, a report
// (its HTML opened in headless Chromium), the containers gone afterwards.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { dockerClient, inspectContainer } from '../../src/docker/engine.js';
import { DEMO_NODES } from '../../src/demo.js';
import { faultKinds } from '../../faults/index.js';
import type { ReportJson } from '../../src/report/build.js';
import { runCli } from '../helpers/cli.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';
import { CHROMIUM, keepScreenshot, openChromium } from '../helpers/chromium.js';
import { reportSchemaErrors } from '../helpers/report-schema.js';

describeDocker('gauntlet demo (real Docker)', () => {
  it('runs every fault kind against both nodes, counts none as spontaneous, and matches each fault with its effect', async () => {
    const dir = tempDir();
    const r = await runCli(['demo', '--db', join(dir, 'g.db'), '--reports', join(dir, 'reports')]);
    expect(r.code, r.stderr).toBe(0);
    const reportPath = /^report: (\S+)\/report\.html/m.exec(r.stdout)?.[1];
    expect(reportPath, r.stdout).toBeDefined();
    const report = JSON.parse(readFileSync(join(reportPath as string, 'report.json'), 'utf8')) as ReportJson;

    expect(report.run.status).toBe('completed');
    expect(report.nodes.map((n) => n.name)).toEqual(['node-a', 'node-b']);
    // Every kind of the library is in the plan: run, or recorded with why not.
    const kinds = new Set([...report.faults.map((f) => f.kind), ...report.faults_not_run.map((f) => f.kind)]);
    expect([...kinds].sort()).toEqual(faultKinds());
    // Nodes with no spontaneous failures: nothing may be counted as one.
    expect(report.failures.spontaneous, JSON.stringify(report.episodes, null, 1)).toBe(0);
    expect(report.failures.recovery_failed).toBe(0);
    const landed = report.faults.filter((f) => f.injected_at !== null);
    expect(landed.length).toBe(9);
    expect(landed.every((f) => f.state === 'reverted'), JSON.stringify(report.faults, null, 1)).toBe(true);
    // Each injected fault is matched by its episode — or, for a delay below the episode
    // threshold, by the measured latency shift of the node's requests.
    for (const f of landed) {
      if (f.kind === 'latency') {
        // 300 ms on every response chunk. The median of the requests sent in the window, a few
        // of which left before the redirect took hold, moves by about that much.
        const shift = Math.max((f.effect?.during.e2e_p50_ms ?? 0) - (f.effect?.before.e2e_p50_ms ?? 0), (f.effect?.during.ttft_p50_ms ?? 0) - (f.effect?.before.ttft_p50_ms ?? 0));
        expect(f.episodes.length > 0 || shift >= 270, `${f.id}: ${JSON.stringify(f.effect)}`).toBe(true);
      } else if (f.kind === 'oom' && f.result?.outcome === 'survived') {
        expect(f.episodes, `${f.id} (pressure, survived) caused no failure`).toEqual([]);
      } else if (f.kind === 'packet-loss') {
        // Drops are seen by the kernel: packets matched, segments retransmitted.
        expect(f.result, f.id).toMatchObject({ dropped_packets: expect.any(Number), tcp_retransmits: expect.any(Number) });
        expect((f.result?.dropped_packets as number) > 0 && (f.result?.tcp_retransmits as number) > 0, JSON.stringify(f.result)).toBe(true);
      } else {
        expect(f.episodes.length, `${f.id} ${f.kind} matched by an episode`).toBeGreaterThanOrEqual(1);
      }
    }
    for (const e of report.episodes) {
      expect(e.status).toBe('recovered');
      expect(e.recovery_ms).toBeGreaterThan(0);
    }
    const oomKill = report.faults.find((f) => f.kind === 'oom' && f.result?.outcome !== 'survived');
    expect(oomKill?.result).toMatchObject({ outcome: 'oom_killed', oom_killed: true });
    expect(report.episodes.find((e) => e.fault_id === oomKill?.id)?.oom_killed).toBe(true);
    expect(report.faults_not_run.map((f) => f.kind)).toContain('gpu-memory-pressure');
    expect(report.nodes.every((n) => n.restarts !== null && n.restarts >= 1), JSON.stringify(report.nodes)).toBe(true);
    expect(report.requests.ok).toBeGreaterThan(500);
    expect(readFileSync(join(reportPath as string, 'report.md'), 'utf8')).toContain('### Not run');
    process.stderr.write(`demo: ${r.stdout.split('\n').filter((l) => /recovery|wall time|faults/.test(l)).join(' | ')}\n`);
    // the verdict is printed; the demo exits 0 whatever it is (2 minutes cannot show an MTBF)
    expect(r.stdout).toMatch(/^ {2}VERDICT (PASS|CONDITIONAL|FAIL): /m);
    expect(report.gates.find((g) => g.id === 'mtbf_lower_bound')?.verdict).toBe('fail');
    expect(reportSchemaErrors(report)).toEqual([]);

    // the demo's HTML report, as a person opens it: every chart drawn, no console error, a screenshot kept
    if (CHROMIUM || process.env.CI === 'true') {
      const chrome = await openChromium(join(dir, 'chromium'), '1100,1400');
      try {
        await chrome.navigate(`file://${join(reportPath as string, 'report.html')}`);
        const seen = await chrome.cdp.eval<{ charts: number; drawn: number; verdict: string }>(`(() => {
          const svgs = [...document.querySelectorAll('figure svg')];
          return { charts: svgs.length, drawn: svgs.filter((s) => s.getBoundingClientRect().width > 300 && s.querySelectorAll('path').length > 2).length, verdict: document.querySelector('.verdict')?.textContent ?? '' };
        })()`);
        expect(seen.charts).toBe(8);
        expect(seen.drawn).toBe(8);
        expect(seen.verdict).toMatch(/^Verdict: /);
        await keepScreenshot(chrome.cdp, 'demo-report.png', 1100, 8000);
        expect(chrome.errors().map((e) => JSON.stringify(e.params).slice(0, 300))).toEqual([]);
      } finally {
        await chrome.close();
      }
    }

    const docker = dockerClient();
    for (const n of DEMO_NODES) expect(await inspectContainer(docker, n.name)).toBeNull();
  }, 300_000);
});
