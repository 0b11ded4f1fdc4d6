// The daemon's HTTP API (fastify). Every route needs the bearer token but those the config
// opens (/health and /metrics by default); a missing or wrong token is 401, a request that does
// not validate 400 with the reason, an unknown run 404. Bodies and parameters are checked with
// zod; errors are always {"error": {"code", "message"}}.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { faultKinds } from '../../faults/index.js';
import { errorMessage, isGauntletError } from '../errors.js';
import { loadPlanFile, parsePlanText } from '../plan/load.js';
import { drillPlan, drillUntil } from '../run/drill.js';
import type { RunRow, Store } from '../store/store.js';
import type { Docker } from '../docker/engine.js';
import { VERSION } from '../version.js';
import type { DaemonConfig } from './config.js';
import type { CronScheduler } from './cron.js';
import type { ManagedRun, RunManager } from './runs.js';
import { requestToken, tokenMatches } from './token.js';
import type { DaemonMetrics } from './metrics.js';
import { registerLive } from './live.js';

export interface ApiContext {
  config: DaemonConfig;
  token: string;
  store: Store;
  runs: RunManager;
  scheduler: CronScheduler | null;
  metrics: DaemonMetrics;
  docker: Docker | null;
  /** Folder relative plan paths in requests start from (the daemon's working folder). */
  cwd: string;
  startedAt: number;
  now: () => number;
}

/** The report files a run's folder holds that the API hands out. */
export const REPORT_FILES: Record<string, string> = {
  'report.md': 'text/markdown; charset=utf-8',
  'report.json': 'application/json; charset=utf-8',
  'report.html': 'text/html; charset=utf-8',
  'junit.xml': 'application/xml; charset=utf-8',
};

const RunId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a run id (see GET /api/runs)');

const StartRun = z
  .strictObject({
    /** A plan file on the daemon's host (relative to its working folder)… */
    plan: z.string().min(1).optional(),
    /** …or the plan's text (YAML or JSON), */
    plan_text: z.string().min(1).max(1_000_000).optional(),
    /** with where it came from (recorded with the run; the plan's relative files are found from it). */
    plan_source: z.string().min(1).optional(),
    /** While another run is under way: wait behind it instead of refusing (409). */
    queue: z.boolean().default(false),
  })
  .refine((b) => (b.plan === undefined) !== (b.plan_text === undefined), { message: 'give exactly one of "plan" (a file) or "plan_text"' });

const StartDrill = z.strictObject({
  kind: z.string().refine((k) => faultKinds().includes(k), { message: `expected one of ${faultKinds().join(', ')}` }),
  target: z.string().min(1),
  duration: z.string().min(1).optional(),
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  rate: z.number().positive().max(10_000).default(2),
  recovery_limit: z.string().min(1).default('60s'),
  endpoint: z.string().url().optional(),
  queue: z.boolean().default(false),
});

const ListRuns = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(50) });

/** The real path when it exists (symlinks resolved), else the path as given. */
function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

function zodReason(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length > 0 ? `${i.path.join('.')}: ` : ''}${i.message}`).join('; ');
}

function bad(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ error: { code, message } });
}

function parse<T extends z.ZodType>(schema: T, value: unknown, reply: FastifyReply, what: string): z.output<T> | null {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  void bad(reply, 400, 'GAUNTLET_API_INVALID', `${what}: ${zodReason(r.error)}`);
  return null;
}

function runView(row: RunRow | undefined, live: ManagedRun | undefined): Record<string, unknown> {
  return {
    id: row?.id ?? live?.id,
    plan: row?.plan_name ?? live?.plan,
    status: row?.status ?? (live?.state === 'queued' ? 'queued' : live?.state === 'running' ? 'preparing' : live?.error ? 'not_started' : 'unknown'),
    phase: row?.phase ?? null,
    started_at: row ? new Date(row.started_at).toISOString() : null,
    ended_at: row?.ended_at ? new Date(row.ended_at).toISOString() : null,
    planned_end_at: row?.planned_end_at ? new Date(row.planned_end_at).toISOString() : null,
    faults_done: row?.faults_done ?? null,
    error: row?.error ?? live?.error ?? null,
    origin: live?.origin ?? null,
    live: live && live.state !== 'done' ? { state: live.state, progress: live.progress } : null,
  };
}

export function buildApi(ctx: ApiContext): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 2 * 1024 * 1024 });
  const open = new Set<string>(ctx.config.public_routes);

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0] ?? '';
    // the live page's own routes: `/` answers a login form without a token, /login takes one
    if (open.has(path) || path === '/' || path === '/login' || path === '/live.js') return;
    if (!tokenMatches(requestToken(req.headers), ctx.token)) {
      reply.header('www-authenticate', 'Bearer realm="gauntlet"');
      return bad(reply, 401, 'GAUNTLET_API_UNAUTHORIZED', 'a valid token is needed: Authorization: Bearer <token> (the token is in the daemon\'s data folder, file api-token)');
    }
  });

  // Bodies that are not JSON, unknown routes, anything thrown: one error shape.
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (isGauntletError(err)) return bad(reply, err.status, err.code, err.message);
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return bad(reply, status, status === 500 ? 'GAUNTLET_API_INTERNAL' : 'GAUNTLET_API_INVALID', status === 500 ? errorMessage(err) : `request: ${err.message}`);
  });
  app.setNotFoundHandler((req, reply) => bad(reply, 404, 'GAUNTLET_API_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));

  app.get('/health', async () => ({ ok: true, version: VERSION, uptime_s: Math.round((ctx.now() - ctx.startedAt) / 1000), running: ctx.runs.running?.id ?? null }));

  registerLive(app, { token: ctx.token, store: ctx.store, runs: ctx.runs, now: ctx.now });

  app.get('/metrics', async (_req, reply) => reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()));

  app.get('/api/runs', async (req, reply) => {
    const q = parse(ListRuns, req.query, reply, 'query');
    if (!q) return reply;
    const rows = ctx.store.listRuns(q.limit);
    const ids = new Set(rows.map((r) => r.id));
    const live = [ctx.runs.running, ...ctx.runs.queued].filter((r): r is ManagedRun => r !== null && !ids.has(r.id));
    return { runs: [...live.map((l) => runView(undefined, l)), ...rows.map((r) => runView(r, ctx.runs.get(r.id)))] };
  });

  app.post('/api/runs', async (req, reply) => {
    const body = parse(StartRun, req.body, reply, 'body');
    if (!body) return reply;
    let plan;
    let source: string | null = null;
    try {
      if (body.plan !== undefined) {
        source = resolve(ctx.cwd, body.plan);
        // plans only, and only from the daemon's own folder: the API is no file reader
        const rel = relative(realpathOr(ctx.cwd), realpathOr(source));
        if (rel.startsWith('..') || isAbsolute(rel) || !/\.(ya?ml|json)$/i.test(source)) {
          return bad(reply, 400, 'GAUNTLET_API_INVALID', `plan: ${body.plan}: a plan file (.yaml, .yml, .json) under the daemon's folder ${ctx.cwd} is taken; send others as plan_text`);
        }
        plan = loadPlanFile(source);
      } else {
        source = body.plan_source ?? null;
        plan = parsePlanText(body.plan_text as string, body.plan_source ?? 'plan_text');
      }
    } catch (err) {
      if (isGauntletError(err)) return bad(reply, 400, err.code, err.message);
      throw err;
    }
    const a = ctx.runs.submit({ plan, planSource: source, origin: { kind: 'api' }, whenBusy: body.queue ? 'queue' : 'skip' });
    if (a.state === 'skipped') return bad(reply, 409, 'GAUNTLET_API_BUSY', `not started: ${a.reason ?? 'busy'}${a.reason?.includes('another Gauntlet') ? '' : ' (send "queue": true to wait behind it)'}`);
    return reply.code(202).send(a);
  });

  app.post('/api/drills', async (req, reply) => {
    const body = parse(StartDrill, req.body, reply, 'body');
    if (!body) return reply;
    let plan;
    try {
      plan = await drillPlan(
        {
          kind: body.kind,
          target: body.target,
          ...(body.duration !== undefined ? { duration: body.duration } : {}),
          params: Object.fromEntries(Object.entries(body.params).map(([k, v]) => [k, String(v)])),
          rate: body.rate,
          baselineMs: 5000,
          settleMs: 3000,
          recoveryLimit: body.recovery_limit,
          ...(body.endpoint !== undefined ? { endpoint: body.endpoint } : {}),
        },
        ctx.docker,
      );
    } catch (err) {
      if (isGauntletError(err)) return bad(reply, err.status, err.code, err.message);
      throw err;
    }
    const a = ctx.runs.submit({ plan, planSource: null, origin: { kind: 'drill' }, whenBusy: body.queue ? 'queue' : 'skip', until: drillUntil(3000) });
    if (a.state === 'skipped') return bad(reply, 409, 'GAUNTLET_API_BUSY', `not started: ${a.reason ?? 'busy'}`);
    return reply.code(202).send(a);
  });

  app.get('/api/runs/:id', async (req, reply) => {
    const id = parse(RunId, (req.params as { id?: unknown }).id, reply, 'run id');
    if (id === null) return reply;
    const row = ctx.store.getRun(id);
    const live = ctx.runs.get(id);
    if (!row && !live) return bad(reply, 404, 'GAUNTLET_RUN_NOT_FOUND', `no run with id ${id}`);
    return { ...runView(row, live), report_dir: live?.result?.reportDir ?? join(ctx.config.reports_dir, id) };
  });

  app.post('/api/runs/:id/stop', async (req, reply) => {
    const id = parse(RunId, (req.params as { id?: unknown }).id, reply, 'run id');
    if (id === null) return reply;
    if (ctx.runs.stop(id)) return reply.code(202).send({ id, stopping: true });
    if (ctx.store.getRun(id)) return bad(reply, 409, 'GAUNTLET_API_NOT_LIVE', `run ${id} is not under way in this daemon`);
    return bad(reply, 404, 'GAUNTLET_RUN_NOT_FOUND', `no run with id ${id}`);
  });

  app.get('/api/runs/:id/report/:file', async (req, reply) => {
    const p = req.params as { id?: unknown; file?: unknown };
    const id = parse(RunId, p.id, reply, 'run id');
    if (id === null) return reply;
    const file = typeof p.file === 'string' ? p.file : '';
    const type = Object.hasOwn(REPORT_FILES, file) ? REPORT_FILES[file] : undefined;
    if (!type) return bad(reply, 400, 'GAUNTLET_API_INVALID', `file: expected one of ${Object.keys(REPORT_FILES).join(', ')}`);
    if (!ctx.store.getRun(id)) return bad(reply, 404, 'GAUNTLET_RUN_NOT_FOUND', `no run with id ${id}`);
    const path = join(ctx.config.reports_dir, id, file);
    if (!existsSync(path)) return bad(reply, 404, 'GAUNTLET_REPORT_NOT_FOUND', `run ${id} has no ${file} (yet: reports are written when a run ends)`);
    return reply.type(type).send(readFileSync(path));
  });

  app.get('/api/schedules', async () => ({
    schedules: ctx.config.schedules.map((s) => {
      const next = s.enabled ? (ctx.scheduler?.next(s.name) ?? null) : null;
      return {
        name: s.name,
        cron: s.cron,
        timezone: s.timezone,
        plan: s.plan,
        when_busy: s.when_busy,
        enabled: s.enabled,
        next_fire_at: next === null ? null : new Date(next).toISOString(),
        last_fires: ctx.store.scheduleFires(s.name, 10).map((f) => ({ due_at: new Date(f.due_at).toISOString(), outcome: f.outcome, run_id: f.run_id, reason: f.reason })),
      };
    }),
  }));

  return app;
}
