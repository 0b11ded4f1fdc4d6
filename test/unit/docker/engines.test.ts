// DOCKER_HOST's engine as a spec (src/docker/engines.ts): another machine's engine is recorded in
// the fault ledger as such, so a revert reaches it whatever the reverting process's DOCKER_HOST.
import { afterEach, describe, expect, it } from 'vitest';
import { DOCKER_HOST_ENGINE, defaultEngineSpec, engineIsLocal, engineKey } from '../../../src/docker/engines.js';
import { ledgerEngine, sameEngine } from '../../../src/fault/engine-contexts.js';

const saved = process.env.DOCKER_HOST;
afterEach(() => {
  if (saved === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = saved;
});

describe("DOCKER_HOST's engine", () => {
  it('is null for a socket on this machine', () => {
    expect(defaultEngineSpec({})).toBeNull();
    expect(defaultEngineSpec({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' })).toBeNull();
  });

  it('takes TLS as the docker CLI does: DOCKER_TLS_VERIFY or port 2376, the files in DOCKER_CERT_PATH', () => {
    expect(defaultEngineSpec({ DOCKER_HOST: 'tcp://10.0.0.5:2376', DOCKER_CERT_PATH: '/certs' })).toEqual({
      name: DOCKER_HOST_ENGINE,
      host: 'tcp://10.0.0.5:2376',
      tls: { ca: '/certs/ca.pem', cert: '/certs/cert.pem', key: '/certs/key.pem' },
    });
    expect(defaultEngineSpec({ DOCKER_HOST: 'tcp://127.0.0.1:4000', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/c' })?.tls?.ca).toBe('/c/ca.pem');
    expect(defaultEngineSpec({ DOCKER_HOST: 'tcp://127.0.0.1:2375' })).toEqual({ name: DOCKER_HOST_ENGINE, host: 'tcp://127.0.0.1:2375' });
    expect(defaultEngineSpec({ DOCKER_HOST: 'tcp://127.0.0.1:2375', DOCKER_TLS_VERIFY: '0' })?.tls).toBeUndefined();
    expect(defaultEngineSpec({ DOCKER_HOST: 'ssh://ops@rack-b' })).toEqual({ name: DOCKER_HOST_ENGINE, host: 'ssh://ops@rack-b' });
  });

  it('is what the ledger records for a target on the default engine, and the same engine as the default', () => {
    delete process.env.DOCKER_HOST;
    expect(ledgerEngine(null)).toBeNull();
    expect(engineIsLocal(null)).toBe(true);
    process.env.DOCKER_HOST = 'ssh://ops@rack-b:2222';
    const spec = defaultEngineSpec();
    expect(ledgerEngine(null)).toBe(engineKey(spec as NonNullable<typeof spec>));
    expect(engineIsLocal(null)).toBe(false);
    // a ledger row written then names the engine the default is now: the same one
    expect(sameEngine(JSON.parse(ledgerEngine(null) as string), null)).toBe(true);
    expect(sameEngine({ name: 'rack-c', host: 'ssh://ops@rack-c' }, null)).toBe(false);
    // ... and another process, with another DOCKER_HOST, sees another engine in it
    process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';
    expect(sameEngine(spec, null)).toBe(false);
  });

  it('keys an engine by every field, whatever their order', () => {
    const a = { name: 'x', host: 'tcp://h:2376', tls: { ca: 'a', cert: 'b', key: 'c' } };
    const b = { tls: { ca: 'a', cert: 'b', key: 'c' }, host: 'tcp://h:2376', name: 'x' };
    expect(engineKey(a)).toBe(engineKey(b));
    expect(engineKey(a)).not.toBe(engineKey({ ...a, tls: { ...a.tls, key: 'd' } }));
  });
});
