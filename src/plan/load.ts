// Reads and validates a plan. A bad plan fails here, before anything starts, with every
// problem listed as `file:line: field: got <value>; expected …`.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { FAULTS, faultKinds } from '../../faults/index.js';
import { GauntletError, type ErrorCode } from '../errors.js';
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

/** Edit distance with transpositions (optimal string alignment), for "did you mean": "prot" is one from "port". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const up = d[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/** The keys an object schema allows at `path` (through arrays, optionals, defaults, unions, pipes). */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let nodes: z.ZodType[] = [schema];
  const expand = (n: z.ZodType): z.ZodType[] => {
    const def = (n as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
    switch (def.type) {
      case 'optional':
      case 'default':
      case 'nullable':
      case 'prefault':
      case 'readonly':
        return expand(def.innerType as z.ZodType);
      case 'pipe':
        return expand(def.in as z.ZodType);
      case 'union':
        return (def.options as z.ZodType[]).flatMap(expand);
      default:
        return [n];
    }
  };
  for (const step of path) {
    const next: z.ZodType[] = [];
    for (const n of nodes.flatMap(expand)) {
      const def = (n as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
      if (def.type === 'object' && typeof step === 'string') {
        const child = (def.shape as Record<string, z.ZodType>)[step];
        if (child) next.push(child);
      } else if (def.type === 'array' && typeof step === 'number') next.push(def.element as z.ZodType);
      else if (def.type === 'record') next.push(def.valueType as z.ZodType);
    }
    nodes = next;
  }
  const keys = new Set<string>();
  for (const n of nodes.flatMap(expand)) {
    const def = (n as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
    if (def.type === 'object') for (const k of Object.keys(def.shape as object)) keys.add(k);
  }
  return [...keys];
}

/** "did you mean …" for a key that is close to an allowed one. */
function suggestion(key: string, allowed: string[]): string {
  let best: string | null = null;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of allowed) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  const near = best !== null && (bestD <= Math.max(1, Math.floor(key.length / 3)) || best.startsWith(key) || key.startsWith(best));
  return near ? `; did you mean ${JSON.stringify(best)}?` : allowed.length > 0 ? `; expected one of ${allowed.join(', ')}` : '';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks across fields, on the plan as written (so they are reported together with the schema's
 * problems, not only once those are fixed): unique target names, the service's name, each
 * fault's kind, target and parameters. Needs only what it checks to be well-formed.
 */
function crossCheck(raw: unknown, add: (path: readonly PropertyKey[], message: string) => void): Map<number, Record<string, unknown>> {
  /** Each fault's parameters as its kind's schema parsed them (defaults filled in), by index. */
  const parsed = new Map<number, Record<string, unknown>>();
  if (!isObject(raw)) return parsed;
  const targets = Array.isArray(raw.targets) ? raw.targets.filter(isObject) : [];
  const names = new Set<string>();
  (Array.isArray(raw.targets) ? raw.targets : []).forEach((t: unknown, i: number) => {
    if (!isObject(t) || typeof t.name !== 'string') return;
    if (names.has(t.name)) add(['targets', i, 'name'], `got ${show(t.name)}; target names must be unique`);
    names.add(t.name);
  });
  const engines = new Set<string>();
  (Array.isArray(raw.engines) ? raw.engines : []).forEach((e: unknown, i: number) => {
    if (!isObject(e) || typeof e.name !== 'string') return;
    if (engines.has(e.name)) add(['engines', i, 'name'], `got ${show(e.name)}; engine names must be unique`);
    engines.add(e.name);
  });
  (Array.isArray(raw.targets) ? raw.targets : []).forEach((t: unknown, i: number) => {
    if (isObject(t) && typeof t.engine === 'string' && !engines.has(t.engine)) {
      add(['targets', i, 'engine'], `got ${show(t.engine)}; expected one of the plan's engines (${[...engines].join(', ') || 'none: add engines: [{ name, host }]'})`);
    }
  });
  // k6 on Kubernetes: the runners reach the targets from inside the cluster, through the
  // endpoints the plan gives (a container's published port on this machine is not theirs to reach)
  if (isObject(raw.load) && raw.load.k6_operator !== undefined && !isObject(raw.service)) {
    (Array.isArray(raw.targets) ? raw.targets : []).forEach((t: unknown, i: number) => {
      if (isObject(t) && t.endpoint === undefined) add(['targets', i, 'endpoint'], 'with load.k6_operator, give each target an endpoint the cluster can reach (and this machine, for the probes), or a service endpoint');
    });
  }
  if (isObject(raw.service) && typeof raw.service.name === 'string' && names.has(raw.service.name)) {
    add(['service', 'name'], `got ${show(raw.service.name)}; the service needs a name of its own, not a target's`);
  }
  (Array.isArray(raw.faults) ? raw.faults : []).forEach((f: unknown, i: number) => {
    if (!isObject(f)) return;
    if (typeof f.kind === 'string') {
      const injector = FAULTS[f.kind];
      if (!injector) add(['faults', i, 'kind'], `got ${show(f.kind)}${suggestion(f.kind, faultKinds())}`);
      else {
        const p = injector.params.safeParse(f.params ?? {}, { reportInput: true });
        if (!p.success) for (const issue of p.error.issues) add(['faults', i, 'params', ...issue.path], issueText(issue));
        else parsed.set(i, p.data as Record<string, unknown>);
        const target = typeof f.target === 'string' ? targets.find((t) => t.name === f.target) : undefined;
        if (typeof f.target === 'string' && target && injector.needsContainer && !target.container && !target.label) {
          add(['faults', i, 'target'], `${f.kind} needs a container target, but ${show(f.target)} is a bare endpoint (give it container: or label:)`);
        }
      }
    }
    if (typeof f.target === 'string' && names.size > 0 && !names.has(f.target)) {
      add(['faults', i, 'target'], `got ${show(f.target)}; expected one of the plan's targets (${[...names].join(', ')})`);
    }
  });
  return parsed;
}

type Locate = (path: readonly PropertyKey[]) => number | undefined;

/** Problems as they are found, each with its line when `locate` knows it. */
function collector(locate?: Locate): { problems: PlanProblem[]; add: (path: readonly PropertyKey[], message: string) => void } {
  const problems: PlanProblem[] = [];
  const add = (path: readonly PropertyKey[], message: string): void => {
    const line = locate?.(path);
    problems.push({ path: pathText(path), message, ...(line !== undefined ? { line } : {}) });
  };
  return { problems, add };
}

/** YAML (or JSON) text as a value, with where each path of it is; not YAML: `code`. */
function readYaml(text: string, source: string, code: ErrorCode): { raw: unknown; locate: Locate } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new GauntletError(code, [source, doc.errors.map((e) => e.message).join('\n')]);
  return { raw: doc.toJS(), locate: locator(doc, lc) };
}

/** Parses with the schema, handing every problem to `add`: each unknown key at its own line, with the key it was probably meant to be. */
function parseReporting<S extends z.ZodType>(schema: S, raw: unknown, add: (path: readonly PropertyKey[], message: string) => void): ReturnType<S['safeParse']> {
  const r = schema.safeParse(raw, { reportInput: true });
  if (!r.success) {
    for (const issue of r.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        const allowed = keysAt(schema, issue.path);
        for (const key of issue.keys) add([...issue.path, key], `unknown key${suggestion(key, allowed)}`);
      } else add(issue.path, issueText(issue));
    }
  }
  return r as ReturnType<S['safeParse']>;
}

/** Validates a parsed plan object; throws GAUNTLET_PLAN_INVALID listing every problem. */
export function validatePlan(raw: unknown, source = 'plan', locate?: Locate): Plan {
  const { problems, add } = collector(locate);
  const r = parseReporting(PlanSchema, raw, add);
  const params = crossCheck(raw, add);
  if (!r.success || problems.length > 0) throw planError(source, dedupe(problems));
  const plan = r.data;
  plan.faults.forEach((f, i) => {
    const injector = FAULTS[f.kind];
    if (!injector) return;
    const at = f.at ?? f.start ?? f.every ?? 0;
    if (at >= plan.duration) add(['faults', i, f.at !== undefined ? 'at' : 'start'], `fault at ${at / 1000}s never happens: the plan lasts ${plan.duration / 1000}s`);
    f.params = params.get(i) ?? f.params;
  });
  if (problems.length > 0) throw planError(source, problems);
  return plan;
}

/** One line per problem, in the order of the file. */
function dedupe(problems: PlanProblem[]): PlanProblem[] {
  const seen = new Set<string>();
  const out = problems.filter((p) => {
    const k = `${p.path}|${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  return out.map((p, i) => ({ p, i })).sort((a, b) => (a.p.line ?? Number.MAX_SAFE_INTEGER) - (b.p.line ?? Number.MAX_SAFE_INTEGER) || a.i - b.i).map((x) => x.p);
}

function planError(source: string, problems: PlanProblem[], code: ErrorCode = 'GAUNTLET_PLAN_INVALID'): GauntletError {
  const lines = problems.map((p) => `  ${p.line !== undefined ? `${source}:${p.line}: ` : ''}${p.path}: ${p.message}`);
  return new GauntletError(code, [source, lines.join('\n')], { details: problems });
}

/**
 * Any YAML document Gauntlet reads (the daemon's config, not only plans) checked the way a plan
 * is: every problem at once, each at its line, an unknown key with "did you mean", the checks
 * across fields (`cross`) reported together with the schema's. Throws `codes.yaml` for text
 * that is not YAML, `codes.invalid` listing the problems.
 */
export function checkDocument<S extends z.ZodType>(
  schema: S,
  text: string,
  source: string,
  codes: { yaml: ErrorCode; invalid: ErrorCode },
  cross?: (raw: unknown, add: ReturnType<typeof collector>['add']) => void,
): z.output<S> {
  const read = readYaml(text, source, codes.yaml);
  const raw = read.raw ?? {};
  const { problems, add } = collector(read.locate);
  const r = parseReporting(schema, raw, add);
  cross?.(raw, add);
  if (!r.success || problems.length > 0) throw planError(source, dedupe(problems), codes.invalid);
  return r.data as z.output<S>;
}

function locator(doc: Document, lc: LineCounter): Locate {
  return (path) => {
    // The deepest node that exists along the path (an unknown key's own line: its value node).
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true);
      if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
    }
    return undefined;
  };
}

/** Parses plan text (YAML or JSON). */
export function parsePlanText(text: string, source = 'plan'): Plan {
  const { raw, locate } = readYaml(text, source, 'GAUNTLET_PLAN_YAML');
  return validatePlan(raw, source, locate);
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
