// Writes a run's reports to <reportsDir>/<run-id>/: report.json (machines) and report.md (people).
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/store.js';
import { buildReport } from './build.js';
import { renderMarkdown } from './markdown.js';
import { ensureDir } from '../util/fs.js';

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export function writeReports(store: Store, runId: string, reportsDir: string): string {
  const { report, plan } = buildReport(store, runId);
  const dir = join(reportsDir, runId);
  ensureDir(dir, 'reports folder');
  writeAtomic(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeAtomic(join(dir, 'report.md'), renderMarkdown(report, plan));
  return dir;
}
