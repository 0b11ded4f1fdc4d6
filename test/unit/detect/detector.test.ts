import { describe, expect, it } from 'vitest';
import { FaultWindows, NodeDetector, type Episode, type Observation } from '../../../src/detect/detector.js';
import { fixtureEvents } from '../docker/events.test.js';

function setup(opts: { grace?: number; limit?: number; burst?: number; probeFailures?: number } = {}) {
  const episodes = new Map<string, Episode>();
  const windows = new FaultWindows(opts.grace ?? 5000);
  let now = 0;
  const d = new NodeDetector(
    'node-a',
    { probeFailures: opts.probeFailures ?? 2, errorBurst: opts.burst ?? 3, recoveryLimitMs: opts.limit ?? 60_000 },
    windows,
    () => now,
    (e) => episodes.set(e.id, structuredClone(e)),
  );
  const feed = (o: Observation, at?: number): void => {
    now = at ?? ('at' in o ? o.at : 'endAt' in o && o.endAt !== undefined ? o.endAt : o.sentAt) + 3;
    d.observe(o);
  };
  return { d, episodes, windows, feed, setNow: (t: number) => (now = t) };
}

const ok = (sentAt: number, respondedAt = sentAt): Observation => ({ type: 'request', sentAt, respondedAt, endAt: respondedAt + 400, outcome: 'ok' });
const healthTimeout = (sentAt: number, timeoutMs = 1000): Observation => ({ type: 'probe', kind: 'health', sentAt, endAt: sentAt + timeoutMs, respondedAt: null, ok: false, timedOut: true });
const canaryTimeout = (sentAt: number, timeoutMs = 1000): Observation => ({ type: 'probe', kind: 'inference', sentAt, endAt: sentAt + timeoutMs, respondedAt: null, ok: false, timedOut: true });
const fail = (sentAt: number, outcome: 'conn_error' | 'truncated' | 'timeout' = 'conn_error', endAt = sentAt + 1): Observation => ({ type: 'request', sentAt, respondedAt: null, endAt, outcome });

describe('NodeDetector on the real crash-and-restart event sequence', () => {
  const events = fixtureEvents('events-crash-restart-on-failure.jsonl');
  const die = events.find((e) => e.action === 'die');
  const restart = events.at(-1);

  it('opens one episode at the die event, notes the restart, closes at the first success sent after', () => {
    const { d, episodes, feed } = setup();
    if (!die || !restart) throw new Error('fixture changed');
    for (const e of events) feed({ type: 'docker', action: e.action, at: e.at, exitCode: e.exitCode });
    expect(d.state).toBe('recovering');
    feed(fail(restart.at + 50));
    feed({ type: 'probe', kind: 'inference', sentAt: restart.at + 400, respondedAt: restart.at + 400, ok: true, timedOut: false });
    expect(d.state).toBe('up');
    const all = [...episodes.values()];
    expect(all).toHaveLength(1);
    const ep = all[0] as Episode;
    expect(ep).toMatchObject({ status: 'recovered', cause: 'spontaneous', startedAt: die.at, runningAgainAt: restart.at, servingAgainAt: restart.at + 400 });
    expect(ep.evidence.exitCode).toBe(137);
    expect(ep.detectedAt - ep.startedAt).toBe(3);
    expect(ep.requestsAffected).toBe(1);
  });

  it('events read back late (after the engine was lost): serving again is the first request served after the restart, not when it was learnt', () => {
    const { episodes, feed } = setup();
    if (!die || !restart) throw new Error('fixture changed');
    // While the engine was unreachable: the node served before the death, then (after it restarted) again.
    feed(ok(die.at - 500, die.at - 480));
    feed(ok(restart.at + 300, restart.at + 320));
    feed(ok(restart.at + 200, restart.at + 240)); // completion order is not response order
    // The engine answers again 5 s later; the events are read back, in order.
    for (const e of events) feed({ type: 'docker', action: e.action, at: e.at, exitCode: e.exitCode }, restart.at + 5000);
    const ep = [...episodes.values()][0] as Episode;
    expect(ep).toMatchObject({ status: 'recovered', startedAt: die.at, runningAgainAt: restart.at, servingAgainAt: restart.at + 240, detectedAt: restart.at + 5000 });
    expect(ep.evidence.signals.at(-1)?.what).toBe("request succeeded (before the container's start was known)");
  });

  it('a death learnt late, after the episode it caused was seen from outside and closed, completes that episode', () => {
    const { episodes, feed } = setup({ burst: 3 });
    if (!die || !restart) throw new Error('fixture changed');
    // Blind: requests fail from the death on, then succeed once it serves again.
    for (let i = 0; i < 3; i++) feed(fail(die.at + 10 + i * 20));
    feed(ok(restart.at + 300, restart.at + 320));
    expect([...episodes.values()]).toHaveLength(1);
    // The engine answers again: its events are read back.
    for (const e of events) feed({ type: 'docker', action: e.action, at: e.at, exitCode: e.exitCode }, restart.at + 5000);
    const all = [...episodes.values()];
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ startedAt: die.at, runningAgainAt: restart.at, servingAgainAt: restart.at + 320, status: 'recovered' });
    expect(all[0]?.evidence).toMatchObject({ hard: true, exitCode: 137 });
  });

  it('attributes the episode to a fault whose window holds its start', () => {
    const { episodes, windows, feed } = setup();
    if (!die) throw new Error('fixture changed');
    windows.open('node-a', 'f1', die.at - 2);
    for (const e of events) feed({ type: 'docker', action: e.action, at: e.at, exitCode: e.exitCode });
    expect([...episodes.values()][0]).toMatchObject({ cause: 'injected:f1', faultId: 'f1' });
  });

  it('a fault on another node, or one whose window (plus grace) has passed, is not the cause', () => {
    const { episodes, windows, feed } = setup({ grace: 1000 });
    if (!die) throw new Error('fixture changed');
    windows.open('node-b', 'other-node', die.at - 10);
    windows.open('node-a', 'old', die.at - 10_000);
    windows.close('old', die.at - 5000);
    for (const e of events) feed({ type: 'docker', action: e.action, at: e.at, exitCode: e.exitCode });
    expect([...episodes.values()][0]).toMatchObject({ cause: 'spontaneous', faultId: null });
  });
});

describe('NodeDetector: other evidence', () => {
  it('OOM: oom then die makes one episode marked OOMKilled', () => {
    const { episodes, feed } = setup();
    for (const e of fixtureEvents('events-oom.jsonl')) feed({ type: 'docker', action: e.action, at: e.at, exitCode: e.exitCode });
    const all = [...episodes.values()];
    expect(all).toHaveLength(1);
    expect(all[0]?.evidence).toMatchObject({ oomKilled: true, exitCode: 137 });
    expect(all[0]?.firstEvidence).toBe('container OOM-killed');
  });

  it('a hang: health probes time out while the container runs and a canary fails; start is the first failed probe', () => {
    const { d, episodes, feed } = setup({ probeFailures: 3 });
    feed({ type: 'probe', kind: 'health', sentAt: 1000, respondedAt: 1000, ok: true, timedOut: false });
    for (const t of [2000, 3000, 4000]) feed({ type: 'probe', kind: 'health', sentAt: t, respondedAt: null, ok: false, timedOut: true });
    // Timeouts alone could be a busy server: no decision until an inference fails too.
    expect(d.state).toBe('up');
    expect(episodes.size).toBe(0);
    feed(canaryTimeout(2100));
    expect(d.state).toBe('down');
    const ep = [...episodes.values()][0] as Episode;
    expect(ep.startedAt).toBe(2000);
    expect(ep.evidence.hang).toBe(true);
    expect(ep.firstEvidence).toMatch(/3 consecutive health probes timed out while the container runs, a canary inference failed and the load showed no sign of life: hang/);
  });

  it('a canary that failed before the last sign of life does not confirm a hang', () => {
    const { d, episodes, feed } = setup({ probeFailures: 2 });
    feed(canaryTimeout(1000)); // sent at 1000, failed at 2000
    feed({ type: 'alive', at: 1500 });
    for (const t of [1600, 1800]) feed({ type: 'probe', kind: 'health', sentAt: t, endAt: t + 1000, respondedAt: null, ok: false, timedOut: true });
    expect(episodes.size).toBe(0);
    expect(d.state).not.toBe('down');
    feed(canaryTimeout(1700));
    expect([...episodes.values()][0]).toMatchObject({ startedAt: 1600 });
  });

  it('a node that serves once between two hangs has two episodes, though the response that ends the first completes after the second began', () => {
    const { d, episodes, feed } = setup({ probeFailures: 2 });
    feed({ type: 'probe', kind: 'health', sentAt: 1000, respondedAt: 1000, ok: true, timedOut: false });
    feed(healthTimeout(2000, 500));
    feed(healthTimeout(2100, 500));
    feed(canaryTimeout(2050, 500));
    expect(d.state).toBe('down');
    // The first hang ends at 5780; a request sent at 5800 begins its response at 5830. The node
    // freezes again at 5950, before that response completes: it completes at 9990.
    for (const t of [5960, 6060, 6160]) feed(healthTimeout(t, 500));
    feed(canaryTimeout(5970, 500));
    feed({ type: 'request', sentAt: 5800, respondedAt: 5830, firstTokenAt: 5830, endAt: 9990, outcome: 'ok' });
    const [first, second] = [...episodes.values()];
    expect(first).toMatchObject({ startedAt: 2000, servingAgainAt: 5830, status: 'recovered' });
    expect(second, 'the second hang is an episode of its own').toMatchObject({ startedAt: 5960, servingAgainAt: null, status: 'open' });
    expect(second?.evidence.hang).toBe(true);
    expect(d.state).toBe('down');
    feed({ type: 'probe', kind: 'inference', sentAt: 10_100, respondedAt: 10_120, ok: true, timedOut: false });
    expect([...episodes.values()][1]).toMatchObject({ startedAt: 5960, servingAgainAt: 10_120, status: 'recovered' });
    expect(episodes.size).toBe(2);
  });

  it('failures held while an episode was open are not a second one when the node showed life among them', () => {
    const { d, episodes, feed } = setup({ probeFailures: 2 });
    feed(healthTimeout(2000, 500));
    feed(healthTimeout(2100, 500));
    feed(canaryTimeout(2050, 500));
    // slow, not frozen: probes time out, but output keeps coming (a sign of life at 6300)
    for (const t of [5960, 6060]) feed(healthTimeout(t, 500));
    feed(canaryTimeout(5970, 500));
    feed({ type: 'alive', at: 6300 });
    feed({ type: 'request', sentAt: 5800, respondedAt: 5830, firstTokenAt: 5830, endAt: 6900, outcome: 'ok' });
    expect(episodes.size).toBe(1);
    expect([...episodes.values()][0]).toMatchObject({ servingAgainAt: 5830, status: 'recovered' });
    expect(d.state).not.toBe('down');
  });

  it('a death after the response that ended an episode began, learnt before that response completed, opens a new episode', () => {
    const { episodes, feed } = setup();
    feed({ type: 'docker', action: 'die', at: 1000, exitCode: 1 });
    feed({ type: 'docker', action: 'start', at: 2000 });
    feed({ type: 'docker', action: 'die', at: 2600, exitCode: 1 });
    feed({ type: 'request', sentAt: 2400, respondedAt: 2500, firstTokenAt: 2500, endAt: 2590, outcome: 'ok' }, 2700);
    const all = [...episodes.values()];
    expect(all).toHaveLength(2);
    expect(all[0]).toMatchObject({ startedAt: 1000, servingAgainAt: 2500 });
    expect(all[1]).toMatchObject({ startedAt: 2600, status: 'open', firstEvidence: 'container died (exit code 1)' });
  });

  it('evidence of the later failure is taken back from the episode that ended before it: its cause, its exit code, its restart', () => {
    const { windows, episodes, feed } = setup();
    // a spontaneous hang, found from outside
    feed(healthTimeout(1000, 500));
    feed(healthTimeout(1100, 500));
    feed(canaryTimeout(1050, 500));
    // a response begins at 2500 (the node serves again); a node-kill lands at 2600, its death and
    // restart are seen before that response completes
    windows.open('node-a', 'f1', 2590);
    feed({ type: 'docker', action: 'die', at: 2600, exitCode: 137 });
    feed({ type: 'docker', action: 'start', at: 3800 });
    feed({ type: 'request', sentAt: 2400, respondedAt: 2500, firstTokenAt: 2500, endAt: 2650, outcome: 'ok' }, 3900);
    const [hang, kill] = [...episodes.values()];
    expect(hang).toMatchObject({ cause: 'spontaneous', faultId: null, servingAgainAt: 2500, runningAgainAt: null });
    expect(hang?.evidence.exitCode).toBeUndefined();
    expect(hang?.evidence.signals.every((x) => x.at <= 2500)).toBe(true);
    expect(kill).toMatchObject({ cause: 'injected:f1', startedAt: 2600, runningAgainAt: 3800, status: 'open' });
    expect(kill?.evidence.exitCode).toBe(137);
  });

  it('health failing with errors (503, refused) needs no canary: the node says it is not serving', () => {
    const { d, feed } = setup({ probeFailures: 2 });
    feed({ type: 'probe', kind: 'health', sentAt: 1000, respondedAt: 1001, ok: false, timedOut: false, status: 503 });
    feed({ type: 'probe', kind: 'health', sentAt: 2000, respondedAt: null, ok: false, timedOut: false, error: 'ECONNREFUSED' });
    expect(d.state).toBe('down');
  });

  it('one failed probe between good ones is not an episode', () => {
    const { episodes, feed } = setup({ probeFailures: 2 });
    feed({ type: 'probe', kind: 'health', sentAt: 1000, respondedAt: null, ok: false, timedOut: false, status: 503 });
    feed({ type: 'probe', kind: 'health', sentAt: 2000, respondedAt: 2000, ok: true, timedOut: false });
    feed({ type: 'probe', kind: 'health', sentAt: 3000, respondedAt: null, ok: false, timedOut: false, status: 503 });
    expect(episodes.size).toBe(0);
  });

  it('a burst of failed requests opens an episode; a success in between resets the count', () => {
    const { episodes, feed } = setup({ burst: 3 });
    feed(fail(100));
    feed(fail(200));
    feed(ok(250));
    feed(fail(300));
    feed(fail(400));
    expect(episodes.size).toBe(0);
    feed(fail(500));
    const ep = [...episodes.values()][0] as Episode;
    expect(ep.startedAt).toBe(301);
    expect(ep.requestsAffected).toBe(3);
    expect(ep.firstEvidence).toMatch(/3 failed requests in a row/);
  });

  it('client errors (4xx) are not node failures; 5xx and 429 are', () => {
    const { episodes, feed } = setup({ burst: 2 });
    feed({ type: 'request', sentAt: 1, respondedAt: 1, endAt: 2, outcome: 'http_error', status: 400 });
    feed({ type: 'request', sentAt: 3, respondedAt: 3, endAt: 4, outcome: 'http_error', status: 404 });
    expect(episodes.size).toBe(0);
    feed({ type: 'request', sentAt: 5, respondedAt: 5, endAt: 6, outcome: 'http_error', status: 503 });
    feed({ type: 'request', sentAt: 7, respondedAt: 7, endAt: 8, outcome: 'http_error', status: 429 });
    expect(episodes.size).toBe(1);
  });

  it('a success sent before the failure does not end it, even if it is reported later', () => {
    const { d, episodes, feed } = setup();
    feed({ type: 'docker', action: 'die', at: 10_000, exitCode: 137 });
    feed(ok(9_000), 10_050);
    expect(d.state).toBe('down');
    feed(ok(12_000));
    expect([...episodes.values()][0]?.servingAgainAt).toBe(12_000);
  });

  it('evidence arriving out of order moves the start earlier', () => {
    const { episodes, feed } = setup({ burst: 1 });
    feed({ type: 'docker', action: 'die', at: 10_000, exitCode: 1 });
    feed(fail(9_990, 'truncated', 9_995));
    expect([...episodes.values()][0]?.startedAt).toBe(9_995);
  });

  it('late reports of requests that failed during the last episode are counted there, not as a new burst', () => {
    const { episodes, feed } = setup({ burst: 2 });
    feed({ type: 'docker', action: 'die', at: 10_000, exitCode: 137 });
    feed({ type: 'probe', kind: 'inference', sentAt: 12_000, respondedAt: 12_000, ok: true, timedOut: false });
    feed(fail(10_500, 'timeout', 40_500));
    feed(fail(11_000, 'timeout', 41_000));
    const all = [...episodes.values()];
    expect(all).toHaveLength(1);
    expect(all[0]?.requestsAffected).toBe(2);
  });

  it('an episode past the recovery limit becomes recovery_failed and stays so when it recovers later', () => {
    const { d, episodes, feed } = setup({ limit: 5000 });
    feed({ type: 'docker', action: 'die', at: 1000, exitCode: 137 });
    d.tick(5000);
    expect([...episodes.values()][0]?.status).toBe('open');
    d.tick(6001);
    expect([...episodes.values()][0]?.status).toBe('recovery_failed');
    feed({ type: 'probe', kind: 'inference', sentAt: 9000, respondedAt: 9000, ok: true, timedOut: false });
    expect([...episodes.values()][0]).toMatchObject({ status: 'recovery_failed', servingAgainAt: 9000 });
  });

  it('a second crash after recovery is a second episode', () => {
    const { episodes, feed } = setup();
    feed({ type: 'docker', action: 'die', at: 1000, exitCode: 137 });
    feed({ type: 'docker', action: 'start', at: 1400 });
    feed(ok(3000));
    feed({ type: 'docker', action: 'die', at: 5000, exitCode: 1 });
    expect([...episodes.values()].map((e) => [e.startedAt, e.status])).toEqual([
      [1000, 'recovered'],
      [5000, 'open'],
    ]);
  });
});

describe('NodeDetector: requests cut just before the die event', () => {
  it('a failure reported before the die event, within the look-back, is the start', () => {
    const { episodes, feed } = setup({ burst: 5 });
    feed(fail(9_000, 'truncated', 9_990));
    feed({ type: 'docker', action: 'die', at: 10_000, exitCode: 137 });
    const ep = [...episodes.values()][0] as Episode;
    expect(ep.startedAt).toBe(9_990);
    expect(ep.requestsAffected).toBe(1);
  });

  it('an isolated failure long before is not', () => {
    const { episodes, feed } = setup({ burst: 5 });
    feed(fail(5_000, 'truncated', 5_010));
    feed({ type: 'docker', action: 'die', at: 10_000, exitCode: 137 });
    feed(fail(7_000, 'truncated', 8_000));
    const ep = [...episodes.values()][0] as Episode;
    expect(ep.startedAt).toBe(10_000);
    expect(ep.requestsAffected).toBe(0);
  });
});

describe('NodeDetector: review findings', () => {
  it('recovery past the limit is recovery_failed even if no tick saw it open past the limit', () => {
    const { episodes, feed } = setup({ limit: 120_000 });
    feed({ type: 'docker', action: 'die', at: 1000, exitCode: 137 });
    feed({ type: 'probe', kind: 'inference', sentAt: 122_000, respondedAt: 122_000, ok: true, timedOut: false });
    expect([...episodes.values()][0]).toMatchObject({ status: 'recovery_failed', servingAgainAt: 122_000 });
  });

  it('health probes timing out while the node streams tokens: busy, not down, and up again when health answers', () => {
    const changes: string[] = [];
    const windows = new FaultWindows(0);
    let now = 0;
    const d = new NodeDetector('node-a', { probeFailures: 2, errorBurst: 3, recoveryLimitMs: 60_000 }, windows, () => now, () => undefined, 'node-a', (c) => changes.push(`${c.state}@${c.at}`));
    const feed = (o: Observation, at: number): void => {
      now = at;
      d.observe(o);
    };
    feed({ type: 'alive', at: 900 }, 900);
    feed({ type: 'probe', kind: 'health', sentAt: 1000, endAt: 3000, respondedAt: null, ok: false, timedOut: true }, 3000);
    feed({ type: 'alive', at: 3100 }, 3100);
    feed({ type: 'probe', kind: 'health', sentAt: 1200, endAt: 3200, respondedAt: null, ok: false, timedOut: true }, 3200);
    // the canaries wait for a slot too; they time out, but the streams in flight still produce
    feed(canaryTimeout(1300, 2000), 3300);
    expect(d.state).toBe('busy');
    feed({ type: 'alive', at: 3400 }, 3400);
    for (let t = 1400; t < 5000; t += 200) feed({ type: 'probe', kind: 'health', sentAt: t, endAt: t + 2000, respondedAt: null, ok: false, timedOut: true }, t + 2000);
    expect(d.state).toBe('busy');
    feed({ type: 'probe', kind: 'health', sentAt: 7000, endAt: 7005, respondedAt: 7005, ok: true, timedOut: false }, 7005);
    expect(d.state).toBe('up');
    expect(changes).toEqual(['busy@1000', 'up@7005']);
  });

  it('probes sent during a freeze that time out just after the thaw are the freeze’s: no busy span dated back into it', () => {
    // Seen under stress-ng: the node froze from 20 s to 30 s; probes sent from 28.0 s were
    // answered at the thaw, except two whose 2 s timeout fired just as it thawed. Reported after
    // the episode closed, they made a 'busy' span from 28.08 s: 1.9 s of the freeze counted as up.
    const changes: string[] = [];
    let now = 0;
    const d = new NodeDetector('node-a', { probeFailures: 2, errorBurst: 3, recoveryLimitMs: 60_000 }, new FaultWindows(0), () => now, () => undefined, 'node-a', (c) => changes.push(`${c.state}@${c.at}`));
    const feed = (o: Observation, at: number): void => {
      now = at;
      d.observe(o);
    };
    feed({ type: 'probe', kind: 'health', sentAt: 19_500, endAt: 19_505, respondedAt: 19_505, ok: true, timedOut: false }, 19_505);
    for (const t of [20_000, 20_100, 20_200]) feed(healthTimeout(t, 2000), t + 2000);
    feed(canaryTimeout(20_050, 2000), 22_050);
    expect(d.state).toBe('down');
    // the thaw at 30 000: a probe sent at 28 280 answered, and a canary
    feed({ type: 'probe', kind: 'health', sentAt: 28_280, endAt: 30_001, respondedAt: 30_001, ok: true, timedOut: false }, 30_001);
    feed({ type: 'probe', kind: 'inference', sentAt: 28_300, endAt: 30_010, respondedAt: 30_002, ok: true, timedOut: false }, 30_010);
    expect(d.state).toBe('up');
    // then the two sent at 28 080 and 28 180, timed out at 30 080 and 30 180
    feed(healthTimeout(28_080, 2000), 30_080);
    feed(healthTimeout(28_180, 2000), 30_180);
    feed({ type: 'alive', at: 30_200 }, 30_200);
    expect(d.state).toBe('up');
    expect(changes).toEqual(['down@20000', 'recovering@30001', 'up@30002']);
    // a probe failing after it served again is judged as before
    feed(healthTimeout(31_000, 2000), 33_000);
    feed({ type: 'alive', at: 33_100 }, 33_100);
    feed(healthTimeout(31_500, 2000), 33_500);
    expect(d.state).toBe('busy');
  });

  it('a busy node that then stops producing altogether is a hang, starting at the first probe missed after its last sign of life', () => {
    const { d, episodes, feed } = setup({ probeFailures: 2 });
    feed({ type: 'alive', at: 900 });
    feed(healthTimeout(1000, 2000));
    feed({ type: 'alive', at: 2500 });
    feed(healthTimeout(1200, 2000));
    expect(d.state).toBe('busy');
    // no sign of life after 2500
    for (const t of [2600, 2800, 3000]) feed(healthTimeout(t, 2000));
    expect(d.state).toBe('busy');
    feed(canaryTimeout(2700, 2000));
    expect(d.state).toBe('down');
    expect([...episodes.values()][0]).toMatchObject({ startedAt: 2600, evidence: expect.objectContaining({ hang: true }) });
  });

  it('health probes timing out while requests succeed are not a hang', () => {
    const { episodes, feed } = setup({ probeFailures: 2 });
    feed({ type: 'probe', kind: 'health', sentAt: 0, respondedAt: null, ok: false, timedOut: true }, 2000);
    feed(ok(500));
    feed(ok(9000));
    feed({ type: 'probe', kind: 'health', sentAt: 10_000, respondedAt: null, ok: false, timedOut: true }, 12_000);
    expect(episodes.size).toBe(0);
  });

  it('serving again is the earliest response start, even when a later one is reported first', () => {
    const { episodes, feed } = setup();
    feed({ type: 'docker', action: 'die', at: 1000, exitCode: 137 });
    feed({ type: 'probe', kind: 'inference', sentAt: 1450, respondedAt: 1450, ok: true, timedOut: false }, 1460);
    feed({ type: 'request', sentAt: 1300, respondedAt: 1300, endAt: 1800, outcome: 'ok' });
    feed({ type: 'request', sentAt: 900, respondedAt: 905, endAt: 1900, outcome: 'ok' }); // sent before the failure: not evidence
    const ep = [...episodes.values()][0] as Episode;
    expect(ep.servingAgainAt).toBe(1300);
    expect(episodes.size).toBe(1);
  });
});

describe('NodeDetector: a request held through the outage', () => {
  it('is answered after the restart; serving again is when it was answered, not when it was sent', () => {
    const { episodes, feed } = setup();
    feed({ type: 'docker', action: 'die', at: 1000, exitCode: 137 });
    feed({ type: 'docker', action: 'start', at: 1370 });
    // sent 200 ms into the outage, held by the proxy/kernel, answered when the node was ready
    feed(ok(1200, 2300));
    const ep = [...episodes.values()][0] as Episode;
    expect(ep.servingAgainAt).toBe(2300);
    // a probe answered earlier, reported later, moves it back
    feed({ type: 'probe', kind: 'inference', sentAt: 2240, respondedAt: 2290, ok: true, timedOut: false }, 2295);
    expect([...episodes.values()][0]?.servingAgainAt).toBe(2290);
  });
});

// Attribution (DESIGN.md): evidence caused by a fault belongs to it; a spontaneous failure
// outside every window plus grace stays spontaneous. Errors here go straight into MTBF.
describe('NodeDetector: attribution of episodes to injected faults', () => {
  const timeout = (sentAt: number, endAt: number): Observation => ({ type: 'request', sentAt, respondedAt: null, endAt, outcome: 'timeout' });

  it('requests sent before a freeze that time out after it belong to the freeze', () => {
    const { episodes, windows, feed } = setup({ burst: 3 });
    windows.open('node-a', 'freeze', 10_000);
    // all three were sent before the fault (their evidence time is their send), and failed after it
    for (const t of [9_000, 9_300, 9_600]) feed(timeout(t, t + 5000));
    const ep = [...episodes.values()][0] as Episode;
    expect(ep.startedAt).toBe(9_000);
    expect(ep).toMatchObject({ cause: 'injected:freeze', faultId: 'freeze' });
  });

  it('a health probe sent just before a freeze and timed out after it belongs to the freeze', () => {
    const { episodes, windows, feed } = setup({ probeFailures: 2 });
    windows.open('node-a', 'freeze', 10_050);
    feed(healthTimeout(10_000));
    feed(healthTimeout(11_000));
    feed(canaryTimeout(10_100));
    expect([...episodes.values()][0]).toMatchObject({ startedAt: 10_000, cause: 'injected:freeze' });
  });

  it('the same failures with no fault anywhere near are spontaneous', () => {
    const { episodes, windows, feed } = setup({ burst: 3, grace: 1000 });
    windows.open('node-a', 'long-ago', 0);
    windows.close('long-ago', 1000);
    for (const t of [9_000, 9_300, 9_600]) feed(timeout(t, t + 5000));
    expect([...episodes.values()][0]).toMatchObject({ cause: 'spontaneous', faultId: null });
  });

  it('later evidence from before the fault never takes an injected episode back to spontaneous', () => {
    const { episodes, windows, feed } = setup();
    windows.open('node-a', 'kill', 10_000);
    feed({ type: 'docker', action: 'die', at: 10_020, exitCode: 137 });
    // a request sent 500 ms before the kill whose timeout is reported afterwards
    feed(timeout(9_500, 10_030));
    const ep = [...episodes.values()][0] as Episode;
    expect(ep.startedAt).toBe(9_500);
    expect(ep.cause).toBe('injected:kill');
  });

  it('an episode opened on outside evidence (probe and canary timeouts, no sign of life) that a crash then deepens belongs to the crash', () => {
    const { episodes, windows, feed } = setup({ probeFailures: 2 });
    feed(healthTimeout(5_000));
    feed(healthTimeout(6_000));
    feed(canaryTimeout(5_500));
    expect([...episodes.values()][0]?.cause).toBe('spontaneous');
    windows.open('node-a', 'kill', 8_000);
    feed({ type: 'docker', action: 'die', at: 8_010, exitCode: 137 });
    const ep = [...episodes.values()][0] as Episode;
    expect(episodes.size).toBe(1);
    expect(ep).toMatchObject({ cause: 'injected:kill', faultId: 'kill' });
    expect(ep.evidence.signals.map((s) => s.what).join('\n')).toMatch(/deepened by fault kill/);
  });

  it('a container that died by itself before a fault stays a spontaneous failure', () => {
    const { episodes, windows, feed } = setup();
    feed({ type: 'docker', action: 'die', at: 5_000, exitCode: 1 });
    windows.open('node-a', 'latency', 5_500);
    feed(fail(5_600));
    feed({ type: 'docker', action: 'start', at: 6_000 });
    expect([...episodes.values()][0]).toMatchObject({ cause: 'spontaneous', faultId: null });
  });

  it('an episode after an instant fault has ended (node served again) and its grace passed is judged on its own', () => {
    const { episodes, windows, feed } = setup({ grace: 2000 });
    windows.open('node-a', 'kill', 1_000);
    feed({ type: 'docker', action: 'die', at: 1_010, exitCode: 137 });
    feed(ok(2_000, 2_100));
    windows.close('kill', 2_100);
    feed({ type: 'docker', action: 'die', at: 20_000, exitCode: 1 });
    const eps = [...episodes.values()];
    expect(eps.map((e) => e.cause)).toEqual(['injected:kill', 'spontaneous']);
  });

  it('a freeze (pause) is found by probes timing out while the container runs, not by the pause event', () => {
    const { d, episodes, windows, feed } = setup({ probeFailures: 2 });
    windows.open('node-a', 'hang', 1_000);
    feed({ type: 'docker', action: 'pause', at: 1_002 });
    expect(d.state).toBe('up');
    feed(healthTimeout(1_500));
    feed(healthTimeout(2_500));
    feed(canaryTimeout(1_600));
    feed({ type: 'docker', action: 'unpause', at: 5_000 });
    feed(ok(5_010, 5_020));
    const ep = [...episodes.values()][0] as Episode;
    expect(ep).toMatchObject({ cause: 'injected:hang', startedAt: 1_500, runningAgainAt: 5_000, servingAgainAt: 5_020, status: 'recovered' });
    expect(ep.evidence.hang).toBe(true);
    expect(ep.evidence.signals.map((s) => s.what)).toContain('container unpaused');
  });
});

describe('NodeDetector: attribution does not reach past the grace period', () => {
  it('streams sent during the grace period that time out long after it are a spontaneous stall, not the fault', () => {
    const { episodes, windows, feed } = setup({ burst: 3, grace: 10_000 });
    windows.open('node-a', 'f', 0);
    windows.close('f', 1_000);
    // sent at 6 s (inside the grace), stalled by the node itself at 41 s, timed out at 66 s
    for (const t of [6_000, 6_100, 6_200]) feed({ type: 'request', sentAt: t, respondedAt: t + 5, endAt: t + 60_000, outcome: 'timeout' });
    expect([...episodes.values()][0]).toMatchObject({ cause: 'spontaneous' });
  });
});

describe('NodeDetector: orchestrator blindness', () => {
  it('an episode that starts while Gauntlet has lost the Docker engine is orchestrator blindness, and no fault takes it over', () => {
    const { episodes, windows, feed } = setup({ probeFailures: 2, grace: 1000 });
    windows.blindStart(['node-a'], 5_000);
    feed({ type: 'probe', kind: 'health', sentAt: 5_500, respondedAt: null, ok: false, timedOut: false, error: 'ECONNREFUSED' });
    feed({ type: 'probe', kind: 'health', sentAt: 6_000, respondedAt: null, ok: false, timedOut: false, error: 'ECONNREFUSED' });
    windows.open('node-a', 'kill', 6_500);
    feed({ type: 'docker', action: 'die', at: 6_600, exitCode: 137 });
    const ep = [...episodes.values()][0] as Episode;
    expect(episodes.size).toBe(1);
    expect(ep).toMatchObject({ cause: 'orchestrator', faultId: null });
    expect(windows.openOn('node-a')).toBe(true); // the fault; blindness is not a fault window
  });

  it('after the engine is back (and the grace has passed) failures are judged on their own again', () => {
    const { episodes, windows, feed } = setup({ grace: 1000 });
    windows.blindStart(['node-a'], 1_000);
    windows.blindEnd(2_000);
    expect(windows.openOn('node-a')).toBe(false);
    feed({ type: 'docker', action: 'die', at: 10_000, exitCode: 1 });
    expect([...episodes.values()][0]?.cause).toBe('spontaneous');
  });
});
