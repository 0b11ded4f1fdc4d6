// The plan: what to load, which nodes, which faults when, how to judge. Parsed with zod at
// the edge; everything after trusts the `Plan` type. Durations are written "90s", "3m", "72h".
import { z } from 'zod';
import { parseDuration } from '../util/duration.js';

const duration = (what: string, min = 0, max = 7 * 86_400_000) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? v * 1000 : parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${what} as a duration like "500ms", "90s", "3m" or "72h"`, input: v });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({ code: 'custom', message: `expected ${what} between ${min / 1000}s and ${max / 3_600_000}h`, input: v });
      return z.NEVER;
    }
    return ms;
  });

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected a name of letters, digits, ".", "_" or "-" (at most 63)');

const Target = z
  .strictObject({
    name,
    container: z.string().min(1).optional(),
    label: z.string().min(1).optional(),
    endpoint: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  })
  .superRefine((t, ctx) => {
    if (t.container && t.label) ctx.addIssue({ code: 'custom', message: 'give either container or label, not both', path: ['label'], input: t.label });
    if (!t.container && !t.label && !t.endpoint) {
      ctx.addIssue({ code: 'custom', message: 'expected container, label or endpoint (a bare endpoint needs endpoint)', path: ['endpoint'] });
    }
  });

const Load = z.strictObject({
  engine: z.enum(['builtin']).default('builtin'),
  /** Requests per second in total, split evenly over the targets. */
  rate: z.number().positive().max(100_000),
  arrival: z.enum(['constant', 'poisson']).default('poisson'),
  api: z.enum(['chat', 'completions']).default('chat'),
  /** Model name sent in requests; default: the first model the target's /v1/models lists. */
  model: z.string().min(1).optional(),
  prompt_tokens: z.number().int().min(1).max(131_072).default(128),
  max_tokens: z.number().int().min(1).max(32_768).default(64),
  stream: z.boolean().default(true),
  timeout: duration('timeout', 100, 3_600_000).default(60_000),
});

const Fault = z
  .strictObject({
    kind: z.string().min(1),
    target: z.string().min(1),
    at: duration('at').optional(),
    every: duration('every', 1000).optional(),
    /** With `every`: offset of the first occurrence (default: one period in). */
    start: duration('start').optional(),
    params: z.record(z.string(), z.unknown()).default({}),
  })
  .superRefine((f, ctx) => {
    if ((f.at === undefined) === (f.every === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'expected exactly one of at or every', path: ['at'] });
    }
    if (f.start !== undefined && f.every === undefined) ctx.addIssue({ code: 'custom', message: 'start is only used with every', path: ['start'] });
  });

const Probes = z.strictObject({
  /** Health probe period; availability is computed from these. */
  interval: duration('interval', 100, 3_600_000).default(10_000),
  timeout: duration('timeout', 50, 600_000).default(2000),
  path: z.string().startsWith('/').default('/health'),
  /** Consecutive failed health probes that mean a node is down. */
  failures: z.number().int().min(1).max(100).default(2),
  /** While a node is down, an inference probe this often pins down when it serves again. */
  recovery_interval: duration('recovery_interval', 20, 60_000).default(200),
});

const Detection = z.strictObject({
  /** Failed requests with no success in between that open an episode. */
  error_burst: z.number().int().min(1).max(100_000).default(5),
  /** An episode's cause is the fault whose window (plus this grace) it starts in. */
  fault_grace: duration('fault_grace', 0, 3_600_000).default(10_000),
});

export const PlanSchema = z.strictObject({
  name,
  description: z.string().optional(),
  duration: duration('duration', 1000, 7 * 86_400_000),
  seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
  targets: z.array(Target).min(1, 'expected at least one target'),
  load: Load,
  faults: z.array(Fault).default([]),
  probes: Probes.default(Probes.parse({})),
  detection: Detection.default(Detection.parse({})),
  /** How long a node may take from failure to serving again before it counts as recovery_failed. */
  recovery_limit: duration('recovery_limit', 1000, 86_400_000).default(120_000),
  /** How long to wait for every target to be healthy before the run starts. */
  ready_timeout: duration('ready_timeout', 0, 3_600_000).default(120_000),
  confidence: z.number().gt(0).lt(1).default(0.8),
  mtbf_target: duration('mtbf_target', 1000, 1e6 * 3_600_000).default(1000 * 3_600_000),
});

export type PlanInput = z.input<typeof PlanSchema>;
export type Plan = z.output<typeof PlanSchema>;
export type PlanTarget = Plan['targets'][number];
export type PlanFault = Plan['faults'][number];
