// Client-visible outage at a service endpoint (a router in front of the nodes) caused by one
// fault: what the release criteria call failover time. Pure: the service's requests in, one
// span out. With round-robin, requests that land on the dead node fail while the others
// succeed, so "from the first failure to the next success" would measure the spacing of
// requests, not the failover: the outage runs from the first failure until the first response
// that began after the last failing request was sent — the router no longer sends anyone to
// the dead node. Failures join the outage while each comes within a gap of the one before
// (1 s, or three request spacings at low rates); a lone failure seconds later (a timeout on a
// busy machine) is not the fault's failover, and is counted apart.
import { isSuccess } from '../store/types.js';

export interface ServiceRequest {
  sent_at: number;
  response_at: number | null;
  end_at: number;
  outcome: string;
}

export interface ClientOutage {
  /** First evidence: a timeout's send, any other failure's end. */
  startedAt: number;
  /** When the last failing request of the outage was sent: the service still failed then. */
  lastFailedSentAt: number;
  /** The first response begun by a request sent after the last failing one; null: never. */
  servingAgainAt: number | null;
  outageMs: number | null;
  failed: number;
  /** Failures in the window after the outage (not part of it). */
  laterFailures: number;
}

/**
 * The outage among requests sent in [from, to) (a fault's window plus grace, and those already
 * in flight when it began: sent before `from` but failed after it). Null when none failed.
 */
export function clientOutage(requests: readonly ServiceRequest[], from: number, to: number): ClientOutage | null {
  const inWindow = requests.filter((r) => r.outcome !== 'cancelled' && r.sent_at < to && (r.sent_at >= from || r.end_at >= from));
  const allFailed = inWindow.filter((r) => !isSuccess(r.outcome)).sort((a, b) => a.sent_at - b.sent_at);
  if (allFailed.length === 0) return null;
  const sends = inWindow.map((r) => r.sent_at).sort((a, b) => a - b);
  const spacing = sends.slice(1).map((t, i) => t - (sends[i] as number)).sort((a, b) => a - b);
  const gapMs = Math.max(1000, 3 * (spacing[Math.floor(spacing.length / 2)] ?? 0));
  const failed = [allFailed[0] as ServiceRequest];
  for (const r of allFailed.slice(1)) {
    if (r.sent_at - (failed[failed.length - 1] as ServiceRequest).sent_at > gapMs) break;
    failed.push(r);
  }
  const startedAt = Math.min(...failed.map((r) => (r.outcome === 'timeout' ? Math.max(r.sent_at, from) : Math.max(r.end_at, from))));
  const lastSent = Math.max(...failed.map((r) => r.sent_at));
  const after = requests.filter((r) => isSuccess(r.outcome) && r.sent_at > lastSent && r.response_at !== null).map((r) => r.response_at as number);
  // a success that began before the first failure was seen: no client saw an outage longer than that
  const servingAgainAt = after.length > 0 ? Math.max(startedAt, Math.min(...after)) : null;
  return { startedAt, lastFailedSentAt: lastSent, servingAgainAt, outageMs: servingAgainAt === null ? null : servingAgainAt - startedAt, failed: failed.length, laterFailures: allFailed.length - failed.length };
}
