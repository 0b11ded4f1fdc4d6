// Faults on two Docker engines in one run: the machine's engine, and a second dockerd of the
// test's own listening on TCP 127.0.0.1 with TLS (--tlsverify, a CA of the test's own; its own data
// root, containerd, bridge), reached as a remote engine is — through its TCP address with a client
// certificate, never its socket. Every fault goes to its node's
// engine; what a fault does on the node's host (SIGKILL by pid, rules in the network namespace)
// goes through Gauntlet's agent container on that engine; the ledger records the engine, so a
// Gauntlet that died mid-fault is reverted there by the next one, without the plan.
// The faults are ~10 s apart: under stress-ng a crashed node took over 6 s to serve again, and a
// fault due on a node still down is skipped (by design: it would measure nothing).
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dockerClient } from '../../src/docker/engine.js';
import { engineClient, type EngineSpec } from '../../src/docker/engines.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { EngineContexts } from '../../src/fault/engine-contexts.js';
import { injectFault, revertLeftovers } from '../../src/fault/ledger.js';
import { listTaggedRules } from '../../src/fault/netns.js';
import { FAULTS } from '../../faults/index.js';
import { silentLogger } from '../../src/log.js';
import { parsePlanText } from '../../src/plan/load.js';
import { dryRunPlan } from '../../src/run/dry-run.js';
import { runPlan } from '../../src/run/runner.js';
import { openStore } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { runCli } from '../helpers/cli.js';
import { describeDocker } from '../helpers/docker.js';
import { SecondEngine } from '../helpers/second-dockerd.js';
import { makeTestPki } from '../helpers/tls.js';
import { sshdAvailable, TestSshd } from '../helpers/sshd.js';
import { tempDir, testTmp } from '../helpers/tmp.js';

const LOCAL = 'gauntlet-it-me-local';
const REMOTE = 'gauntlet-it-me-remote';

describeDocker('faults on two Docker engines, the second over TCP (real Docker)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  let engine: SecondEngine;
  let spec: EngineSpec;

  beforeAll(async () => {
    const pki = makeTestPki(dir);
    engine = new SecondEngine(mkdtempSync(join(testTmp(), 'gdm-')), { tcpPort: await freePort(), subnet: 78, name: 'gtme', tls: { ca: pki.ca, cert: pki.serverCert, key: pki.serverKey } });
    await engine.start();
    spec = { name: 'rack-b', host: engine.tcpHost as string, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } };
    const remote = engineClient(spec);
    const [img1, img2] = await Promise.all([ensureSimImage(docker, silentLogger), ensureSimImage(remote, silentLogger)]);
    await removeContainers(docker, [LOCAL]);
    const common = { gpus: 2, loadMs: 300, ttftMs: 20, itlMs: 5 } as const;
    await startSimContainer(docker, img1, { ...common, name: LOCAL, targetLabel: 'it-me-local', hostPort: await freePort() });
    await startSimContainer(remote, img2, { ...common, name: REMOTE, targetLabel: 'it-me-remote', hostPort: await freePort() });
  }, 180_000);

  /** The plan's line naming the second engine (with another CA's files for the wrong-CA test). */
  const rackB = (tls = spec.tls): string => `  - { name: rack-b, host: "${spec.host}", tls: { ca: "${tls?.ca}", cert: "${tls?.cert}", key: "${tls?.key}" } }`;
  /** What runPlan is given, with the store and reports of a test. */
  const runCtx = (store: ReturnType<typeof openStore>) => ({ store, clock: new RealClock(), log: silentLogger, docker, reportsDir: join(dir, 'reports'), signal: new AbortController().signal });

  afterAll(async () => {
    await removeContainers(docker, [LOCAL]);
    await engine?.destroy();
  }, 120_000);

  it('each fault goes to its node’s engine; host work on the remote one goes through its agent; all reverted, nothing left on either', async () => {
    const store = openStore(join(dir, 'run.db'));
    const plan = parsePlanText(`
name: two-engines
duration: 52s
engines:
${rackB()}
targets:
  - { name: local, container: ${LOCAL} }
  - { name: remote, container: ${REMOTE}, engine: rack-b }
load: { rate: 6, api: chat, stream: true, prompt_tokens: 16, max_tokens: 8, timeout: 10s, model: sim-llama }
faults:
  - { kind: node-kill, target: remote, at: 3s, params: { mode: crash } }
  - { kind: packet-loss, target: remote, at: 15s, params: { share: 0.3, duration: 4s, driver: iptables } }
  - { kind: hang, target: remote, at: 24s, params: { duration: 2s } }
  - { kind: node-kill, target: local, at: 33s, params: { mode: crash } }
  - { kind: latency, target: remote, at: 44s, params: { delay: 200ms, duration: 3s, driver: proxy } }
probes: { interval: 1s, timeout: 500ms, failures: 2, fast_interval: 100ms }
safety: { max_concurrent_faults: 1, min_healthy_nodes: 1 }
recovery_limit: 20s
ready_timeout: 30s
`);
    // the agent, seen on the remote engine while the run goes on
    const remote = engineClient(spec);
    const agentsSeen = new Set<string>();
    let watching = true;
    const watch = (async () => {
      for (let i = 0; i < 600 && watching; i++) {
        for (const c of await remote.listContainers({ filters: { label: ['gauntlet.component=agent'] } })) agentsSeen.add(c.Names[0] ?? c.Id);
        await new RealClock().sleep(100);
      }
    })();
    const result = await runPlan(plan, null, runCtx(store));
    watching = false;
    await watch;
    expect(result.status, result.error ?? '').toBe('completed');
    const ledger = store.faults(result.runId);
    const summary = ledger.map((f) => `${f.kind}@${f.node} ${f.state} engine=${f.engine ? (JSON.parse(f.engine) as EngineSpec).name : 'default'} ${f.error ?? ''} ${f.result ?? ''}`);
    process.stderr.write(`two engines: ${summary.join(' | ')}; agents seen: ${[...agentsSeen].join(', ')}\n`);
    expect(ledger.map((f) => f.state), summary.join('\n')).toEqual(['reverted', 'reverted', 'reverted', 'reverted', 'reverted']);
    // the proxy found the remote node's listening port in its namespace there (/proc through the agent)
    expect(ledger.find((f) => f.kind === 'latency')?.driver).toBe('proxy');
    for (const f of ledger) expect(f.engine ? (JSON.parse(f.engine) as EngineSpec).name : null, f.kind).toBe(f.node === 'remote' ? 'rack-b' : null);
    // the packet loss acted inside the remote container's namespace: its rule matched packets
    const loss = ledger.find((f) => f.kind === 'packet-loss');
    expect(JSON.parse(loss?.result ?? '{}').dropped_packets, loss?.result ?? '').toBeGreaterThan(0);
    // each kill and the hang is an episode of its node, attributed to its fault
    const episodes = store.episodes(result.runId);
    for (const f of ledger.filter((x) => x.kind === 'node-kill' || x.kind === 'hang')) {
      expect(episodes.some((e) => e.fault_id === f.id && e.node === f.node), `${f.kind} on ${f.node}: ${JSON.stringify(episodes.map((e) => [e.node, e.cause, e.first_evidence]))}`).toBe(true);
    }
    // the remote node was killed by its pid on its host: Docker saw a crash (restart policy), not a stop
    const remoteInfo = await remote.getContainer(REMOTE).inspect();
    expect(remoteInfo.RestartCount).toBeGreaterThanOrEqual(1);
    // an agent ran on the remote engine and is gone; none on this machine's engine; no helper left
    expect(agentsSeen.size).toBe(1);
    expect(await remote.listContainers({ all: true, filters: { label: ['gauntlet.component=agent'] } })).toEqual([]);
    expect(await docker.listContainers({ all: true, filters: { label: ['gauntlet.component=agent'] } })).toEqual([]);
    expect(await listTaggedRules(remoteInfo.State.Pid)).toEqual([]);
    expect(await remote.listContainers({ all: true, filters: { label: ['gauntlet.fault'] } })).toEqual([]);
    store.close();
  }, 150_000);

  // The SSH transport, against this machine's engine through an sshd of the test's own on
  // 127.0.0.1 (docker-modem runs `docker system dial-stdio` there): the engine counts as remote,
  // so host work goes through the agent; a host key not in known_hosts is refused before anything.
  it.runIf(sshdAvailable() || process.env.CI === 'true')('an engine over SSH: its host key checked, faults there through the agent, reverted', async () => {
    const server = await TestSshd.start(join(dir, 'sshd'));
    try {
      const store = openStore(join(dir, 'ssh.db'));
      const planOf = (knownHosts: string) =>
        parsePlanText(`
name: over-ssh
duration: 30s
engines:
  - { name: lab, host: "${server.url}", identity_file: "${server.identityFile}", known_hosts_file: "${knownHosts}" }
targets:
  - { name: local, container: ${LOCAL}, engine: lab }
load: { rate: 4, api: chat, stream: true, prompt_tokens: 16, max_tokens: 8, timeout: 10s, model: sim-llama }
faults:
  - { kind: hang, target: local, at: 2s, params: { duration: 2s } }
  - { kind: node-kill, target: local, at: 16s, params: { mode: crash } }
probes: { interval: 1s, timeout: 500ms, failures: 2, fast_interval: 100ms }
recovery_limit: 20s
ready_timeout: 30s
`);
      const ctx = runCtx(store);
      // an unknown host key: refused, saying why, before any run exists
      const empty = join(dir, 'empty_known_hosts');
      writeFileSync(empty, '');
      const refused = await runPlan(planOf(empty), null, ctx).then(
        () => 'ran',
        (err: Error) => err.message,
      );
      expect(refused).toMatch(/is not in .*empty_known_hosts \(add its key: ssh-keyscan/);
      expect(store.listRuns(10)).toEqual([]);
      const restartsBefore = (await docker.getContainer(LOCAL).inspect()).RestartCount;
      const result = await runPlan(planOf(server.knownHostsFile), null, ctx);
      expect(result.status, result.error ?? '').toBe('completed');
      const ledger = store.faults(result.runId);
      process.stderr.write(`over ssh: ${ledger.map((f) => `${f.kind} ${f.state} ${f.error ?? ''}`).join(' | ')}\n`);
      expect(ledger.map((f) => [f.kind, f.state, (JSON.parse(f.engine ?? 'null') as EngineSpec | null)?.name])).toEqual([
        ['hang', 'reverted', 'lab'],
        ['node-kill', 'reverted', 'lab'],
      ]);
      expect((await docker.getContainer(LOCAL).inspect()).RestartCount).toBeGreaterThan(restartsBefore);
      expect(await docker.listContainers({ all: true, filters: { label: ['gauntlet.component=agent'] } })).toEqual([]);
      store.close();
    } finally {
      server.stop();
    }
  }, 180_000);

  it('--dry-run across two engines: each target inspected on its engine, each fault described on its host; nothing touched', async () => {
    const remote = engineClient(spec);
    const before = await remote.getContainer(REMOTE).inspect();
    const plan = parsePlanText(`
name: two-engines-dry
duration: 30s
engines:
${rackB()}
targets:
  - { name: local, container: ${LOCAL} }
  - { name: remote, container: ${REMOTE}, engine: rack-b }
load: { rate: 2, model: sim-llama }
faults:
  - { kind: node-kill, target: remote, at: 3s, params: { mode: crash } }
  - { kind: latency, target: remote, at: 10s, params: { delay: 200ms, duration: 3s } }
  - { kind: packet-loss, target: local, at: 20s, params: { share: 0.3, duration: 3s } }
`);
    const lines = await dryRunPlan(plan, { docker, log: silentLogger, clock: new RealClock() });
    const text = lines.join('\n');
    process.stderr.write(`dry run on two engines:\n${text}\n`);
    expect(text).toMatch(/^ {2}rack-b: tcp:\/\/127\.0\.0\.1:\d+ \(TLS, client certificate\) — signals, \/proc and network namespaces there through Gauntlet's agent/m);
    // the remote target inspected on its engine: its state, restart policy and restarts
    expect(text).toMatch(new RegExp(`^ {2}remote: container ${REMOTE} \\([0-9a-f]{12}, image [^)]+\\) on engine rack-b at http://127\\.0\\.0\\.1:\\d+ — running, restart policy on-failure, `, 'm'));
    expect(text).toMatch(new RegExp(`^ {2}local: container ${LOCAL} \\(`, 'm'));
    // each fault described for its own host (the remote one's capabilities learned through the agent)
    const f1 = lines.findIndex((l) => / f1 at \+3\.00s: node-kill on remote/.test(l));
    const f2 = lines.findIndex((l) => / f2 at \+10\.0s: latency on remote/.test(l));
    const f3 = lines.findIndex((l) => / f3 at \+20\.0s: packet-loss on local/.test(l));
    expect([f1, f2, f3].every((i) => i > 0), text).toBe(true);
    expect(lines.slice(f1 + 1, f2).join(' ')).toMatch(/SIGKILL/);
    expect(lines.slice(f2 + 1, f3).join(' ')).not.toMatch(/would be skipped/);
    // nothing touched: the same container, not restarted, no rule, no agent left behind
    const after = await remote.getContainer(REMOTE).inspect();
    expect([after.State.StartedAt, after.RestartCount, after.State.Paused]).toEqual([before.State.StartedAt, before.RestartCount, false]);
    expect(await listTaggedRules(after.State.Pid)).toEqual([]);
    expect(await remote.listContainers({ all: true, filters: { label: ['gauntlet.component=agent'] } })).toEqual([]);
  }, 90_000);

  it('gauntlet drill on an engine DOCKER_HOST names (TCP with TLS, as the docker CLI takes it): killed there through the agent, recovered, the engine in the ledger', async () => {
    // DOCKER_CERT_PATH holds ca.pem, cert.pem and key.pem, as for the docker CLI
    const certs = join(dir, 'docker-certs');
    mkdirSync(certs, { recursive: true });
    copyFileSync(spec.tls?.ca as string, join(certs, 'ca.pem'));
    copyFileSync(spec.tls?.cert as string, join(certs, 'cert.pem'));
    copyFileSync(spec.tls?.key as string, join(certs, 'key.pem'));
    const env = { DOCKER_HOST: spec.host, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs };
    const db = join(dir, 'drill.db');
    const common = ['--db', db, '--reports', join(dir, 'drill-reports')];
    const remote = engineClient(spec);
    const before = await remote.getContainer(REMOTE).inspect();
    const dry = await runCli(['drill', 'node-kill', '--target', REMOTE, '--param', 'mode=crash', '--dry-run', ...common], env);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/default \(DOCKER_HOST\): tcp:\/\/127\.0\.0\.1:\d+ \(another machine: signals, \/proc and network namespaces there through Gauntlet's agent/);
    const r = await runCli(['drill', 'node-kill', '--target', REMOTE, '--param', 'mode=crash', ...common], env);
    process.stderr.write(`drill through DOCKER_HOST:\n${r.stdout}\n`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^drill node-kill on ${REMOTE}: RECOVERED$`, 'm'));
    // killed by its pid on its host (through the agent there): Docker saw a crash, its policy restarted it
    expect((await remote.getContainer(REMOTE).inspect()).RestartCount).toBeGreaterThan(before.RestartCount);
    // the ledger names the engine, so a revert reaches it whatever the reverting process's DOCKER_HOST
    const store = openStore(db);
    const [fault] = store.faults((store.listRuns(1)[0] as { id: string }).id);
    expect(fault?.state).toBe('reverted');
    expect(JSON.parse(fault?.engine ?? 'null')).toMatchObject({ name: 'DOCKER_HOST', host: spec.host, tls: { ca: join(certs, 'ca.pem') } });
    store.close();
    expect(await remote.listContainers({ all: true, filters: { label: ['gauntlet.component=agent'] } })).toEqual([]);
    expect(await docker.listContainers({ all: true, filters: { label: ['gauntlet.component=agent'] } })).toEqual([]);
  }, 120_000);

  it('an engine whose certificate another CA signed is refused before any run, saying so', async () => {
    const other = makeTestPki(dir, 'other');
    const store = openStore(join(dir, 'tls.db'));
    const plan = parsePlanText(`
name: wrong-ca
duration: 5s
engines:
${rackB({ ca: other.ca, cert: other.clientCert, key: other.clientKey })}
targets:
  - { name: remote, container: ${REMOTE}, engine: rack-b }
load: { rate: 1, model: sim-llama }
`);
    const err = await runPlan(plan, null, runCtx(store)).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(err).toMatch(/Docker engine not reachable \(rack-b \(tcp:\/\/127\.0\.0\.1:\d+\)\): .*(certificate|self.signed|verify)/i);
    expect(store.listRuns(10)).toEqual([]);
    store.close();
  });

  it('a Gauntlet killed with a fault active on the remote engine: the next start reverts it there, from the ledger alone', async () => {
    const store = openStore(join(dir, 'leftover.db'));
    const clock = new RealClock();
    const base = { docker, log: silentLogger, clock };
    const engines = new EngineContexts(base);
    const remote = engineClient(spec);
    const info = await remote.getContainer(REMOTE).inspect();
    const injector = FAULTS['packet-loss'];
    if (!injector) throw new Error('no packet-loss fault');
    const params = injector.params.parse({ share: 0.2, duration: '60s', driver: 'iptables' });
    const fault = await injectFault(store, null, injector, { node: 'remote', containerId: info.Id, containerName: REMOTE, engine: spec }, params, engines.for(null), 'leftover-f1');
    expect(fault.driver).toBe('iptables');
    expect((await listTaggedRules(info.State.Pid, 'leftover-f1')).length).toBeGreaterThan(0);
    // "killed": its agent goes with it only at close; the ledger holds the fault as active
    await engines.close();
    expect(store.unrevertedFaults().map((f) => f.id)).toEqual(['leftover-f1']);
    // the next Gauntlet knows no plan: the ledger's engine takes the revert to the remote host
    const lines = await revertLeftovers(store, base, { force: true, containers: [] });
    expect(lines.join('; ')).toMatch(/leftover-f1 \(packet-loss on remote\): removed 2 iptables rule/);
    expect(await listTaggedRules(info.State.Pid)).toEqual([]);
    expect(store.getFault('leftover-f1')?.state).toBe('reverted');
    expect(await remote.listContainers({ all: true, filters: { label: ['gauntlet.component=agent'] } })).toEqual([]);
    store.close();
  }, 90_000);
});
