// Writes the JSON Schema of report.json (src/report/report.schema.json) from the ReportJson type
// itself, so the published schema cannot drift from what the code writes: a test regenerates it
// and compares. Run after changing ReportJson: npm run schema
import { writeFileSync } from 'node:fs';
import { createGenerator } from 'ts-json-schema-generator';

export function reportSchema() {
  const schema = createGenerator({ path: 'src/report/build.ts', tsconfig: 'tsconfig.json', type: 'ReportJson', skipTypeCheck: true, expose: 'export', topRef: false, additionalProperties: false, sortProps: true }).createSchema('ReportJson');
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'urn:gauntlet:report:1',
    title: 'Gauntlet report.json (schema gauntlet.report/1, schema_version 1)',
    description: 'What a Gauntlet run reports: times ISO 8601 UTC, durations ms, exposure node-hours. Fields are documented in README.md (report.json). Generated from src/report/build.ts (ReportJson) by scripts/report-schema.mjs.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  writeFileSync('src/report/report.schema.json', `${JSON.stringify(reportSchema(), null, 2)}\n`);
  process.stdout.write('wrote src/report/report.schema.json\n');
}
