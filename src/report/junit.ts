// junit.xml: one test case per release gate, so a CI system shows the verdict as it shows tests
// (a failed gate is a failure with its reason, a conditional one passes with the reason as
// output unless the plan makes conditional fail, an unmeasured one is skipped with why), and
// one case for the load generator: numbers taken while it was behind are not the server's.
import type { ReportJson } from './build.js';

const esc = (s: string): string =>
  s
    // characters XML 1.0 cannot carry at all
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

export function renderJunit(r: ReportJson, conditionalFails: boolean): string {
  const suite = `gauntlet.${r.run.plan}`;
  const cases: string[] = [];
  let failures = 0;
  let skipped = 0;
  for (const g of r.gates) {
    const head = `    <testcase classname="${esc(suite)}.gates" name="${esc(`${g.id}: ${g.title}`)}" time="0">`;
    if (g.verdict === 'fail' || (g.verdict === 'conditional' && conditionalFails)) {
      failures++;
      cases.push(`${head}\n      <failure type="${g.verdict}" message="${esc(g.reason)}">${esc(`${g.title}: ${g.verdict}\n${g.reason}`)}</failure>\n    </testcase>`);
    } else if (g.verdict === 'not_measured') {
      skipped++;
      cases.push(`${head}\n      <skipped message="${esc(`not measured: ${g.reason}`)}"/>\n    </testcase>`);
    } else {
      cases.push(`${head}\n      <system-out>${esc(`${g.verdict}: ${g.reason}`)}</system-out>\n    </testcase>`);
    }
  }
  const gen = r.generator;
  const genHead = `    <testcase classname="${esc(suite)}.run" name="load generator kept up" time="0">`;
  if (!gen.kept_up) {
    failures++;
    cases.push(`${genHead}\n      <failure type="generator_saturated" message="${esc(`behind ${(gen.behind_share * 100).toFixed(1)} % of the load (limit ${(gen.limit_share * 100).toFixed(0)} %): latency there is the generator's, not the server's`)}"/>\n    </testcase>`);
  } else cases.push(`${genHead}\n      <system-out>${esc(`behind ${(gen.behind_share * 100).toFixed(1)} % of the load (limit ${(gen.limit_share * 100).toFixed(0)} %)`)}</system-out>\n    </testcase>`);
  const statusHead = `    <testcase classname="${esc(suite)}.run" name="run completed" time="0">`;
  if (r.run.status !== 'completed') {
    failures++;
    cases.push(`${statusHead}\n      <failure type="${esc(r.run.status)}" message="${esc(`the run ended ${r.run.status}${r.run.error ? `: ${r.run.error}` : ''}`)}"/>\n    </testcase>`);
  } else cases.push(`${statusHead}</testcase>`);
  const seconds = r.run.ended_at ? Math.max(0, (Date.parse(r.run.ended_at) - Date.parse(r.run.started_at)) / 1000) : 0;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="gauntlet" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${seconds.toFixed(3)}">`,
    `  <testsuite name="${esc(suite)}" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${seconds.toFixed(3)}" timestamp="${esc(r.run.started_at.replace(/Z$/, ''))}" hostname="${esc(r.run.host ?? 'localhost')}">`,
    '    <properties>',
    `      <property name="run_id" value="${esc(r.run.id)}"/>`,
    `      <property name="verdict" value="${r.verdict}"/>`,
    `      <property name="exposure_node_hours" value="${r.exposure_node_hours}"/>`,
    `      <property name="mtbf_lower_bound_hours" value="${r.mtbf.lower_bound_hours}"/>`,
    '    </properties>',
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
