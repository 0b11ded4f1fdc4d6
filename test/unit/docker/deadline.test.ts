// An engine that accepts connections and never answers: every call Gauntlet makes ends with a
// sentence within its deadline, and the event watch says it is blind instead of waiting forever.
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerTimeoutMs, withDeadlines } from '../../../src/docker/deadline.js';
import { watchContainerEvents } from '../../../src/docker/engine.js';
import { silentLogger } from '../../../src/log.js';
import { tempDir } from '../../helpers/tmp.js';

describe('Docker calls have deadlines', () => {
  const dir = tempDir();
  const path = join(dir, 'silent.sock');
  let server: Server;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    server = createServer((s) => {
      sockets.add(s);
      s.on('data', () => undefined).on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(path, () => r()));
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('a call on an engine that never answers fails after the deadline, naming the call', async () => {
    const docker = withDeadlines(new Dockerode({ socketPath: path }), 300);
    const t0 = Date.now();
    await expect(docker.getContainer('x').inspect()).rejects.toThrow('the Docker engine did not answer inspect within 0.3 s');
    await expect(docker.version()).rejects.toThrow('did not answer version within 0.3 s');
    // A stop waits for its own grace period first: t = 0 here.
    await expect(docker.getContainer('x').pause()).rejects.toThrow('did not answer pause');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('streams that last as long as they are wanted get none (the event stream has its own open timeout)', async () => {
    const docker = withDeadlines(new Dockerode({ socketPath: path }), 200);
    const lost: string[] = [];
    const watch = watchContainerEvents(docker, ['x'], () => undefined, silentLogger, { onConnection: (state, _at, why) => lost.push(`${state}: ${why}`), openTimeoutMs: 300 });
    try {
      for (let i = 0; i < 100 && lost.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(lost[0]).toBe('lost: cannot open the event stream: the Docker engine did not open its event stream within 0.3 s');
    } finally {
      watch.stop();
    }
    await watch.ready; // stop() releases anyone waiting for it
  });

  it('GAUNTLET_DOCKER_TIMEOUT_MS is checked', () => {
    expect(dockerTimeoutMs({})).toBe(30_000);
    expect(dockerTimeoutMs({ GAUNTLET_DOCKER_TIMEOUT_MS: '2000' })).toBe(2000);
    expect(() => dockerTimeoutMs({ GAUNTLET_DOCKER_TIMEOUT_MS: 'soon' })).toThrow('GAUNTLET_DOCKER_TIMEOUT_MS: got "soon"; expected whole milliseconds from 100 to 3600000');
  });
});
