// `gauntlet plan-test`: how long must a certification run, and what can a run of a given length
// show? Time-terminated (node-hours to demonstrate the target with 0, 1, 2 … failures) and
// sequential (MIL-HDBK-781's probability-ratio test: its lines, truncation, true risks and
// expected test time), every figure with its confidence.
import { GauntletError } from '../errors.js';
import { planTest, type TestPlanAnswer } from '../analysis/mtbf.js';
import { MIL_HDBK_781_PRST, sequentialAnswer, type SequentialAnswer, type SequentialSpec } from '../analysis/sprt.js';
import { parseDuration } from '../util/duration.js';

export interface PlanTestFlags {
  mtbf: string;
  confidence: string;
  nodes: string;
  hours?: string;
  failures: string;
  discrimination: string;
  alpha: string;
  beta: string;
  milPlan?: string;
  json?: boolean;
}


function bad(flag: string, got: string, expected: string): GauntletError {
  return new GauntletError('GAUNTLET_CLI_FLAG', [flag, `got ${JSON.stringify(got)}; expected ${expected}`]);
}

function number(flag: string, raw: string, ok: (n: number) => boolean, expected: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !ok(n)) throw bad(flag, raw, expected);
  return n;
}

export function parsePlanTestFlags(o: PlanTestFlags): { targetHours: number; confidences: number[]; nodes: number; runHours?: number; maxFailures: number; sequential: SequentialSpec } {
  const ms = parseDuration(o.mtbf);
  if (ms === undefined || !(ms > 0)) throw bad('--mtbf', o.mtbf, 'a duration such as 1000h or 42d');
  const targetHours = ms / 3_600_000;
  const confidences = o.confidence.split(',').map((c) => number('--confidence', c, (n) => n > 0 && n < 1, 'confidences between 0 and 1, e.g. 0.8,0.9'));
  const nodes = number('--nodes', o.nodes, (n) => Number.isInteger(n) && n >= 1 && n <= 100_000, 'a whole number of nodes ≥ 1');
  let runHours: number | undefined;
  if (o.hours !== undefined) {
    const h = parseDuration(o.hours);
    if (h === undefined || !(h > 0)) throw bad('--hours', o.hours, 'a duration such as 72h');
    runHours = h / 3_600_000;
  }
  const maxFailures = number('--failures', o.failures, (n) => Number.isInteger(n) && n >= 0 && n <= 50, 'a whole number from 0 to 50');
  let name: string | null = null;
  let d = number('--discrimination', o.discrimination, (n) => n > 1 && n <= 100, 'a ratio θ0/θ1 above 1, e.g. 2');
  let alpha = number('--alpha', o.alpha, (n) => n > 0 && n < 0.5, "the producer's risk, between 0 and 0.5");
  let beta = number('--beta', o.beta, (n) => n > 0 && n < 0.5, "the consumer's risk, between 0 and 0.5");
  if (o.milPlan !== undefined) {
    const p = MIL_HDBK_781_PRST[o.milPlan.toUpperCase()];
    if (!p) throw bad('--mil-plan', o.milPlan, `one of ${Object.keys(MIL_HDBK_781_PRST).join(', ')}`);
    name = o.milPlan.toUpperCase();
    ({ d, alpha, beta } = p);
  }
  return { targetHours, confidences, nodes, ...(runHours !== undefined ? { runHours } : {}), maxFailures, sequential: { name, theta0Hours: targetHours, theta1Hours: targetHours / d, alpha, beta } };
}


const num = (h: number): string => (h >= 10_000 ? Math.round(h).toLocaleString('en-US') : h >= 100 ? h.toFixed(0) : h.toFixed(1));
const hrs = (h: number): string => `${num(h)} h`;
const nh = (h: number): string => `${num(h)} node-hours`;
const wall = (h: number): string => (h >= 48 ? `${hrs(h)} (${(h / 24).toFixed(1)} days)` : hrs(h));
const pct = (p: number): string => `${(p * 100).toFixed(p < 0.1 ? 2 : 1)} %`;

export function formatPlanTest(answers: TestPlanAnswer[], seq: SequentialAnswer): string[] {
  const lines: string[] = [];
  const first = answers[0] as TestPlanAnswer;
  const n = first.nodes;
  for (const a of answers) {
    lines.push(`To show MTBF ≥ ${hrs(a.targetHours)} at ${pct(a.confidence)} confidence on ${n} node${n > 1 ? 's' : ''} (hours pooled, a time-terminated test):`);
    lines.push('  failures allowed   node-hours   wall time');
    for (const f of a.byFailures) lines.push(`  ${String(f.failures).padEnd(17)}  ${num(f.nodeHours).padEnd(11)}  ${wall(f.wallHours)}`);
    if (a.run) {
      const shown = a.run.lowerBounds.map((b) => `${b.failures} failure${b.failures === 1 ? '' : 's'}: MTBF ≥ ${hrs(b.hours)}`).join('; ');
      const ok = (a.run.lowerBounds[0] as { hours: number }).hours >= a.targetHours;
      lines.push(`  A ${hrs(a.run.hours)} run on ${n} node${n > 1 ? 's' : ''} (${nh(a.run.nodeHours)}) shows at ${pct(a.confidence)}: ${shown}${ok ? '' : ` — not ${hrs(a.targetHours)}, even with no failure`}.`);
    }
    lines.push('');
  }
  lines.push(`Sequential (${seq.plan ? `MIL-HDBK-781 PRST plan ${seq.plan}, ` : ''}probability-ratio test): θ0 = ${hrs(seq.theta0Hours)} accepted with probability 1 − α, θ1 = ${hrs(seq.theta1Hours)} (d = ${seq.discrimination}) accepted with probability β; α = ${pct(seq.alpha)}, β = ${pct(seq.beta)} nominal.`);
  lines.push(`  reject at a failure that brings the count to ≥ ${seq.lines.rejectIntercept.toFixed(2)} + ${seq.lines.slopePerNodeHour.toPrecision(3)} × node-hours; accept once it is ≤ ${seq.lines.acceptIntercept.toFixed(2)} + ${seq.lines.slopePerNodeHour.toPrecision(3)} × node-hours`);
  const fixed = `the fixed-duration test with these risks accepts with ≤ ${seq.fixedDuration.acceptFailures} failures in ${nh(seq.fixedDuration.nodeHours)} (exact risks ${pct(seq.fixedDuration.alpha)} / ${pct(seq.fixedDuration.beta)})`;
  lines.push(
    seq.plan
      ? `  truncated at ${seq.truncation.failures} failures (reject) or ${nh(seq.truncation.nodeHours)} (accept), the plan's own lines and truncation as MIL-HDBK-781A tabulates them; ${fixed}`
      : `  truncated at ${seq.truncation.failures} failures (reject) or ${nh(seq.truncation.nodeHours)} (accept): the shortest fixed-duration test with these risks (${fixed.replace('the fixed-duration test with these risks ', '')})`,
  );
  lines.push(`  true risks of the truncated test: α′ = ${pct(seq.trueRisks.alpha)}, β′ = ${pct(seq.trueRisks.beta)}`);
  lines.push(`  expected test time on ${n} node${n > 1 ? 's' : ''}: ${wall(seq.expectedNodeHours.atTheta0 / n)} (${nh(seq.expectedNodeHours.atTheta0)}) if the MTBF is θ0, ${wall(seq.expectedNodeHours.atTheta1 / n)} if it is θ1; the fixed-duration test always takes ${wall(seq.fixedDuration.nodeHours / n)}`);
  return lines;
}

export function runPlanTest(o: PlanTestFlags): { text: string[]; json: Record<string, unknown> } {
  const f = parsePlanTestFlags(o);
  const answers = f.confidences.map((c) => planTest({ targetHours: f.targetHours, confidence: c, nodes: f.nodes, maxFailures: f.maxFailures, ...(f.runHours !== undefined ? { runHours: f.runHours } : {}) }));
  const seq = sequentialAnswer(f.sequential);
  return { text: formatPlanTest(answers, seq), json: { time_terminated: answers, sequential: seq } };
}
