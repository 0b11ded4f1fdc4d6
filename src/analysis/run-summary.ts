// The numbers of one run, from its rows. Pure: rows in, numbers out (DESIGN.md, Definitions
// and Statistics). Exposure = Σ node time under load − injected failure episodes; MTBF counts
// spontaneous failures and failed recoveries only; injected faults measure recovery.
import type { EpisodeRow, ProbeRow, RequestRow } from '../store/types.js';
import { estimateMtbf, type MtbfEstimate } from './mtbf.js';
import { distribution, wilsonInterval, type Distribution } from './stats.js';

export interface RunInput {
  loadStartedAt: number;
  loadEndedAt: number;
  nodes: string[];
  confidence: number;
  mtbfTargetHours: number;
  episodes: EpisodeRow[];
  requests: RequestRow[];
  probes: ProbeRow[];
}

export interface EpisodeNumbers {
  id: string;
  node: string;
  cause: string;
  faultId: string | null;
  status: string;
  startedAt: number;
  detectedMs: number;
  /** Failure start → container running again (null when it never stopped or never came back). */
  restartMs: number | null;
  /** Container running again (or start) → serving again. */
  readyMs: number | null;
  /** Failure start → serving again (null while not recovered). */
  recoveryMs: number | null;
  requestsAffected: number;
}

export interface RunSummary {
  exposureNodeHours: number;
  perNodeExposureHours: Record<string, number>;
  failures: { spontaneous: number; injected: number; recoveryFailed: number; countedForMtbf: number };
  mtbf: MtbfEstimate;
  recovery: Distribution & { detect: Distribution; restart: Distribution; ready: Distribution };
  availability: { value: number | null; probes: number; ok: number; perNode: Record<string, number | null> };
  requests: {
    total: number;
    ok: number;
    failed: number;
    cancelled: number;
    errorRate: number | null;
    errorRateInterval: [number, number] | null;
    outsideInjected: { total: number; failed: number; errorRate: number | null };
    outcomes: Record<string, number>;
    tokensFromUsage: number;
    tokensFromChunks: number;
  };
  latency: {
    ttft: Distribution;
    /** Coordinated-omission corrected: first token − scheduled send. */
    ttftFromScheduled: Distribution;
    e2e: Distribution;
    queueDelay: Distribution;
  };
  episodes: EpisodeNumbers[];
}

const HOUR = 3_600_000;

function overlap(a0: number, a1: number, b0: number, b1: number): number {
  return Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
}

export function summarizeRun(input: RunInput): RunSummary {
  const { loadStartedAt: t0, loadEndedAt: t1 } = input;
  const window = Math.max(0, t1 - t0);
  const injectedWindows = input.episodes.filter((e) => e.cause !== 'spontaneous').map((e) => ({ node: e.node, from: e.started_at, to: e.serving_again_at ?? t1 }));

  const perNode: Record<string, number> = {};
  for (const node of input.nodes) {
    const lost = injectedWindows.filter((w) => w.node === node).reduce((s, w) => s + overlap(w.from, w.to, t0, t1), 0);
    perNode[node] = Math.max(0, window - lost) / HOUR;
  }
  const exposure = Object.values(perNode).reduce((a, b) => a + b, 0);

  const spontaneous = input.episodes.filter((e) => e.cause === 'spontaneous').length;
  const injected = input.episodes.length - spontaneous;
  const recoveryFailed = input.episodes.filter((e) => e.status === 'recovery_failed').length;
  const injectedRecoveryFailed = input.episodes.filter((e) => e.status === 'recovery_failed' && e.cause !== 'spontaneous').length;
  const counted = spontaneous + injectedRecoveryFailed;

  const episodes: EpisodeNumbers[] = input.episodes.map((e) => ({
    id: e.id,
    node: e.node,
    cause: e.cause,
    faultId: e.fault_id,
    status: e.status,
    startedAt: e.started_at,
    detectedMs: e.detected_at - e.started_at,
    restartMs: e.running_again_at !== null ? e.running_again_at - e.started_at : null,
    readyMs: e.serving_again_at !== null ? e.serving_again_at - (e.running_again_at ?? e.started_at) : null,
    recoveryMs: e.serving_again_at !== null ? e.serving_again_at - e.started_at : null,
    requestsAffected: e.requests_affected,
  }));
  const recovered = episodes.filter((e) => e.recoveryMs !== null);

  const health = input.probes.filter((p) => p.kind === 'health');
  const healthOk = health.filter((p) => p.ok).length;
  const perNodeAvail: Record<string, number | null> = {};
  for (const node of input.nodes) {
    const mine = health.filter((p) => p.node === node);
    perNodeAvail[node] = mine.length ? mine.filter((p) => p.ok).length / mine.length : null;
  }

  const counted_ = input.requests.filter((r) => r.outcome !== 'cancelled');
  const ok = counted_.filter((r) => r.outcome === 'ok');
  const outcomes: Record<string, number> = {};
  for (const r of input.requests) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  // A request belongs to an injected episode when its lifetime overlaps it (in flight at the crash, or sent during it).
  const inInjected = (r: RequestRow): boolean => injectedWindows.some((w) => w.node === r.node && r.end_at >= w.from && r.sent_at <= w.to);
  const outside = counted_.filter((r) => !inInjected(r));
  const outsideFailed = outside.filter((r) => r.outcome !== 'ok').length;
  const failed = counted_.length - ok.length;

  return {
    exposureNodeHours: exposure,
    perNodeExposureHours: perNode,
    failures: { spontaneous, injected, recoveryFailed, countedForMtbf: counted },
    mtbf: estimateMtbf(exposure, counted, input.confidence, input.mtbfTargetHours),
    recovery: {
      ...distribution(recovered.map((e) => e.recoveryMs as number)),
      detect: distribution(episodes.map((e) => e.detectedMs)),
      restart: distribution(recovered.filter((e) => e.restartMs !== null).map((e) => e.restartMs as number)),
      ready: distribution(recovered.map((e) => e.readyMs as number)),
    },
    availability: { value: health.length ? healthOk / health.length : null, probes: health.length, ok: healthOk, perNode: perNodeAvail },
    requests: {
      total: counted_.length,
      ok: ok.length,
      failed,
      cancelled: input.requests.length - counted_.length,
      errorRate: counted_.length ? failed / counted_.length : null,
      errorRateInterval: counted_.length ? wilsonInterval(failed, counted_.length, 0.95) : null,
      outsideInjected: { total: outside.length, failed: outsideFailed, errorRate: outside.length ? outsideFailed / outside.length : null },
      outcomes,
      tokensFromUsage: ok.filter((r) => r.tokens_source === 'usage').length,
      tokensFromChunks: ok.filter((r) => r.tokens_source === 'chunks').length,
    },
    latency: {
      ttft: distribution(ok.filter((r) => r.ttft_ms !== null).map((r) => r.ttft_ms as number)),
      ttftFromScheduled: distribution(ok.filter((r) => r.first_token_at !== null).map((r) => (r.first_token_at as number) - r.scheduled_at)),
      e2e: distribution(ok.map((r) => r.e2e_ms)),
      queueDelay: distribution(counted_.map((r) => r.queue_delay_ms)),
    },
    episodes,
  };
}
