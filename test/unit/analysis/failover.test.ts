import { describe, expect, it } from 'vitest';
import { clientOutage, type ServiceRequest } from '../../../src/analysis/failover.js';

const ok = (sent: number, lat = 20): ServiceRequest => ({ sent_at: sent, response_at: sent + 5, end_at: sent + lat, outcome: 'ok' });
const timeout = (sent: number): ServiceRequest => ({ sent_at: sent, response_at: null, end_at: sent + 1000, outcome: 'timeout' });
const cut = (sent: number, end: number): ServiceRequest => ({ sent_at: sent, response_at: sent + 5, end_at: end, outcome: 'truncated' });

describe('clientOutage', () => {
  it('round-robin over a dead node: runs from the first failure until a response begun after the last failing send, not until the next success', () => {
    // every other request lands on the dead node (from 1000) until the router takes it out (~1200)
    const reqs = [ok(900), ok(950), timeout(1000), ok(1050), timeout(1100), ok(1150), timeout(1200), ok(1250), ok(1300)];
    expect(clientOutage(reqs, 1000, 5000)).toEqual({ startedAt: 1000, lastFailedSentAt: 1200, servingAgainAt: 1255, outageMs: 255, failed: 3, laterFailures: 0 });
  });

  it('a stream in flight when the fault began and cut by it counts from the cut', () => {
    expect(clientOutage([cut(800, 1003), ok(1010)], 1000, 2000)).toEqual({ startedAt: 1003, lastFailedSentAt: 800, servingAgainAt: 1015, outageMs: 12, failed: 1, laterFailures: 0 });
  });

  it('no failure in the window: no outage; failures before it are not the fault’s', () => {
    expect(clientOutage([cut(100, 200), ok(1000), ok(1100)], 1000, 2000)).toBeNull();
  });

  it('nothing served after the last failure: the outage is not over', () => {
    expect(clientOutage([ok(900), timeout(1000), timeout(1100)], 1000, 2000)).toMatchObject({ servingAgainAt: null, outageMs: null, failed: 2 });
  });

  it('a lone failure seconds after the outage (a timeout on a busy machine) is not part of the failover', () => {
    const reqs = [ok(900), timeout(1000), ok(1050), timeout(1100), ok(1150), ok(1200), ok(2000), ok(3000), timeout(4000), ok(4100)];
    expect(clientOutage(reqs, 1000, 6000)).toEqual({ startedAt: 1000, lastFailedSentAt: 1100, servingAgainAt: 1155, outageMs: 155, failed: 2, laterFailures: 1 });
  });

  it('a success that began before the first failure was seen: outage zero, never negative', () => {
    expect(clientOutage([cut(800, 1020), ok(900, 400), { sent_at: 850, response_at: 1010, end_at: 1030, outcome: 'ok' }], 1000, 2000)?.outageMs).toBe(0);
  });
});
