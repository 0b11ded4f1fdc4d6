// The plan: what to load, which nodes, which faults when, how to judge. Parsed with zod at
// the edge; everything after trusts the `Plan` type. Durations are written "90s", "3m", "72h".
import { MIL_HDBK_781_PRST } from '../analysis/sprt.js';
import { K6_PATH, parseSshUrl } from '../load/k6/remote.js';
import { NAMESPACE_NAME } from '../load/k6/operator.js';
import { z } from 'zod';
import { engineSpecProblems } from '../docker/engines.js';
import { parseDuration } from '../util/duration.js';

/**
 * The longest run: a year. Certifying 1000 h MTBF at 90 % takes 2303 node-hours with no
 * failure (12 days on 8 nodes), so a week is not enough; a year still catches typos.
 */
export const MAX_RUN_MS = 8760 * 3_600_000;

const duration = (what: string, min = 0, max = MAX_RUN_MS) =>
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
    /** The Docker engine the container is on (one of the plan's engines); default DOCKER_HOST's. */
    engine: name.optional(),
  })
  .superRefine((t, ctx) => {
    if (t.engine && !t.container && !t.label) ctx.addIssue({ code: 'custom', message: 'engine is for container targets (give container: or label:)', path: ['engine'], input: t.engine });
    if (t.container && t.label) ctx.addIssue({ code: 'custom', message: 'give either container or label, not both', path: ['label'], input: t.label });
    if (!t.container && !t.label && !t.endpoint) {
      ctx.addIssue({ code: 'custom', message: 'expected container, label or endpoint (a bare endpoint needs endpoint)', path: ['endpoint'] });
    }
  });

/** A Docker engine targets can be on: DOCKER_HOST's form, TLS files for TCP, a key for SSH. */
const Engine = z
  .strictObject({
    name,
    host: z.string().min(1),
    tls: z.strictObject({ ca: z.string().min(1), cert: z.string().min(1), key: z.string().min(1) }).optional(),
    identity_file: z.string().min(1).optional(),
    known_hosts_file: z.string().min(1).optional(),
  })
  .superRefine((e, ctx) => {
    for (const p of engineSpecProblems(e)) ctx.addIssue({ code: 'custom', message: p.message, path: [p.path], input: (e as Record<string, unknown>)[p.path] });
  });

const tokens = z.number().int().min(1).max(131_072);
/** A length: a number, or { fixed | uniform: [a, b] | normal: {mean, stddev} | lognormal: {median, sigma} }. */
const Length = z.union([
  tokens.transform((n) => ({ fixed: n })),
  z.strictObject({ fixed: tokens }),
  z
    .strictObject({ uniform: z.tuple([tokens, tokens]) })
    .refine((d) => d.uniform[0] <= d.uniform[1], { message: 'expected uniform: [low, high] with low ≤ high', path: ['uniform'] }),
  z.strictObject({ normal: z.strictObject({ mean: z.number().positive(), stddev: z.number().min(0) }) }),
  z.strictObject({ lognormal: z.strictObject({ median: z.number().positive(), sigma: z.number().min(0).max(5) }) }),
]);

/**
 * What one kind of request looks like. Defaults (chat, streamed, 128 prompt / 64 output
 * tokens, model from /v1/models) are applied in src/load/workload.ts, so that the plan can
 * tell the single-kind fields apart from a mix.
 */
const RequestShape = {
  api: z.enum(['chat', 'completions']).optional(),
  stream: z.boolean().optional(),
  model: z.string().min(1).optional(),
  prompt_tokens: Length.optional(),
  max_tokens: Length.optional(),
  /** Prompts sampled from a JSONL file (relative to the plan, or in scenarios/data/) instead of synthetic text. */
  prompts: z.string().min(1).optional(),
};
export const REQUEST_SHAPE_KEYS = Object.keys(RequestShape) as (keyof typeof RequestShape)[];

const MixEntry = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,40}$/, 'expected a short name of letters, digits, ".", "_" or "-"').optional(),
  weight: z.number().positive().default(1),
  ...RequestShape,
  timeout: duration('timeout', 100, 3_600_000).optional(),
});

const Stage = z.strictObject({ duration: duration('duration', 0, MAX_RUN_MS), target: z.number().min(0).max(100_000) });

const PARALLELISM = 'expected auto or a whole number of load generators from 1 to 256';

/** A machine running k6 instances for a plan: this one, or one reached over SSH (BatchMode: keys only). */
const K6HostEntry = z.strictObject({
  host: z.string().refine((h) => h === 'local' || parseSshUrl(h) !== null, 'expected local or ssh://[user@]host[:port]'),
  instances: z.number().int().min(1, 'expected 1 to 64 instances').max(64, 'expected 1 to 64 instances').default(1),
  /** The k6 binary there: a path or a command name (no spaces or shell characters). */
  k6: z.string().regex(K6_PATH, 'expected a path or command name without spaces or shell characters').default('k6'),
  /** ssh -i: the key to log in with. */
  identity_file: z.string().min(1).optional(),
  /** Where ssh looks up the host's key (unknown keys are refused). */
  known_hosts_file: z.string().min(1).optional(),
});

const Load = z
  .strictObject({
    engine: z.enum(['builtin', 'k6']).default('builtin'),
    /** k6 only: your own TypeScript/JavaScript scenario instead of Gauntlet's scenarios/load/chat.ts. */
    script: z.string().min(1).optional(),
    /** Requests per second in total, split evenly over the targets. Or give stages. */
    rate: z.number().positive().max(100_000).optional(),
    /** With stages: the rate at the start. */
    start_rate: z.number().min(0).max(100_000).default(0),
    /** Ramps (linear to target over duration; a 0s stage is a step); the last target holds. */
    stages: z.array(Stage).min(1).optional(),
    arrival: z.enum(['constant', 'poisson', 'gamma']).default('poisson'),
    /** gamma only (vLLM's convention): 1 = Poisson, < 1 burstier, > 1 more regular. */
    burstiness: z.number().min(0.01).max(100).optional(),
    /** Cap on requests in flight; requests over it wait, and the wait is measured as queue delay. */
    max_in_flight: z.number().int().min(1).max(1_000_000).optional(),
    /**
     * Load generators splitting the arrivals: worker threads of the builtin engine, or k6
     * processes with execution segments; auto: one per core but one. Samples from all of them
     * go into the same histograms.
     */
    parallelism: z
      .union([z.literal('auto'), z.number().int(PARALLELISM).min(1, PARALLELISM).max(256, PARALLELISM)], { error: PARALLELISM })
      .default(1),
    /**
     * k6 only: where its instances run — `local` (this machine) or `ssh://[user@]host[:port]` —
     * and how many on each; the instances split the arrivals with execution segments, in order.
     */
    k6_hosts: z.array(K6HostEntry).min(1).max(64).optional(),
    /**
     * k6 only: the instances (parallelism of them) as k6-operator runners on Kubernetes: the run
     * applies a TestRun with kubectl and reads each runner's pod log back into its windows.
     */
    k6_operator: z
      .strictObject({
        namespace: z.string().regex(NAMESPACE_NAME, "expected a namespace: lowercase letters, digits and '-', at most 63 characters").default('default'),
        /** kubectl's --context (default its current one). */
        context: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@:/-]*$/, 'expected a kubeconfig context name').optional(),
        /** The kubectl binary: a path or a command name. */
        kubectl: z.string().regex(K6_PATH, 'expected a path or command name without spaces or shell characters').default('kubectl'),
        /** The runner image (default k6-operator's, which lacks xk6-sse). */
        image: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/, 'expected an image reference').optional(),
        /** The runner image has xk6-sse: Gauntlet's SSE scenario (ttft at the first content chunk, inter-token gaps). */
        sse: z.boolean().default(false),
        /** How long the runners may take to be scheduled and start (image pulls). */
        start_timeout: duration('start_timeout', 1000, 3_600_000).default(600_000),
      })
      .optional(),
    timeout: duration('timeout', 100, 3_600_000).default(60_000),
    /** A client retry policy; its effect is reported apart from the raw results. */
    retry: z
      .strictObject({
        attempts: z.number().int().min(2).max(10),
        backoff: duration('backoff', 1, 600_000).default(250),
        max_backoff: duration('max_backoff', 1, 3_600_000).default(10_000),
        jitter: z.number().min(0).max(1).default(0.2),
      })
      .optional(),
    /** Keep one row per request (histograms and counters per window are always kept). */
    raw_requests: z.boolean().default(true),
    /** Aggregation window for histograms and counters. */
    window: duration('window', 1000, 3_600_000).default(10_000),
    /**
     * The largest share of the load's time the load generator may be behind (arrivals missed,
     * sends late, its event loop stalled) before the run's numbers are not the server's: past
     * it the run is reported as generator-saturated and `gauntlet run` exits 3.
     */
    generator_behind_limit: z.number().min(0).max(1).default(0.05),
    ...RequestShape,
    /** Weighted request kinds; instead of the single-kind fields above. */
    mix: z.array(MixEntry).min(1).optional(),
  })
  .superRefine((l, ctx) => {
    if ((l.rate === undefined) === (l.stages === undefined)) ctx.addIssue({ code: 'custom', message: 'expected exactly one of rate or stages', path: ['rate'] });
    if (l.burstiness !== undefined && l.arrival !== 'gamma') ctx.addIssue({ code: 'custom', message: 'burstiness is only used with arrival: gamma', path: ['burstiness'], input: l.burstiness });
    if (l.script !== undefined && l.engine !== 'k6') ctx.addIssue({ code: 'custom', message: 'script is only used with engine: k6', path: ['script'], input: l.script });
    if (l.k6_hosts !== undefined && l.engine !== 'k6') ctx.addIssue({ code: 'custom', message: 'k6_hosts is only used with engine: k6', path: ['k6_hosts'], input: l.k6_hosts as never });
    if (l.k6_hosts !== undefined && l.parallelism !== 1) {
      const total = l.k6_hosts.reduce((a, h) => a + h.instances, 0);
      if (l.parallelism !== total) ctx.addIssue({ code: 'custom', message: `with k6_hosts, the instances are counted per host (${total} in all): leave parallelism out`, path: ['parallelism'], input: l.parallelism as never });
    }
    if (l.k6_operator !== undefined) {
      if (l.engine !== 'k6') ctx.addIssue({ code: 'custom', message: 'k6_operator is only used with engine: k6', path: ['k6_operator'], input: l.k6_operator as never });
      if (l.k6_hosts !== undefined) ctx.addIssue({ code: 'custom', message: 'expected k6_hosts or k6_operator, not both', path: ['k6_operator'], input: l.k6_operator as never });
      if (l.parallelism === 'auto') ctx.addIssue({ code: 'custom', message: "with k6_operator, parallelism is the number of runners: give a number ('auto' counts this machine's cores)", path: ['parallelism'], input: l.parallelism as never });
    }
    if (l.mix) {
      for (const k of REQUEST_SHAPE_KEYS) {
        if (l[k] !== undefined) ctx.addIssue({ code: 'custom', message: `with mix, give ${k} inside each mix entry`, path: [k], input: l[k] as never });
      }
    }
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
  /**
   * While a node is faulted, suspect, busy, down or recovering: health probes and canaries this
   * often, concurrently, each on a fresh connection ("serving again" to within this).
   */
  fast_interval: duration('fast_interval', 20, 60_000).default(200),
  /** A one-token inference this often at the normal pace (every fast_interval at the fast one). */
  canary_interval: duration('canary_interval', 100, 3_600_000).default(30_000),
  /** A canary not answered within this has failed (default: timeout). */
  canary_timeout: duration('canary_timeout', 50, 600_000).optional(),
});

/** vLLM's names (which the simulator exposes too), and GPU memory as NVIDIA's DCGM exporter names it. */
export const DEFAULT_METRICS = ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:gpu_cache_usage_perc', 'DCGM_FI_DEV_FB_USED'] as const;

/** Node telemetry: Docker stats of container targets, and the node's Prometheus metrics. */
const Telemetry = z.strictObject({
  /** Sampling period (0s turns telemetry off). */
  interval: duration('interval', 0, 3_600_000).default(5000),
  /** The node's Prometheus endpoint, read every interval (null: none). */
  metrics_path: z.string().startsWith('/').nullable().default('/metrics'),
  /** Metric names kept from it (summed over their label sets). */
  metrics: z.array(z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'expected a Prometheus metric name')).default([...DEFAULT_METRICS]),
});

const Detection = z.strictObject({
  /** Failed requests with no success in between that open an episode. */
  error_burst: z.number().int().min(1).max(100_000).default(5),
  /**
   * The run's baseline: from the load's start until this long, or the first fault if sooner. A
   * success later than twice its baseline e2e p50 (per kind of request) is `degraded`.
   */
  baseline: duration('baseline', 1000, 86_400_000).default(30_000),
  /** An episode's cause is the fault whose window (plus this grace) it starts in. */
  fault_grace: duration('fault_grace', 0, 3_600_000).default(10_000),
});

/**
 * The blast radius and the halt condition. An injection that would break them is skipped and
 * recorded as skipped with the reason; a halt stops injecting, reverts what is active, and is
 * recorded in the run's journal. The load goes on either way.
 */
const Safety = z.strictObject({
  /** At most this many faults active at once (across all nodes). */
  max_concurrent_faults: z.number().int().min(1).max(1000).optional(),
  /** At least this many nodes must stay healthy (up or busy) besides the one being faulted. */
  min_healthy_nodes: z.number().int().min(0).max(10_000).default(0),
  /** Stop injecting when the error rate outside fault windows stays above `error_rate` for `for`. */
  halt: z
    .strictObject({
      error_rate: z.number().gt(0).max(1),
      for: duration('for', 1000, 86_400_000),
      /** Fewer requests than this in the span: not enough to judge. */
      min_requests: z.number().int().min(1).max(1_000_000).default(20),
    })
    .optional(),
});

/**
 * A service endpoint in front of the nodes (a router, a load balancer): the load goes there, and
 * each fault's client-visible outage — the failover time — is measured there, next to each
 * node's own recovery (which the nodes' probes and Docker events still measure).
 */
const Service = z.strictObject({
  name: name.default('service'),
  endpoint: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
});

/**
 * Release gates (DESIGN.md, Certification gates): each a threshold the run is judged against,
 * pass / conditional / fail; `false` turns one off. The defaults are the release criteria.
 */
const share = (what: string) => z.number({ error: `expected ${what} as a share between 0 and 1 (0.999 = 99.9 %)` }).min(0).max(1);
const GatesShape = z.strictObject({
  /** A conditional verdict fails the run too (exit 4), not only a failed one. */
  conditional_fails: z.boolean().default(false),
  /** Spontaneous failures (and failed recoveries) in the run: ≤ pass, ≤ conditional, more fails. */
  spontaneous_failures: z
    .union([z.literal(false), z.strictObject({ pass: z.number().int().min(0).default(1), conditional: z.number().int().min(0).default(3) })])
    .default({ pass: 1, conditional: 3 }),
  /** The MTBF lower bound at the plan's confidence: ≥ pass (default mtbf_target) passes, < fail fails, between is conditional. */
  mtbf_lower_bound: z
    .union([z.literal(false), z.strictObject({ pass: duration('gates.mtbf_lower_bound.pass', 1000, 1e6 * 3_600_000).optional(), conditional: duration('gates.mtbf_lower_bound.conditional', 0, 1e6 * 3_600_000).default(500 * 3_600_000), fail: duration('gates.mtbf_lower_bound.fail', 0, 1e6 * 3_600_000).default(100 * 3_600_000) })])
    .default({ conditional: 500 * 3_600_000, fail: 100 * 3_600_000 }),
  /** Availability from health probes: ≥ pass passes, ≥ conditional is conditional. */
  availability: z.union([z.literal(false), z.strictObject({ pass: share('availability').default(0.999), conditional: share('availability').default(0.995) })]).default({ pass: 0.999, conditional: 0.995 }),
  /** Error rate (errors + timeouts), outside injected episodes: < pass passes, < conditional is conditional. */
  error_rate: z.union([z.literal(false), z.strictObject({ pass: share('an error rate').default(0.001), conditional: share('an error rate').default(0.005) })]).default({ pass: 0.001, conditional: 0.005 }),
  /** The longest client-visible outage at the service endpoint when a node fails (needs plan.service). */
  failover_outage: z.union([z.literal(false), z.strictObject({ pass: duration('gates.failover_outage.pass', 0, 3_600_000).default(2000) })]).default({ pass: 2000 }),
  /** Every node that failed serves again within the plan's recovery_limit. */
  recovery: z.boolean().default(true),
  /** ttft p50 / p99 (from the actual send), below these. */
  ttft: z.union([z.literal(false), z.strictObject({ p50: duration('gates.ttft.p50', 0, 3_600_000).default(100), p99: duration('gates.ttft.p99', 0, 3_600_000).default(150) })]).default({ p50: 100, p99: 150 }),
  /** Per-output-token latency (tpot) p50 / p99, below these. */
  tpot: z.union([z.literal(false), z.strictObject({ p50: duration('gates.tpot.p50', 0, 3_600_000).default(30), p99: duration('gates.tpot.p99', 0, 3_600_000).default(50) })]).default({ p50: 30, p99: 50 }),
  /** Memory (container and GPU) must not grow significantly: the slope's interval at this confidence wholly above 0 fails. */
  memory_growth: z.union([z.literal(false), z.strictObject({ confidence: z.number().gt(0).lt(1).default(0.95) })]).default({ confidence: 0.95 }),
});
/** Thresholds in an order that leaves each verdict a band: pass at least as strict as conditional, conditional as fail. */
function gateOrder(g: z.output<typeof GatesShape>, ctx: z.RefinementCtx): void {
  const bad = (path: string[], message: string): void => ctx.addIssue({ code: 'custom', path, message });
  const h = (ms: number): string => `${ms / 3_600_000}h`;
  const tail = ' (a threshold left out takes its default: set both)';
  if (g.spontaneous_failures !== false && g.spontaneous_failures.pass > g.spontaneous_failures.conditional) bad(['spontaneous_failures'], `expected pass ≤ conditional, got ${g.spontaneous_failures.pass} > ${g.spontaneous_failures.conditional}${tail}`);
  if (g.availability !== false && g.availability.conditional > g.availability.pass) bad(['availability'], `expected conditional ≤ pass, got ${g.availability.conditional} > ${g.availability.pass}${tail}`);
  if (g.error_rate !== false && g.error_rate.pass > g.error_rate.conditional) bad(['error_rate'], `expected pass ≤ conditional, got ${g.error_rate.pass} > ${g.error_rate.conditional}${tail}`);
  if (g.mtbf_lower_bound !== false) {
    const m = g.mtbf_lower_bound;
    if (m.fail > m.conditional) bad(['mtbf_lower_bound'], `expected fail ≤ conditional, got ${h(m.fail)} > ${h(m.conditional)}${tail}`);
    if (m.pass !== undefined && m.conditional > m.pass) bad(['mtbf_lower_bound'], `expected conditional ≤ pass, got ${h(m.conditional)} > ${h(m.pass)}${tail}`);
  }
  if (g.ttft !== false && g.ttft.p50 > g.ttft.p99) bad(['ttft'], `expected p50 ≤ p99, got ${g.ttft.p50} ms > ${g.ttft.p99} ms${tail}`);
  if (g.tpot !== false && g.tpot.p50 > g.tpot.p99) bad(['tpot'], `expected p50 ≤ p99, got ${g.tpot.p50} ms > ${g.tpot.p99} ms${tail}`);
}
const Gates = GatesShape.superRefine(gateOrder);
export type PlanGates = z.output<typeof Gates>;
export const DEFAULT_GATES: PlanGates = Gates.parse({});

/**
 * Sequential certification (MIL-HDBK-781's probability-ratio test): θ0 = mtbf_target, θ1 =
 * θ0 / discrimination, producer's risk alpha, consumer's risk beta, truncated at the shortest
 * fixed-duration test with the same risks; or a standard plan by name, with the handbook's own
 * lines and truncation. The report shows where the
 * run stands against its lines; stop_early ends the run when it decides (accept or reject).
 */
const Sequential = z
  .strictObject({
    mil_plan: z.enum(Object.keys(MIL_HDBK_781_PRST) as [string, ...string[]], { error: `expected one of MIL-HDBK-781's PRST plans: ${Object.keys(MIL_HDBK_781_PRST).join(', ')}` }).optional(),
    // MIL-HDBK-781's plans use 1.5 to 3; nearer 1 the truncated test grows without bound (and its risks take seconds to integrate)
    discrimination: z.number({ error: 'expected a discrimination ratio θ0/θ1 from 1.25 to 10' }).min(1.25, 'expected a discrimination ratio θ0/θ1 from 1.25 to 10').max(10, 'expected a discrimination ratio θ0/θ1 from 1.25 to 10').default(2),
    alpha: z.number().gt(0).lt(0.5).default(0.1),
    beta: z.number().gt(0).lt(0.5).default(0.1),
    stop_early: z.boolean().default(false),
  })
  .transform((x) => (x.mil_plan ? { ...x, discrimination: (MIL_HDBK_781_PRST[x.mil_plan] as { d: number }).d, alpha: (MIL_HDBK_781_PRST[x.mil_plan] as { alpha: number }).alpha, beta: (MIL_HDBK_781_PRST[x.mil_plan] as { beta: number }).beta } : x));
export type PlanSequential = z.output<typeof Sequential>;

/**
 * The latency a single request must meet to count as good (goodput: the share of attempts that
 * succeeded within every SLO). By default the p99 lines of the ttft and tpot gates.
 */
const Slo = z.strictObject({
  ttft: duration('slo.ttft', 0, 3_600_000).optional(),
  tpot: duration('slo.tpot', 0, 3_600_000).optional(),
});

export const PlanSchema = z.strictObject({
  name,
  description: z.string().optional(),
  duration: duration('duration', 1000, MAX_RUN_MS),
  seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
  targets: z.array(Target).min(1, 'expected at least one target'),
  /** Docker engines besides DOCKER_HOST's that targets name (target.engine). */
  engines: z.array(Engine).default([]),
  service: Service.optional(),
  load: Load,
  faults: z.array(Fault).default([]),
  probes: Probes.default(Probes.parse({})),
  detection: Detection.default(Detection.parse({})),
  telemetry: Telemetry.default(Telemetry.parse({})),
  safety: Safety.default(Safety.parse({})),
  /** How long a node may take from failure to serving again before it counts as recovery_failed. */
  recovery_limit: duration('recovery_limit', 1000, 86_400_000).default(120_000),
  /** How long to wait for every target to be healthy before the run starts. */
  ready_timeout: duration('ready_timeout', 0, 3_600_000).default(120_000),
  confidence: z.number().gt(0).lt(1).default(0.8),
  /**
   * A daemon restarted after the Gauntlet running this plan was killed takes the run up until
   * its planned end (the gap left out of exposure); false: the run is ended as aborted instead.
   */
  resume: z.boolean().default(true),
  mtbf_target: duration('mtbf_target', 1000, 1e6 * 3_600_000).default(1000 * 3_600_000),
  gates: Gates.default(DEFAULT_GATES),
  slo: Slo.default({}),
  sequential: Sequential.default({ discrimination: 2, alpha: 0.1, beta: 0.1, stop_early: false }),
});

export type PlanInput = z.input<typeof PlanSchema>;
export type Plan = z.output<typeof PlanSchema>;
export type PlanTarget = Plan['targets'][number];
export type PlanEngine = Plan['engines'][number];
export type PlanFault = Plan['faults'][number];
export type PlanLoad = Plan['load'];
export type LengthSpec = z.output<typeof Length>;
