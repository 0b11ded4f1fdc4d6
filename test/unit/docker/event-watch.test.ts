// The Docker event watch against a stand-in engine whose event stream breaks and whose API
// then refuses for a while: Gauntlet is told it lost the engine, and when it is back.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { watchContainerEvents, type Docker } from '../../../src/docker/engine.js';
import { silentLogger } from '../../../src/log.js';
import { RealClock } from '../../../src/util/clock.js';

describe('watchContainerEvents: losing the engine', () => {
  it('reports lost when the stream ends, stays lost while the engine refuses, restored when a stream opens again; events after it still arrive', async () => {
    const clock = new RealClock();
    const streams: PassThrough[] = [];
    let refuse = 0;
    const docker = {
      async getEvents() {
        if (refuse > 0) {
          refuse--;
          throw new Error('connect ECONNREFUSED /var/run/docker.sock');
        }
        const s = new PassThrough();
        streams.push(s);
        return s;
      },
    } as unknown as Docker;
    const changes: string[] = [];
    const events: string[] = [];
    const watch = watchContainerEvents(docker, ['c1'], (e) => events.push(e.rawAction), silentLogger, { onConnection: (state, _at, why) => changes.push(`${state}: ${why}`), now: () => clock.now() });
    await watch.ready;
    expect(changes).toEqual([]); // the first open is not a restoration
    refuse = 1;
    (streams[0] as PassThrough).end();
    for (let i = 0; i < 200 && streams.length < 2; i++) await clock.sleep(25);
    expect(streams).toHaveLength(2);
    expect(changes).toEqual(['lost: the engine ended the event stream', 'restored: the event stream is open again']);
    const t = Date.now() * 1e6;
    (streams[1] as PassThrough).write(`${JSON.stringify({ Type: 'container', Action: 'die', id: 'c1', time: Math.floor(t / 1e9), timeNano: t, Actor: { ID: 'c1', Attributes: { exitCode: '137', name: 'n' } } })}\n`);
    for (let i = 0; i < 50 && events.length === 0; i++) await clock.sleep(10);
    expect(events).toEqual(['die']);
    watch.stop();
  });

  it('after an engine restart the new stream replays from the last event\'s second: nothing is missed, nothing delivered twice', async () => {
    const clock = new RealClock();
    // the engine's log of events (real epoch ns), and the `since` each stream was opened with
    const log: { t: number; action: string }[] = [];
    const sinces: (number | undefined)[] = [];
    const streams: PassThrough[] = [];
    const line = (e: { t: number; action: string }): string => `${JSON.stringify({ Type: 'container', Action: e.action, id: 'c1', time: Math.floor(e.t / 1e9), timeNano: e.t, Actor: { ID: 'c1', Attributes: { name: 'n' } } })}\n`;
    const docker = {
      async getEvents(opts: { since?: number }) {
        sinces.push(opts.since);
        const s = new PassThrough();
        // what Docker does: every event of the log from `since` (whole seconds) on
        for (const e of log) if (opts.since === undefined || Math.floor(e.t / 1e9) >= opts.since) s.write(line(e));
        streams.push(s);
        return s;
      },
    } as unknown as Docker;
    const base = Math.floor(Date.now() / 1000) * 1e9 + 0.2e9; // within one second
    const got: string[] = [];
    const watch = watchContainerEvents(docker, ['c1'], (e) => got.push(e.rawAction), silentLogger, { sinceMs: base / 1e6 - 1, now: () => clock.now() });
    await watch.ready;
    for (const [i, action] of ['start', 'die', 'start'].entries()) {
      const e = { t: base + i * 1e8, action };
      log.push(e);
      (streams[0] as PassThrough).write(line(e));
    }
    for (let i = 0; i < 100 && got.length < 3; i++) await clock.sleep(10);
    expect(got).toEqual(['start', 'die', 'start']);
    // the engine restarts: the stream ends; while it is down, two more events happen in the same second
    (streams[0] as PassThrough).end();
    log.push({ t: base + 3e8, action: 'die' }, { t: base + 4e8, action: 'start' });
    for (let i = 0; i < 200 && streams.length < 2; i++) await clock.sleep(25);
    for (let i = 0; i < 100 && got.length < 5; i++) await clock.sleep(10);
    // reopened from the last event's second: the three already seen come again and are dropped
    expect(sinces[1]).toBe(Math.floor(base / 1e9));
    expect(got).toEqual(['start', 'die', 'start', 'die', 'start']);
    watch.stop();
  });
});
