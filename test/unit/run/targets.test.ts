import { describe, expect, it } from 'vitest';
import type { Docker } from '../../../src/docker/engine.js';
import { endpointFromPorts, resolveTarget } from '../../../src/run/targets.js';

type Info = Docker.ContainerInspectInfo;

function info(over: { ports?: unknown; bindings?: unknown; status?: string; restarting?: boolean }): Info {
  return {
    Id: 'c0ffee',
    Name: '/sim-a',
    RestartCount: 3,
    Config: { Image: 'gauntlet-sim:dev' },
    State: { Status: over.status ?? 'running', Restarting: over.restarting ?? false },
    NetworkSettings: { Ports: over.ports ?? {} },
    HostConfig: { PortBindings: over.bindings ?? {} },
  } as unknown as Info;
}

/** A Docker client that answers inspect with the given states in turn (the last one repeats). */
function dockerSeq(states: Info[]): { docker: Docker; calls: () => number } {
  let n = 0;
  const docker = {
    getContainer: () => ({ inspect: async () => states[Math.min(n++, states.length - 1)] }),
  } as unknown as Docker;
  return { docker, calls: () => n };
}

describe('endpointFromPorts', () => {
  it('takes the live binding, and a wildcard host address becomes the loopback address', () => {
    expect(endpointFromPorts(info({ ports: { '8080/tcp': [{ HostIp: '0.0.0.0', HostPort: '18080' }] } }))).toBe('http://127.0.0.1:18080');
    expect(endpointFromPorts(info({ ports: { '53/udp': [{ HostIp: '127.0.0.1', HostPort: '53' }], '8080/tcp': [{ HostIp: '::1', HostPort: '9' }] } }))).toBe('http://[::1]:9');
  });

  it('falls back to the configured fixed port while the container restarts (live ports empty)', () => {
    const i = info({ ports: {}, bindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '18081' }] }, status: 'restarting', restarting: true });
    expect(endpointFromPorts(i)).toBe('http://127.0.0.1:18081');
  });

  it('an ephemeral configured port ("" host port) is not a port', () => {
    expect(endpointFromPorts(info({ ports: {}, bindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } }))).toBeNull();
  });
});

describe('resolveTarget', () => {
  it('waits for a restarting container with an ephemeral port to run again', async () => {
    const restarting = info({ bindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] }, status: 'restarting', restarting: true });
    const running = info({ ports: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '32768' }] } });
    const { docker, calls } = dockerSeq([restarting, restarting, running]);
    const r = await resolveTarget({ name: 'sim-a', container: 'sim-a' } as never, docker);
    expect(r).toMatchObject({ node: 'sim-a', endpoint: 'http://127.0.0.1:32768', containerName: 'sim-a', restartCount: 3 });
    expect(calls()).toBe(3);
  });

  it('a running container that publishes nothing is refused at once, naming the fix', async () => {
    const { docker, calls } = dockerSeq([info({})]);
    await expect(resolveTarget({ name: 'sim-a', container: 'sim-a' } as never, docker)).rejects.toThrow(/publishes no TCP port; publish one/);
    expect(calls()).toBe(1);
  });
});
