// The Grafana dashboard in the repository asks only for metrics the daemon exports, and shows each.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DaemonMetrics, METRIC_NAMES } from '../../../src/daemon/metrics.js';

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

describe('the Grafana dashboard', () => {
  const dash = JSON.parse(readFileSync(new URL('../../../src/daemon/grafana-dashboard.json', import.meta.url), 'utf8')) as { panels: Panel[]; uid: string };
  const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

  it('every metric a panel asks for is one the daemon exports (histogram series by their base name)', async () => {
    const exported = new Set<string>(METRIC_NAMES);
    // the process metrics prom-client adds, as the daemon's registry names them
    const m = new DaemonMetrics();
    for (const line of (await m.registry.metrics()).split('\n')) {
      const name = /^# TYPE (\S+) /.exec(line)?.[1];
      if (name) exported.add(name);
    }
    for (const n of METRIC_NAMES) expect(exported.has(n), n).toBe(true);
    for (const { panel, expr } of exprs) {
      for (const used of expr.match(/gauntlet_[a-z0-9_]+/g) ?? []) {
        const base = used.replace(/_(bucket|count|sum)$/, '');
        expect(exported.has(base), `${panel}: ${used}`).toBe(true);
      }
    }
  });

  it('shows every metric the daemon exports', () => {
    const all = exprs.map((e) => e.expr).join('\n');
    for (const n of METRIC_NAMES) expect(all, n).toContain(n);
  });
});
