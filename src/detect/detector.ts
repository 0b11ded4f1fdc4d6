// Turns observations of one node — Docker events, health and inference probes, request
// outcomes — into failure episodes (DESIGN.md, Definitions). Pure: no I/O, time comes in with
// each observation and from the injected `now` (for "detected at"). For a stream, serving
// means its first token: a server may send a stream's headers at once, before it can serve
// (vLLM while warming up), so headers alone say only that it is listening.
//
// An episode starts at the first evidence: a `die`/`oom` event, the first of N consecutive
// failed health probes, or the first of a burst of failed requests. It ends when the node is
// seen serving: the earliest moment a successful response began (its headers arrived) among
// inferences sent after the start. Not the send time: a request sent during the outage can
// be held by a proxy or the kernel and answered after the restart (seen on a real engine:
// requests sent 0.2 s into a 1.3 s outage all answered 200 at 1.3 s).
//
// Health probes that time out are not enough to call a node hung: llama.cpp serves /health on
// the same few HTTP threads as its streams and stops answering it past ~6 requests in flight
// while every request still succeeds. A hang is a running container whose health probes time
// out *and* a canary inference fails *and* the load shows no sign of life (no token, no
// successful response) since the first missed probe. Health failing while the node serves is
// `busy`: not a failure, not counted against availability.
import type { ContainerAction } from '../docker/events.js';
import { isSuccess, type EpisodeStatus, type Outcome } from '../store/types.js';

export type NodeState = 'up' | 'busy' | 'degraded' | 'down' | 'recovering';

/** Recent requests looked at for `degraded`: ended within this span, at least DEGRADED_MIN of them. */
export const DEGRADED_SPAN_MS = 10_000;
const DEGRADED_MIN = 3;
/** Successes in a row, none degraded, that end a degraded state. */
const DEGRADED_CLEAR = 5;

export interface StateChange {
  node: string;
  state: NodeState;
  /** When the evidence says the state began. */
  at: number;
  /** When the detector decided it. */
  detectedAt: number;
  reason: string;
}

export type Observation =
  | { type: 'docker'; action: ContainerAction; at: number; exitCode?: number | undefined; signal?: string | undefined }
  | {
      type: 'probe';
      kind: 'health' | 'inference';
      sentAt: number;
      /** When the response began (headers); null when none came. */
      respondedAt: number | null;
      /** When the probe ended: its answer, or its timeout. Default sentAt. */
      endAt?: number;
      ok: boolean;
      timedOut: boolean;
      status?: number | null;
      error?: string | null;
    }
  | {
      type: 'request';
      sentAt: number;
      respondedAt: number | null;
      /** A stream's first content token: when it really served (its headers may come at once, before the server can). */
      firstTokenAt?: number | null;
      endAt: number;
      outcome: Outcome;
      status?: number | null;
      error?: string | null;
    }
  /** The node produced output at `at` (a token arrived on a stream still in flight). */
  | { type: 'alive'; at: number };

export interface Evidence {
  exitCode?: number;
  oomKilled?: boolean;
  hang?: boolean;
  /** What was seen, in order (bounded). */
  signals: { at: number; what: string }[];
  logs?: string[];
  restartCount?: number;
  /** The container itself failed (died, OOM-killed, frozen), not only failures seen from outside. */
  hard?: boolean;
  /** The node's latest telemetry when the episode opened: metric → { at, value }. */
  telemetry?: Record<string, { at: number; value: number }>;
}

export interface Episode {
  id: string;
  node: string;
  status: EpisodeStatus;
  cause: string;
  faultId: string | null;
  startedAt: number;
  detectedAt: number;
  runningAgainAt: number | null;
  readyAt: number | null;
  servingAgainAt: number | null;
  firstEvidence: string;
  evidence: Evidence;
  requestsAffected: number;
}

export interface DetectorConfig {
  probeFailures: number;
  errorBurst: number;
  recoveryLimitMs: number;
}

/** The id of the window during which Gauntlet could not see a node (its Docker engine lost). */
export const BLIND = 'orchestrator:blind';

/**
 * Time windows of injected faults per node, for attributing an episode's cause — and windows
 * of orchestrator blindness (id BLIND: the Docker engine lost), whose failures are Gauntlet's
 * platform failing, not the node.
 */
export class FaultWindows {
  private windows: { node: string; faultId: string; from: number; to: number | null }[] = [];

  constructor(
    private readonly graceMs: number,
    /** Views that every node's faults reach (a service endpoint in front of them). */
    private readonly overAll: ReadonlySet<string> = new Set(),
  ) {}

  open(node: string, faultId: string, from: number): void {
    this.windows.push({ node, faultId, from, to: null });
  }

  close(faultId: string, at: number): void {
    for (const w of this.windows) if (w.faultId === faultId && w.to === null) w.to = at;
  }

  /** Whether a fault's window is open on this node now (injected, not reverted yet). */
  openOn(node: string): boolean {
    return this.windows.some((w) => w.node === node && w.to === null && w.faultId !== BLIND);
  }

  /** Gauntlet lost its view of these nodes at `at` (a blind window per node, until blindEnd). */
  blindStart(nodes: readonly string[], at: number): void {
    for (const node of nodes) if (!this.windows.some((w) => w.node === node && w.faultId === BLIND && w.to === null)) this.windows.push({ node, faultId: BLIND, from: at, to: null });
  }

  /** Gauntlet sees these nodes again (default: every node). */
  blindEnd(at: number, nodes?: readonly string[]): void {
    for (const w of this.windows) if (w.faultId === BLIND && w.to === null && (!nodes || nodes.includes(w.node))) w.to = at;
  }

  /** Forgets a fault that never landed. */
  remove(faultId: string): void {
    this.windows = this.windows.filter((w) => w.faultId !== faultId);
  }

  /**
   * The fault this evidence belongs to. Evidence covers a span [from, to]: a Docker event is
   * an instant; a failed request or probe runs from its send to when its failure was seen.
   * It belongs to a fault when it was seen inside the fault's window (injection to revert,
   * plus the grace period) on this node, or when it was already in flight at the injection
   * (sent before, failed after: the fault's doing, though it started earlier). A request
   * merely in flight during the grace period that fails long after it is not the fault's.
   * Among several, the latest injected wins.
   */
  find(node: string, from: number, to: number = from): string | null {
    // Docker's clock and ours agree to well under this; an event may be stamped a hair early.
    const slack = 100;
    let best: { faultId: string; from: number } | null = null;
    for (const w of this.windows) {
      if (w.node !== node && !(this.overAll.has(node) && w.faultId !== BLIND)) continue;
      const seenInside = to >= w.from - slack && (w.to === null || to <= w.to + this.graceMs);
      const inFlightAtInjection = from <= w.from && to >= w.from - slack;
      if (!seenInside && !inFlightAtInjection) continue;
      if (!best || w.from > best.from) best = w;
    }
    return best?.faultId ?? null;
  }

  /** When a fault was injected (its window opened), or null for an unknown id. */
  openedAt(faultId: string): number | null {
    return this.windows.find((w) => w.faultId === faultId)?.from ?? null;
  }
}

/**
 * Failed requests up to this long before an episode's first other evidence belong to it: a
 * client sees a stream cut at the instant of a crash, and Docker stamps `die` a little later.
 */
export /** How many recent successes a detector keeps for events that arrive late. */
const RECENT_SUCCESSES = 256;
const EARLY_EVIDENCE_MS = 1000;

const FAILURE_OUTCOMES = new Set<Outcome>(['conn_error', 'timeout', 'truncated', 'protocol_error', 'http_error']);
const MAX_SIGNALS = 50;

function isNodeFailure(o: Extract<Observation, { type: 'request' }>): boolean {
  if (!FAILURE_OUTCOMES.has(o.outcome)) return false;
  // A 4xx is the client's mistake (or a policy), not the node failing; 429 and 5xx are the node.
  return o.outcome !== 'http_error' || o.status === undefined || o.status === null || o.status >= 500 || o.status === 429;
}

function requestWhat(o: Extract<Observation, { type: 'request' }>): string {
  return o.outcome === 'http_error' ? `request failed: HTTP ${o.status}` : `request failed: ${o.outcome}${o.error ? ` (${o.error})` : ''}`;
}

/** Failed health probes kept since the node's last sign of life (bounded; only the first N matter). */
const MAX_SINCE_ALIVE = 1000;
/** An open episode's attribution and hard evidence, before held evidence touched it. */
interface HeldSnapshot {
  faultId: string | null;
  cause: string;
  hard: boolean | undefined;
  exitCode: number | undefined;
  oomKilled: boolean | undefined;
  runningAgainAt: number | null;
}

/** Failure evidence kept while an episode is open, to be judged again if it turns out to be a later one's (bounded). */
const MAX_HELD = 2000;
/** Signs of life kept for that judgement: one per this many ms, for this long. */
const ALIVE_GRAIN_MS = 20;
const ALIVE_KEEP_MS = 10 * 60_000;

export class NodeDetector {
  private open: Episode | null = null;
  private lastClosed: Episode | null = null;
  /** Consecutive failed health probes since the last one that passed. */
  private healthStreak: { first: number; count: number; timeoutsOnly: boolean } | null = null;
  /** Failed health probes sent after the last sign of life, in arrival order. */
  private sinceAlive: { sentAt: number; endAt: number; timedOut: boolean; what: string }[] = [];
  /** The latest failed canary (inference probe). */
  private canaryFailed: { sentAt: number; endAt: number } | null = null;
  /** The last moment the node was seen producing output: a token, a successful response. */
  private lastAliveAt = Number.NEGATIVE_INFINITY;
  private busy: { since: number; reason: string } | null = null;
  /** Serving, but slower than twice the baseline or with errors below the episode threshold. */
  private degraded: { since: number; reason: string } | null = null;
  private recent: { endAt: number; kind: 'ok' | 'degraded' | 'failed' }[] = [];
  private reported: NodeState = 'up';
  private errorStreak: { first: number; last: number; count: number; what: string } | null = null;
  /** Failed requests not (yet) part of an episode: when their failure was evidenced, and when it was seen. */
  private recentFailures: { at: number; endAt: number }[] = [];
  /**
   * Recent successes (bounded): when Docker's events arrive late — read back after the engine
   * was lost — a container's restart can be learnt after the requests it then served.
   */
  private recentSuccesses: { sentAt: number; respondedAt: number; what: string }[] = [];
  private containerRunning = true;
  private seq = 0;
  /**
   * Failure evidence observed while an episode was open (failed probes, deaths). Successes are
   * reported when they complete: a response that began before a second failure can complete
   * after it, closing the episode at its response start — and what failed after that start
   * was a new failure, not the old one's. Judged again when the episode closes.
   */
  private held: { o: Observation; before: HeldSnapshot | null }[] = [];
  /** Recent signs of life (coarse, bounded), for judging held evidence afterwards. */
  private aliveTimes: number[] = [];

  constructor(
    readonly node: string,
    private readonly cfg: DetectorConfig,
    private readonly faults: FaultWindows,
    private readonly now: () => number,
    private readonly emit: (episode: Episode) => void,
    private readonly idPrefix = node,
    private readonly onState: (change: StateChange) => void = () => undefined,
  ) {}

  get state(): NodeState {
    if (!this.open) return this.busy ? 'busy' : this.degraded ? 'degraded' : 'up';
    // Down until there is a sign of life (container running again, or healthy but not serving yet).
    return this.open.runningAgainAt !== null || this.open.readyAt !== null ? 'recovering' : 'down';
  }

  get openEpisode(): Episode | null {
    return this.open;
  }

  observe(o: Observation): void {
    switch (o.type) {
      case 'docker':
        this.onDocker(o);
        break;
      case 'probe':
        this.onProbe(o);
        break;
      case 'request':
        this.onRequest(o);
        break;
      case 'alive':
        this.alive(o.at);
        break;
    }
    this.reportState();
  }

  /** Marks an open episode that has outlived the recovery limit as recovery_failed. */
  tick(at: number): void {
    const ep = this.open;
    if (ep && ep.status === 'open' && at - ep.startedAt > this.cfg.recoveryLimitMs) {
      ep.status = 'recovery_failed';
      this.signal(ep, at, `not serving again within the recovery limit (${this.cfg.recoveryLimitMs} ms)`);
      this.emit(ep);
    }
  }

  /** Tells the state's owner when it changed, with when the evidence says it began. */
  private reportState(): void {
    const state = this.state;
    const prev = this.reported;
    if (state === prev) return;
    this.reported = state;
    const ep = this.open;
    const closed = this.lastClosed;
    let at = this.now();
    let reason = 'health probe ok';
    if (state === 'busy' && this.busy) ({ since: at, reason } = this.busy);
    else if (state === 'degraded' && this.degraded) ({ since: at, reason } = this.degraded);
    else if (ep && state === 'down') [at, reason] = [ep.startedAt, ep.firstEvidence];
    else if (ep) [at, reason] = ep.runningAgainAt !== null ? [ep.runningAgainAt, 'container running again'] : [ep.readyAt ?? at, 'health probe ok'];
    else if ((prev === 'down' || prev === 'recovering') && closed?.servingAgainAt != null) [at, reason] = [closed.servingAgainAt, 'serving again'];
    this.onState({ node: this.node, state, at, detectedAt: this.now(), reason });
  }

  /** The node produced output at `at`: it is not hung, whatever its health endpoint says. */
  private alive(at: number): void {
    if (at <= this.lastAliveAt) return;
    this.lastAliveAt = at;
    const lastKept = this.aliveTimes.at(-1);
    if (lastKept === undefined || at - lastKept >= ALIVE_GRAIN_MS) {
      this.aliveTimes.push(at);
      while ((this.aliveTimes[0] as number) < at - ALIVE_KEEP_MS) this.aliveTimes.shift();
    }
    if (this.sinceAlive.length > 0) this.sinceAlive = this.sinceAlive.filter((f) => f.sentAt > at);
    this.judgeHealth();
  }

  /** Adds evidence gathered outside the event stream (log tail, restart count). */
  annotate(update: Partial<Pick<Evidence, 'logs' | 'restartCount' | 'oomKilled'>>): void {
    const ep = this.open ?? this.lastClosed;
    if (!ep) return;
    Object.assign(ep.evidence, update);
    this.emit(ep);
  }

  /**
   * The episode, already closed, that a late Docker event belongs to: events read back after the
   * engine was lost can tell of a death the detector already saw from outside (as a hang or an
   * error burst) and saw the end of (serving again). They complete that episode, not a new one.
   */
  private closedHolding(at: number): Episode | null {
    const last = this.lastClosed;
    if (this.open || !last || last.servingAgainAt === null) return null;
    return at >= last.startedAt - EARLY_EVIDENCE_MS && at <= last.servingAgainAt ? last : null;
  }

  private onDocker(o: Extract<Observation, { type: 'docker' }>): void {
    const late = o.action === 'die' || o.action === 'oom' || o.action === 'start' || o.action === 'restart' ? this.closedHolding(o.at) : null;
    if (late) {
      if (o.action === 'die' || o.action === 'oom') {
        if (o.at < late.startedAt) late.startedAt = o.at;
        late.evidence.hard = true;
        if (o.action === 'oom') late.evidence.oomKilled = true;
        if (o.exitCode !== undefined) late.evidence.exitCode = o.exitCode;
        this.signal(late, o.at, `${o.action === 'oom' ? 'container OOM-killed' : `container died (exit code ${o.exitCode ?? '?'})`} (learnt late)`);
        this.judgeRecovery(late);
      } else if (late.runningAgainAt === null && o.at >= late.startedAt) {
        late.runningAgainAt = o.at;
        this.signal(late, o.at, `container ${o.action === 'restart' ? 'restarted' : 'started'} (learnt late)`);
      }
      this.emit(late);
      return;
    }
    switch (o.action) {
      case 'oom': {
        if (this.open) this.hold(o);
        const ep = this.ensureOpen(o.at, 'container OOM-killed', { hard: true });
        ep.evidence.oomKilled = true;
        this.containerRunning = false;
        this.emit(ep);
        return;
      }
      case 'die': {
        const what = `container died (exit code ${o.exitCode ?? '?'})`;
        if (this.open) this.hold(o);
        const ep = this.ensureOpen(o.at, what, { hard: true });
        if (o.exitCode !== undefined) ep.evidence.exitCode = o.exitCode;
        this.containerRunning = false;
        this.emit(ep);
        return;
      }
      case 'kill':
        if (this.open) this.signal(this.open, o.at, `kill signal ${o.signal ?? '?'}`);
        return;
      case 'start':
      case 'restart':
      case 'unpause':
        if (this.open) this.hold(o);
        this.containerRunning = true;
        if (this.open && this.open.runningAgainAt === null && o.at >= this.open.startedAt) {
          const ep = this.open;
          ep.runningAgainAt = o.at;
          this.signal(ep, o.at, `container ${o.action === 'unpause' ? 'unpaused' : o.action === 'restart' ? 'restarted' : 'started'}`);
          this.emit(ep);
          // Learnt late (events read back after the engine answered again): the node may have
          // served since. A request sent after it ran again was served by it: the first such
          // response start is when it served again.
          const since = this.recentSuccesses.filter((x) => x.sentAt >= o.at && x.sentAt >= ep.startedAt);
          if (since.length > 0) {
            const first = since.reduce((a, b) => (b.respondedAt < a.respondedAt ? b : a));
            this.servingAgain(first.sentAt, first.respondedAt, `${first.what} (before the container's start was known)`, false);
          }
        }
        return;
      case 'pause':
        // Not evidence of failure by itself: a hang is found the way a real one would be
        // (probes time out while the container runs). Noted on an open episode.
        if (this.open) this.signal(this.open, o.at, 'container paused');
        return;
      default:
        return;
    }
  }

  private onProbe(o: Extract<Observation, { type: 'probe' }>): void {
    const ep = this.open;
    const endAt = o.endAt ?? o.sentAt;
    if (o.ok) {
      const respondedAt = o.respondedAt ?? o.sentAt;
      if (o.kind === 'inference') this.servingAgain(o.sentAt, respondedAt, 'canary inference succeeded');
      else if (ep && ep.readyAt === null && o.sentAt >= ep.startedAt) {
        ep.readyAt = respondedAt;
        this.signal(ep, respondedAt, 'health probe ok');
        this.emit(ep);
      }
      if (o.kind === 'health') {
        this.healthStreak = null;
        this.sinceAlive = [];
        this.busy = null;
      }
      // An answer of any kind from the process: it is not frozen.
      this.alive(respondedAt);
      return;
    }
    // A late report of a probe sent before the node served again (it timed out across the thaw,
    // its answer queued behind the freeze) belongs to the episode that closed: it says nothing of
    // the node now, and must not start a 'busy' span dated back into that episode.
    const closedAt = this.lastClosed?.servingAgainAt;
    if (!ep && closedAt != null && o.sentAt < closedAt) return;
    if (ep) this.hold(o);
    if (o.kind === 'inference') {
      if (!this.canaryFailed || o.sentAt > this.canaryFailed.sentAt) this.canaryFailed = { sentAt: o.sentAt, endAt };
      if (!ep) this.judgeHealth();
      return;
    }
    if (ep) return;
    const s = (this.healthStreak ??= { first: o.sentAt, count: 0, timeoutsOnly: true });
    s.count++;
    s.first = Math.min(s.first, o.sentAt);
    s.timeoutsOnly &&= o.timedOut;
    if (o.sentAt > this.lastAliveAt) {
      this.sinceAlive.push({ sentAt: o.sentAt, endAt, timedOut: o.timedOut, what: o.status ? `HTTP ${o.status}` : (o.error ?? 'failed') });
      if (this.sinceAlive.length > MAX_SINCE_ALIVE) this.sinceAlive.shift();
    }
    this.judgeHealth();
  }

  /**
   * Decides what failing health probes mean. Answers that are errors (503, refused) with no
   * sign of life since they began: down. Only timeouts, container running, no sign of life
   * since the first of them and a canary sent since then failed too: a hang. Health failing
   * while the node shows life: busy.
   */
  private judgeHealth(): void {
    if (this.open) return;
    const n = this.cfg.probeFailures;
    const recent = this.sinceAlive;
    if (recent.length >= n) {
      const first = recent[0] as (typeof recent)[number];
      const to = Math.max(...recent.map((f) => f.endAt));
      const timeoutsOnly = recent.every((f) => f.timedOut);
      if (!timeoutsOnly || !this.containerRunning) {
        const last = recent[recent.length - 1] as (typeof recent)[number];
        this.busy = null;
        this.emit(this.ensureOpen(first.sentAt, `${recent.length} consecutive health probes failed (${last.what})`, { to }));
        return;
      }
      const canary = this.canaryFailed;
      if (canary && canary.sentAt > this.lastAliveAt) {
        this.busy = null;
        const opened = this.ensureOpen(
          first.sentAt,
          `${recent.length} consecutive health probes timed out while the container runs, a canary inference failed and the load showed no sign of life: hang`,
          { to: Math.max(to, canary.endAt) },
        );
        opened.evidence.hang = true;
        this.emit(opened);
        return;
      }
    }
    const s = this.healthStreak;
    if (!this.busy && s && s.count >= n && this.lastAliveAt >= s.first) {
      this.busy = {
        since: s.first,
        reason: `${s.count} consecutive health probes failed${s.timeoutsOnly ? ' (timed out)' : ''} while the node still serves (last sign of life ${new Date(this.lastAliveAt).toISOString()})`,
      };
    }
  }

  /** The node's recent requests: degraded when half of them are slow, or some failed (below the episode threshold). */
  private judgeDegraded(o: Extract<Observation, { type: 'request' }>): void {
    const kind = o.outcome === 'degraded' ? 'degraded' : isSuccess(o.outcome) ? 'ok' : isNodeFailure(o) ? 'failed' : null;
    if (kind === null) return;
    // a late report of a failure during the last episode says nothing of the node now
    const closed = this.lastClosed?.servingAgainAt;
    if (kind === 'failed' && !this.open && closed != null && o.sentAt < closed) return;
    this.recent.push({ endAt: o.endAt, kind });
    if (this.recent.length > 200) this.recent.shift();
    if (this.open) {
      this.degraded = null;
      return;
    }
    const last = this.recent.filter((x) => x.endAt >= o.endAt - DEGRADED_SPAN_MS);
    const slow = last.filter((x) => x.kind === 'degraded').length;
    const failed = last.filter((x) => x.kind === 'failed').length;
    if (!this.degraded && last.length >= DEGRADED_MIN && (slow * 2 >= last.length || failed > 0)) {
      const first = last.find((x) => x.kind !== 'ok') as (typeof last)[number];
      this.degraded = { since: first.endAt, reason: `${slow} of the last ${last.length} requests degraded (e2e over twice the baseline p50), ${failed} failed` };
    } else if (this.degraded && this.recent.length >= DEGRADED_CLEAR && this.recent.slice(-DEGRADED_CLEAR).every((x) => x.kind === 'ok')) {
      this.degraded = null;
    }
  }

  private onRequest(o: Extract<Observation, { type: 'request' }>): void {
    this.judgeDegraded(o);
    if (isSuccess(o.outcome)) {
      this.alive(o.endAt);
      this.servingAgain(o.sentAt, o.firstTokenAt ?? o.respondedAt ?? o.endAt, 'request succeeded');
      if (this.errorStreak && o.endAt >= this.errorStreak.first) this.errorStreak = null;
      // The node served at o.sentAt: failures before that are not the start of a later episode.
      this.recentFailures = this.recentFailures.filter((f) => f.at > o.sentAt);
      return;
    }
    if (!isNodeFailure(o)) return;
    const evidenceAt = o.outcome === 'timeout' ? o.sentAt : o.endAt;
    const last = this.lastClosed;
    if (!this.open && last && last.servingAgainAt !== null && o.sentAt < last.servingAgainAt && o.endAt >= last.startedAt) {
      // A late report of a request that failed during the previous episode.
      last.requestsAffected++;
      this.emit(last);
      return;
    }
    if (this.open) {
      if (evidenceAt < this.open.startedAt && evidenceAt >= this.open.startedAt - EARLY_EVIDENCE_MS) this.ensureOpen(evidenceAt, requestWhat(o), { to: o.endAt });
      else if (o.endAt >= this.open.startedAt) this.deepen(this.open, o.sentAt, o.endAt, requestWhat(o), false);
      if (o.endAt >= this.open.startedAt) {
        this.open.requestsAffected++;
        if (this.open.requestsAffected <= 3) this.signal(this.open, evidenceAt, requestWhat(o));
        this.emit(this.open);
      }
      return;
    }
    this.recentFailures.push({ at: evidenceAt, endAt: o.endAt });
    if (this.recentFailures.length > 1000) this.recentFailures.shift();
    const s = this.errorStreak;
    if (!s) this.errorStreak = { first: evidenceAt, last: o.endAt, count: 1, what: requestWhat(o) };
    else {
      s.count++;
      s.first = Math.min(s.first, evidenceAt);
      s.last = Math.max(s.last, o.endAt);
    }
    const streak = this.errorStreak as { first: number; last: number; count: number; what: string };
    if (streak.count >= this.cfg.errorBurst) {
      this.ensureOpen(streak.first, `${streak.count} failed requests in a row (first: ${streak.what})`, { to: streak.last });
    }
  }

  /** A successful inference, sent at sentAt, whose response began at respondedAt: the node serves. */
  private servingAgain(sentAt: number, respondedAt: number, what: string, remember = true): void {
    if (remember) {
      this.recentSuccesses.push({ sentAt, respondedAt, what });
      if (this.recentSuccesses.length > RECENT_SUCCESSES) this.recentSuccesses.shift();
    }
    // Successes are reported in completion order: a one-token probe can finish before a
    // streamed request whose response began earlier. The earliest response start wins.
    const last = this.lastClosed;
    if (!this.open && last && last.servingAgainAt !== null && sentAt >= last.startedAt && respondedAt < last.servingAgainAt) {
      last.servingAgainAt = respondedAt;
      this.judgeRecovery(last);
      this.signal(last, respondedAt, `${what} (answered before the first reported success)`);
      this.emit(last);
      return;
    }
    const ep = this.open;
    // A request sent before the failure began says nothing about recovery.
    if (!ep || sentAt < ep.startedAt) return;
    ep.servingAgainAt = respondedAt;
    this.judgeRecovery(ep);
    this.signal(ep, respondedAt, what);
    this.emit(ep);
    this.lastClosed = ep;
    this.open = null;
    this.healthStreak = null;
    this.sinceAlive = [];
    this.canaryFailed = null;
    this.errorStreak = null;
    this.recentFailures = [];
    this.judgeHeld(respondedAt);
  }

  private hold(o: Observation): void {
    const ep = this.open;
    // what the open episode was before this evidence touched it: undone if it was a later failure's
    const before: HeldSnapshot | null =
      ep && o.type === 'docker'
      ? { faultId: ep.faultId, cause: ep.cause, hard: ep.evidence.hard, exitCode: ep.evidence.exitCode, oomKilled: ep.evidence.oomKilled, runningAgainAt: ep.runningAgainAt }
      : null;
    this.held.push({ o, before });
    if (this.held.length > MAX_HELD) this.held.shift();
  }

  /**
   * An episode just closed at `servedAt` (a response start). The failure evidence observed
   * while it was open and sent (or happening) after that start is judged again, in the order it
   * was seen and among the signs of life seen since, as if no episode had been open: a node
   * that served once between two freezes has had two failures, not one long one.
   */
  private judgeHeld(servedAt: number): void {
    const startOf = (o: Observation): number => (o.type === 'probe' ? o.sentAt : o.type === 'docker' ? o.at : Number.NaN);
    const seenAt = (o: Observation): number => (o.type === 'probe' ? (o.endAt ?? o.sentAt) : o.type === 'docker' ? o.at : Number.NaN);
    const after = this.held.filter((h) => startOf(h.o) > servedAt);
    this.held = [];
    if (after.length === 0) return;
    // The episode just closed took in evidence of what began after it ended (a death, a restart):
    // put it back as it was before the first of those, and keep its signals up to its end.
    const closed = this.lastClosed;
    const first = after.find((h) => h.o.type === 'docker')?.before;
    if (closed && first) {
      closed.faultId = first.faultId;
      closed.cause = first.cause;
      closed.runningAgainAt = first.runningAgainAt;
      for (const k of ['hard', 'exitCode', 'oomKilled'] as const) {
        if (first[k] === undefined) delete closed.evidence[k];
        else (closed.evidence as unknown as Record<string, unknown>)[k] = first[k];
      }
      closed.evidence.signals = closed.evidence.signals.filter((s) => s.at <= (closed.servingAgainAt ?? Number.POSITIVE_INFINITY));
      this.emit(closed);
    }
    const held = after.map((h) => h.o);
    this.reportState(); // the node served: that is a state of its own, however short
    const from = Math.min(...held.map(startOf));
    const saved = this.lastAliveAt;
    // what the detector knew of the node's life when the first held failure began
    this.lastAliveAt = Math.max(servedAt, ...this.aliveTimes.filter((t) => t <= from));
    const lives = this.aliveTimes.filter((t) => t > from);
    const events: { at: number; o: Observation | null }[] = [...held.map((o) => ({ at: seenAt(o), o })), ...lives.map((t) => ({ at: t, o: null }))];
    events.sort((a, b) => a.at - b.at);
    // The replay looks for a failure that began after the episode's end, nothing else: a 'busy'
    // judgement it would reach is about the past (probes late while the node caught up), and is
    // not put back in time; the node's busy state is judged from what comes next.
    const busyBefore = this.busy;
    for (const e of events) {
      if (e.o === null) this.alive(e.at);
      else if (e.o.type === 'probe') this.onProbe(e.o);
      else if (e.o.type === 'docker') this.onDocker(e.o);
    }
    this.lastAliveAt = Math.max(saved, this.lastAliveAt);
    if (!this.open) {
      this.busy = busyBefore;
      this.healthStreak = null;
      this.sinceAlive = [];
    }
  }

  /** Recovered, or recovery_failed when it took longer than the limit — whenever that is noticed. */
  private judgeRecovery(ep: Episode): void {
    if (ep.servingAgainAt !== null && ep.servingAgainAt - ep.startedAt > this.cfg.recoveryLimitMs) ep.status = 'recovery_failed';
    else if (ep.status === 'open') ep.status = 'recovered';
  }

  /**
   * Opens an episode at `at`, or adds the evidence to the open one. `to` is when the evidence
   * was seen (a failed request's end, a probe's timeout); `hard` marks evidence that the
   * container itself failed (died, OOM-killed, frozen), as opposed to failures seen from
   * outside that a busy server could also produce.
   */
  private ensureOpen(at: number, what: string, opts: { to?: number; hard?: boolean } = {}): Episode {
    const to = Math.max(at, opts.to ?? at);
    const ep = this.open;
    if (ep) {
      // Earlier evidence moves the start back; it never takes an episode away from the fault
      // it was attributed to (a request sent before a kill that times out after it is the
      // kill's doing, not a spontaneous failure that happened to precede it).
      if (at < ep.startedAt) ep.startedAt = at;
      this.deepen(ep, at, to, what, opts.hard ?? false);
      this.signal(ep, at, what);
      return ep;
    }
    this.held = [];
    const early = this.recentFailures.filter((f) => f.at < at && f.at >= at - EARLY_EVIDENCE_MS);
    const start = Math.min(at, ...early.map((f) => f.at));
    const opened: Episode = {
      id: `${this.idPrefix}-ep${++this.seq}`,
      node: this.node,
      status: 'open',
      cause: 'spontaneous',
      faultId: null,
      startedAt: start,
      detectedAt: this.now(),
      runningAgainAt: null,
      readyAt: null,
      servingAgainAt: null,
      firstEvidence: what,
      evidence: { signals: [], hard: opts.hard ?? false },
      requestsAffected: this.recentFailures.filter((f) => f.at >= start).length,
    };
    if (start < at) opened.evidence.signals.push({ at: start, what: `request failed ${Math.round(at - start)} ms before: counted as the start` });
    // The span the first evidence covers, early failures included: a fault window it
    // overlaps (plus grace) caused it.
    const faultId = this.faults.find(this.node, start, Math.max(to, ...early.map((f) => f.endAt)));
    if (faultId === BLIND) {
      opened.cause = 'orchestrator';
      opened.evidence.signals.push({ at, what: 'while Gauntlet had lost the Docker engine: counted as orchestrator blindness, not a node failure' });
    } else if (faultId) {
      opened.faultId = faultId;
      opened.cause = `injected:${faultId}`;
    }
    this.recentFailures = [];
    this.healthStreak = null;
    this.sinceAlive = [];
    this.busy = null;
    this.degraded = null;
    this.errorStreak = null;
    this.signal(opened, at, what);
    this.open = opened;
    this.emit(opened);
    return opened;
  }

  /**
   * An open spontaneous episode that a fault injected after it began then deepens belongs to
   * that fault — unless the container had already failed by itself (died, OOM-killed) before
   * the fault: that failure was real and stays spontaneous. A hang seen only through probe
   * timeouts is outside evidence: a busy server looks the same from here. Attribution only
   * ever goes from spontaneous to injected, never back.
   */
  private deepen(ep: Episode, from: number, to: number, what: string, hard: boolean): void {
    if (ep.faultId === null && ep.cause === 'spontaneous' && ep.evidence.hard !== true) {
      const found = this.faults.find(this.node, from, to);
      const faultId = found === BLIND ? null : found;
      const injectedAt = faultId === null ? null : this.faults.openedAt(faultId);
      if (faultId !== null && injectedAt !== null && injectedAt >= ep.startedAt) {
        ep.faultId = faultId;
        ep.cause = `injected:${faultId}`;
        this.signal(ep, to, `open since ${new Date(ep.startedAt).toISOString()} on evidence seen from outside; deepened by fault ${faultId} (${what}): attributed to it`);
      }
    }
    if (hard) ep.evidence.hard = true;
  }

  private signal(ep: Episode, at: number, what: string): void {
    if (ep.evidence.signals.length < MAX_SIGNALS) ep.evidence.signals.push({ at, what });
  }
}
