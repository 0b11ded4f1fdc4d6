// report.json checked against its published JSON Schema (ajv): every problem named by its path.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { packageRoot } from '../../src/util/paths.js';

let validate: ReturnType<Ajv['compile']> | null = null;

/** The schema's complaints about a report, as "path: message" lines (empty when it conforms). */
export function reportSchemaErrors(report: unknown): string[] {
  validate ??= new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(`${packageRoot()}/src/report/report.schema.json`, 'utf8')) as object);
  return validate(report) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? '?'} ${JSON.stringify(e.params)}`);
}
