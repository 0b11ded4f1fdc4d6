// The published JSON Schema of report.json is the ReportJson type's: regenerated here from the
// code and compared with the committed file, so a field added, renamed or retyped without
// `npm run schema` fails. (The reports real runs write are validated against it in
// test/integration/report-html.test.ts and the CLI's e2e test.)
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { reportSchema } from '../../../scripts/report-schema.mjs';

it('src/report/report.schema.json is what the ReportJson type says (run npm run schema after changing it)', () => {
  const committed = JSON.parse(readFileSync(new URL('../../../src/report/report.schema.json', import.meta.url), 'utf8')) as unknown;
  expect(committed).toEqual(reportSchema());
}, 60_000);
