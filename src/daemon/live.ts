// The live page at `/`: a nightly soak watched from a browser. Without a valid token cookie it is
// a login form (the token from the daemon's data folder); POST /login sets it as an HttpOnly,
// SameSite=Strict cookie. The page itself is static; its script (/live.js) asks /api/live every
// few seconds and draws the runs, each node's state, the active faults, the episodes and the
// latest windows' rate, error rate and ttft p50 as small SVG charts. No framework, no network
// beyond the daemon, a Content-Security-Policy of 'self'.
import type { FastifyInstance } from 'fastify';
import type { Store } from '../store/store.js';
import type { RunManager } from './runs.js';
import { requestToken, tokenMatches } from './token.js';

const CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2330;background:#fafbfc}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
table{border-collapse:collapse;margin:.3rem 0}td,th{padding:.2rem .6rem;border-bottom:1px solid #e2e5ea;text-align:left;vertical-align:top}
.up{color:#127a3a}.busy,.degraded{color:#a86b00}.down,.recovering{color:#b3261e;font-weight:600}
.muted{color:#6b7280}.charts{display:flex;flex-wrap:wrap;gap:1rem}.chart{background:#fff;border:1px solid #e2e5ea;padding:.4rem .6rem}
svg{display:block}form{margin-top:2rem}input{font:inherit;padding:.3rem;width:28rem}button{font:inherit;padding:.3rem .8rem}.err{color:#b3261e}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title><meta name="viewport" content="width=device-width"><link rel="icon" href="data:,"><style>${STYLE}</style></head><body>${body}</body></html>`;
}

const LOGIN = (failed: boolean): string =>
  page(
    'Gauntlet — sign in',
    `<h1>Gauntlet</h1><p class="muted">The daemon's token is in its data folder (file <code>api-token</code>).</p>
<form method="post" action="/login"><label>Token <input id="token" name="token" type="password" autocomplete="current-password" autofocus></label> <button id="signin" type="submit">Sign in</button></form>${failed ? '<p class="err" id="login-error">That token is not this daemon\'s.</p>' : ''}`,
  );

const LIVE = page(
  'Gauntlet — live',
  `<h1>Gauntlet <span class="muted" id="updated"></span></h1>
<div id="current"><p class="muted">loading…</p></div>
<h2>Runs</h2><table id="runs"><thead><tr><th>run</th><th>plan</th><th>status</th><th>started</th><th>ended</th></tr></thead><tbody></tbody></table>
<script src="/live.js"></script>`,
);

// The page's script: plain DOM, text set through textContent (run ids, reasons and errors are data).
const SCRIPT = `'use strict';
const $ = (s) => document.querySelector(s);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? '—' : String(k)));
  return e;
}
function table(head, rows) {
  const t = el('table', {});
  t.append(el('tr', {}, ...head.map((h) => el('th', {}, h))));
  for (const r of rows) t.append(el('tr', {}, ...r.map((c) => (c instanceof Node ? el('td', {}, c) : el('td', {}, c)))));
  return t;
}
const iso = (t) => (t == null ? '—' : new Date(t).toISOString().replace('T', ' ').slice(0, 19));
const NS = 'http://www.w3.org/2000/svg';
function spark(label, points, unit) {
  const w = 260, h = 56;
  const box = el('div', { class: 'chart' });
  const ys = points.map((p) => p[1]).filter((y) => y != null && isFinite(y));
  const last = ys.length ? ys[ys.length - 1] : null;
  box.append(el('div', {}, label + ': ', last == null ? '—' : last.toFixed(unit === '%' ? 2 : 1) + ' ' + unit));
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('width', w); svg.setAttribute('height', h); svg.setAttribute('role', 'img'); svg.setAttribute('aria-label', label);
  if (points.length > 1 && ys.length) {
    const x0 = points[0][0], x1 = points[points.length - 1][0];
    const max = Math.max(...ys, 1e-9);
    const pts = points.filter((p) => p[1] != null).map((p) => (((p[0] - x0) / Math.max(1, x1 - x0)) * (w - 4) + 2).toFixed(1) + ',' + (h - 2 - (p[1] / max) * (h - 6)).toFixed(1));
    const line = document.createElementNS(NS, 'polyline');
    line.setAttribute('points', pts.join(' ')); line.setAttribute('fill', 'none'); line.setAttribute('stroke', '#2f5dab'); line.setAttribute('stroke-width', '1.5');
    svg.append(line);
  }
  box.append(svg);
  const max = ys.length ? Math.max(...ys) : null;
  box.append(el('div', { class: 'muted' }, points.length + ' windows' + (points.length > 1 ? ' over ' + Math.round((points[points.length - 1][0] - points[0][0]) / 1000) + ' s' : '') + (max == null ? '' : '; top of the chart ' + max.toFixed(unit === '%' ? 2 : 1) + ' ' + unit)));
  return box;
}
function render(d) {
  $('#updated').textContent = 'updated ' + iso(d.now);
  const cur = $('#current');
  cur.replaceChildren();
  const r = d.current;
  if (!r) cur.append(el('p', { class: 'muted', id: 'idle' }, 'No run under way.'));
  else {
    const p = r.progress;
    cur.append(el('h2', {}, 'Under way: ' + r.id + ' (' + r.plan + ')'));
    cur.append(el('p', { id: 'summary' }, (p ? Math.round(p.elapsedMs / 1000) + ' s of ' + Math.round(p.durationMs / 1000) + ' s; ' + p.plannedRate.toFixed(1) + ' req/s planned, ' + p.achievedRate.toFixed(1) + ' sent; ' + p.ok + ' ok, ' + p.failed + ' failed; faults ' + p.faultsDone + '/' + p.faultsTotal : 'preparing') + ''));
    cur.append(el('h2', {}, 'Nodes'));
    cur.append(table(['node', 'state', 'since'], (p ? p.nodes : []).map((n) => [el('span', { class: n.state }, n.state), iso(n.since)].reduce((row, c) => (row.push(c), row), [n.node]))));
    cur.append(el('h2', {}, 'Active faults'));
    cur.append(r.faults.length ? table(['fault', 'kind', 'node', 'injected'], r.faults.map((f) => [f.id, f.kind, f.node, iso(f.injected_at)])) : el('p', { class: 'muted' }, 'none'));
    cur.append(el('h2', {}, 'Episodes'));
    cur.append(r.episodes.length ? table(['node', 'cause', 'status', 'started', 'serving again'], r.episodes.map((e) => [e.node, e.cause, e.status, iso(e.started_at), iso(e.serving_again_at)])) : el('p', { class: 'muted' }, 'none'));
    cur.append(el('h2', {}, 'Latest windows'));
    const charts = el('div', { class: 'charts', id: 'charts' });
    const w = r.windows;
    charts.append(spark('rate', w.map((x) => [x.at, x.rate]), 'req/s'));
    charts.append(spark('error rate', w.map((x) => [x.at, x.error_rate * 100]), '%'));
    charts.append(spark('ttft p50', w.map((x) => [x.at, x.ttft_p50_ms]), 'ms'));
    cur.append(charts);
  }
  const body = $('#runs tbody');
  body.replaceChildren(...d.runs.map((x) => el('tr', {}, el('td', {}, x.id), el('td', {}, x.plan), el('td', {}, x.status), el('td', {}, iso(x.started_at)), el('td', {}, iso(x.ended_at)))));
}
async function refresh() {
  try {
    const res = await fetch('/api/live', { credentials: 'same-origin', cache: 'no-store' });
    if (res.status === 401) { location.href = '/'; return; }
    render(await res.json());
  } catch (e) {
    $('#updated').textContent = 'the daemon does not answer (' + e.message + '); retrying';
  }
}
refresh();
setInterval(refresh, 2000);
`;

export interface LiveContext {
  token: string;
  store: Store;
  runs: RunManager;
  now: () => number;
}

/** What /api/live gives the page: the run under way with its nodes, faults, episodes and latest windows, and recent runs. */
export function liveView(ctx: LiveContext): Record<string, unknown> {
  const cur = ctx.runs.running;
  const runs = ctx.store.listRuns(20).map((r) => ({ id: r.id, plan: r.plan_name, status: r.status, started_at: r.started_at, ended_at: r.ended_at }));
  let current: Record<string, unknown> | null = null;
  if (cur) {
    const exists = ctx.store.getRun(cur.id) !== undefined;
    current = {
      id: cur.id,
      plan: cur.plan,
      progress: cur.progress,
      faults: exists ? ctx.store.faults(cur.id).filter((f) => f.state === 'active').map((f) => ({ id: f.id, kind: f.kind, node: f.node, injected_at: f.injected_at })) : [],
      episodes: exists ? ctx.store.episodes(cur.id).slice(-20).map((e) => ({ node: e.node, cause: e.cause, status: e.status, started_at: e.started_at, serving_again_at: e.serving_again_at })) : [],
      windows: exists ? ctx.store.recentWindows(cur.id, 60) : [],
    };
  }
  return { now: ctx.now(), current, runs };
}

/** `/`, `/login`, `/live.js` and `/api/live` (the last behind the token like every /api route). */
export function registerLive(app: FastifyInstance, ctx: LiveContext): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))));
  const html = (reply: import('fastify').FastifyReply, code: number, text: string) => reply.code(code).header('content-security-policy', CSP).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(text);
  app.get('/', async (req, reply) => (tokenMatches(requestToken(req.headers), ctx.token) ? html(reply, 200, LIVE) : html(reply, 200, LOGIN(false))));
  app.get('/live.js', async (_req, reply) => reply.header('content-security-policy', CSP).type('text/javascript; charset=utf-8').send(SCRIPT));
  app.post('/login', async (req, reply) => {
    const body = req.body as { token?: unknown } | undefined;
    const token = typeof body?.token === 'string' ? body.token.trim() : '';
    if (!tokenMatches(token, ctx.token)) return html(reply, 401, LOGIN(true));
    return reply.code(303).header('set-cookie', `gauntlet_token=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`).header('location', '/').send();
  });
  app.get('/api/live', async () => liveView(ctx));
}
