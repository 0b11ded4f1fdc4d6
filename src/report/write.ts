// Writes a run's reports to <reportsDir>/<run-id>/: report.json and junit.xml (machines),
// report.md (a pull-request comment) and report.html (people: the verdict, the numbers, charts).
// The machine files are written first and each atomically: a chart that cannot be drawn costs
// that chart (the page says why), never the record.
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/store.js';
import { errorMessage } from '../errors.js';
import { buildReport } from './build.js';
import { chartData, chartSpecs, renderSvg, type ChartSpec } from './charts.js';
import { renderHtml } from './html.js';
import { renderJunit } from './junit.js';
import { renderMarkdown } from './markdown.js';
import { DEFAULT_GATES } from '../plan/schema.js';
import { ensureDir } from '../util/fs.js';

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export async function writeReports(store: Store, runId: string, reportsDir: string): Promise<string> {
  const { report, plan } = buildReport(store, runId);
  const dir = join(reportsDir, runId);
  ensureDir(dir, 'reports folder');
  writeAtomic(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeAtomic(join(dir, 'junit.xml'), renderJunit(report, (plan.gates ?? DEFAULT_GATES).conditional_fails));
  writeAtomic(join(dir, 'report.md'), renderMarkdown(report, plan));
  const charts: { chart: ChartSpec; svg: string }[] = [];
  const failed = (err: unknown): string => `<p class="warn">This chart could not be drawn: ${errorMessage(err).replace(/[<>&]/g, ' ')}</p>`;
  let specs: ChartSpec[] = [];
  try {
    specs = chartSpecs(chartData(store, report, plan.load.window), report);
  } catch (err) {
    charts.push({ chart: { id: 'none', title: 'Charts', caption: 'The series for the charts could not be read.', spec: {} as ChartSpec['spec'] }, svg: failed(err) });
  }
  for (const chart of specs) {
    let svg: string;
    try {
      svg = await renderSvg(chart.spec);
    } catch (err) {
      svg = failed(err);
    }
    charts.push({ chart, svg });
  }
  writeAtomic(join(dir, 'report.html'), renderHtml(report, charts));
  return dir;
}
