// Reads and validates a plan. A bad plan fails here, before anything starts, with every
// problem listed as `file:line: field: got <value>; expected …`.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { FAULTS, faultKinds } from '../../faults/index.js';
import { GauntletError } from '../errors.js';
import { PlanSchema, type Plan } from './schema.js';

export interface PlanProblem {
  path: string;
  line?: number;
  message: string;
}

function pathText(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || '(plan)';
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

function issueText(issue: z.core.$ZodIssue): string {
  // A refinement over a whole object carries that object as its input: naming it adds noise.
  const objectInput = issue.code === 'custom' && typeof issue.input === 'object' && issue.input !== null && !Array.isArray(issue.input);
  const got = 'input' in issue && issue.code !== 'unrecognized_keys' && !objectInput ? `got ${show(issue.input)}; ` : '';
  const msg = issue.message.replace(/^Invalid input: /, '').replace(/^Invalid option: /, '');
  return `${got}${msg}`;
}

/** Validates a parsed plan object; throws GAUNTLET_PLAN_INVALID listing every problem. */
export function validatePlan(raw: unknown, source = 'plan', locate?: (path: readonly PropertyKey[]) => number | undefined): Plan {
  const problems: PlanProblem[] = [];
  const add = (path: readonly PropertyKey[], message: string): void => {
    const line = locate?.(path);
    problems.push({ path: pathText(path), message, ...(line !== undefined ? { line } : {}) });
  };
  const r = PlanSchema.safeParse(raw, { reportInput: true });
  if (!r.success) {
    for (const issue of r.error.issues) add(issue.path, issueText(issue));
    throw planError(source, problems);
  }
  const plan = r.data;
  const names = new Set<string>();
  plan.targets.forEach((t, i) => {
    if (names.has(t.name)) add(['targets', i, 'name'], `got ${show(t.name)}; target names must be unique`);
    names.add(t.name);
  });
  if (plan.service && names.has(plan.service.name)) add(['service', 'name'], `got ${show(plan.service.name)}; the service needs a name of its own, not a target's`);
  plan.faults.forEach((f, i) => {
    const injector = FAULTS[f.kind];
    if (!injector) {
      add(['faults', i, 'kind'], `got ${show(f.kind)}; expected one of ${faultKinds().join(', ')}`);
      return;
    }
    const target = plan.targets.find((t) => t.name === f.target);
    if (!target) add(['faults', i, 'target'], `got ${show(f.target)}; expected one of the plan's targets (${[...names].join(', ')})`);
    else if (injector.needsContainer && !target.container && !target.label) {
      add(['faults', i, 'target'], `${f.kind} needs a container target, but ${show(f.target)} is a bare endpoint (give it container: or label:)`);
    }
    const at = f.at ?? f.start ?? f.every ?? 0;
    if (at >= plan.duration) add(['faults', i, f.at !== undefined ? 'at' : 'start'], `fault at ${at / 1000}s never happens: the plan lasts ${plan.duration / 1000}s`);
    const p = injector.params.safeParse(f.params, { reportInput: true });
    if (!p.success) for (const issue of p.error.issues) add(['faults', i, 'params', ...issue.path], issueText(issue));
    else f.params = p.data as Record<string, unknown>;
  });
  if (problems.length > 0) throw planError(source, problems);
  return plan;
}

function planError(source: string, problems: PlanProblem[]): GauntletError {
  const lines = problems.map((p) => `  ${p.line !== undefined ? `${source}:${p.line}: ` : ''}${p.path}: ${p.message}`);
  return new GauntletError('GAUNTLET_PLAN_INVALID', [source, lines.join('\n')], { details: problems });
}

function locator(doc: Document, lc: LineCounter): (path: readonly PropertyKey[]) => number | undefined {
  return (path) => {
    // The deepest node that exists along the path: an unknown key points at its parent.
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true);
      if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
    }
    return undefined;
  };
}

/** Parses plan text (YAML or JSON). */
export function parsePlanText(text: string, source = 'plan'): Plan {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new GauntletError('GAUNTLET_PLAN_YAML', [source, doc.errors.map((e) => e.message).join('\n')]);
  }
  return validatePlan(doc.toJS(), source, locator(doc, lc));
}

export function loadPlanFile(path: string): Plan {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new GauntletError('GAUNTLET_PLAN_UNREADABLE', [path, (err as NodeJS.ErrnoException).code ?? (err as Error).message]);
  }
  return parsePlanText(text, path);
}
