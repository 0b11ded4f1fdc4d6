// How one request attempt ended (README, "Outcomes"). The load engines decide it; the store
// keeps it; the analysis counts it.

/** ok | degraded | http_error | conn_error | timeout | truncated | protocol_error | cancelled (see README). */
export type Outcome = 'ok' | 'degraded' | 'http_error' | 'conn_error' | 'timeout' | 'truncated' | 'protocol_error' | 'cancelled';

/** A success: `ok`, or `degraded` (ok, but slower than twice the run's baseline e2e p50). */
export function isSuccess(o: Outcome | string): boolean {
  return o === 'ok' || o === 'degraded';
}
