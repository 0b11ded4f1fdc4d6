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
});
