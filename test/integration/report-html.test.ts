// The reports a run leaves, as people and CI read them: a 3 h run of two nodes on the virtual
// clock, node-b crashed twice, node-a's container memory growing all along (the stand-in
// engine's stats climb 36 MB/h from each start), then report.json (gates, reliability), junit.xml (one case per gate) and
// report.html — opened in headless Chromium from the file, with no network: it renders every
// chart as SVG, shows the verdict first, and logs no error. A screenshot is kept.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import type { ReportJson } from '../../src/report/build.js';
import { runPlan } from '../../src/run/runner.js';
import { openStore } from '../../src/store/store.js';
import { VirtualClock } from '../../src/util/clock.js';
import { seededRandom } from '../../src/util/random.js';
import { CHROMIUM, keepScreenshot, openChromium } from '../helpers/chromium.js';
import { reportSchemaErrors } from '../helpers/report-schema.js';
import { tempDir } from '../helpers/tmp.js';
import { driveVirtual, VirtualCluster } from '../helpers/virtual-cluster.js';

const inCi = process.env.CI === 'true';
const dir = tempDir();
let reportDir = '';
let report: ReportJson;

beforeAll(async () => {
  const plan = parsePlanText(`
name: reports
duration: 3h
seed: 11
targets:
  - { name: node-a, label: node-a }
  - { name: node-b, label: node-b }
load: { rate: 0.5, arrival: poisson, api: chat, prompt_tokens: 64, max_tokens: 16, stream: true, timeout: 60s, window: 10s }
faults:
  - { kind: node-kill, target: node-b, at: 1h }
  - { kind: node-kill, target: node-b, at: 2h }
probes: { interval: 10s, timeout: 2s, failures: 2, fast_interval: 1s }
telemetry: { interval: 30s }
recovery_limit: 5m
ready_timeout: 1m
gates: { ttft: { p50: 5s, p99: 10s }, tpot: false }
`);
  const clock = new VirtualClock(Date.UTC(2026, 11, 1));
  const cluster = new VirtualCluster(clock);
  cluster.add({ name: 'virtual-a', label: 'node-a', port: 18_021 });
  cluster.add({ name: 'virtual-b', label: 'node-b', port: 18_022 });
  const store = openStore(join(dir, 'reports.db'));
  const result = await driveVirtual(clock, runPlan(plan, null, { store, clock, log: silentLogger, ...cluster.stands, reportsDir: join(dir, 'reports'), signal: new AbortController().signal, random: seededRandom(plan.seed) }), () => {});
  expect(result.status, result.error ?? '').toBe('completed');
  reportDir = result.reportDir;
  report = JSON.parse(readFileSync(join(reportDir, 'report.json'), 'utf8')) as ReportJson;
  store.close();
}, 120_000);

describe('the reports of a run', () => {
  it('report.json: the verdict from the gates, memory growth found, the sequential test and trends stated', () => {
    expect(report.schema_version).toBe(1);
    expect(reportSchemaErrors(report)).toEqual([]);
    const byId = Object.fromEntries(report.gates.map((g) => [g.id, g]));
    // 6 node-hours cannot show 100 h; node-a's growing memory is a leak (node-b's restarts reset its own); two crashes recovered
    expect(byId.mtbf_lower_bound?.verdict).toBe('fail');
    expect(byId.memory_growth?.verdict).toBe('fail');
    expect(byId.memory_growth?.reason).toMatch(/^grows \(95 % interval of the slope above 0\): node-a container 34\.\d MiB\/h, 82\d\.\d MiB per 24 h, at its limit in /);
    expect(report.memory.filter((m) => m.growing).map((m) => m.node)).toEqual(['node-a']);
    expect(byId.recovery?.verdict).toBe('pass');
    expect(byId.spontaneous_failures).toMatchObject({ verdict: 'pass', value: 0 });
    expect(byId.failover_outage?.verdict).toBe('not_measured');
    expect(report.verdict).toBe('fail');
    expect(report.verdict_fails_run).toBe(true);
    const rel = report.reliability;
    expect(rel.mtbf_bounds.map((b) => b.confidence)).toEqual([0.8, 0.9]);
    // no failure: 2T / χ²(0.9; 2) = T / ln 10
    expect(rel.mtbf_bounds[1]?.lower_bound_hours).toBeCloseTo(report.exposure_node_hours / Math.log(10), 3);
    expect(rel.sequential).toMatchObject({ decision: 'continue', failures: 0, theta0_hours: 1000, theta1_hours: 500, truncation: { failures: 15 } });
    expect(rel.trend.failures.events).toBe(0);
    expect(rel.recovery_by.filter((x) => x.group === 'kind').map((x) => [x.key, x.count])).toEqual([['node-kill', 2]]);
    expect(rel.throughput.requests_per_s).toBeGreaterThan(0.4);
    // goodput against the SLO the gates imply: ttft ≤ their p99 line (10 s), no tpot gate
    expect(report.requests.goodput).toMatchObject({ slo_ttft_ms: 10_000, slo_tpot_ms: null, total: report.requests.total });
    expect(report.requests.goodput?.good).toBe(report.requests.ok);
  });

  it('junit.xml: one test case per gate and two for the run, failures for the failed gates', () => {
    const xml = readFileSync(join(reportDir, 'junit.xml'), 'utf8');
    const cases = xml.match(/<testcase /g) ?? [];
    expect(cases.length).toBe(report.gates.length + 2);
    const failed = report.gates.filter((g) => g.verdict === 'fail').length;
    expect(xml).toMatch(new RegExp(`<testsuites name="gauntlet" tests="${cases.length}" failures="${failed}" errors="0" skipped="${report.gates.filter((g) => g.verdict === 'not_measured').length}"`));
    expect(xml).toContain('name="memory_growth: Memory growth"');
    expect((xml.match(/<failure /g) ?? []).length).toBe(failed);
  });

  it('report.html stands alone: nothing fetched from anywhere, every chart drawn as SVG', () => {
    const html = readFileSync(join(reportDir, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script/i);
    // the only URLs are SVG's namespaces
    expect([...html.matchAll(/(?:src|href)\s*=\s*"([^"]+)"/g)].map((m) => m[1])).toEqual([]);
    for (const id of ['rate', 'ttft', 'errors', 'states', 'recovery', 'memory', 'mtbf', 'sprt']) expect(html).toMatch(new RegExp(`<figure id="chart-${id}"><h3>[^<]+</h3><svg`));
    expect(html).not.toContain('could not be drawn');
    expect(html.indexOf('Verdict: FAIL')).toBeLessThan(html.indexOf('<h2>MTBF</h2>'));
  });

  describe.skipIf(!CHROMIUM && !inCi)('in headless Chromium', () => {
    let chrome: Awaited<ReturnType<typeof openChromium>>;
    beforeAll(async () => {
      if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install -y chromium): CI must run the report test');
      chrome = await openChromium(join(dir, 'chromium'), '1100,1400');
    }, 60_000);
    afterAll(() => chrome?.close());

    it('renders with no console error: verdict, gates, eight charts with marks; screenshot kept', async () => {
      const file = join(reportDir, 'report.html');
      expect(existsSync(file)).toBe(true);
      await chrome.navigate(`file://${file}`);
      const seen = await chrome.cdp.eval<{ charts: number; drawn: number; verdict: string; gates: number }>(`(() => {
        const svgs = [...document.querySelectorAll('figure svg')];
        return {
          charts: svgs.length,
          drawn: svgs.filter((s) => s.getBoundingClientRect().width > 300 && s.querySelectorAll('path').length > 2).length,
          verdict: document.querySelector('.verdict')?.textContent ?? '',
          gates: document.querySelectorAll('table')[0]?.querySelectorAll('tbody tr').length ?? 0,
        };
      })()`);
      expect(seen).toMatchObject({ charts: 8, drawn: 8, gates: report.gates.length });
      expect(seen.verdict).toMatch(/^Verdict: FAIL/);
      await keepScreenshot(chrome.cdp, 'report-html.png', 1100, 6000);
      expect(chrome.errors().map((e) => JSON.stringify(e.params).slice(0, 300))).toEqual([]);
    }, 60_000);
  });
});
