// Resolves a plan's targets to nodes: a container (by name, or by the label
// gauntlet.target=<value>) and an endpoint, or a bare endpoint. Gauntlet touches only the
// containers resolved here.
import { type Clock, RealClock } from '../util/clock.js';
import { GauntletError } from '../errors.js';
import type { Docker } from '../docker/engine.js';
import { inspectContainer } from '../docker/engine.js';
import type { Plan, PlanTarget } from '../plan/schema.js';
import { requireDocker } from '../docker/engine.js';
import { engineHostAddress, engineLabel, engineSpecOf, hostKeyRefusal, isLoopback, type EngineSpec } from '../docker/engines.js';
import type { EngineContexts } from '../fault/engine-contexts.js';

export const TARGET_LABEL = 'gauntlet.target';

export interface ResolvedTarget {
  node: string;
  endpoint: string;
  containerId: string | null;
  containerName: string | null;
  image: string | null;
  restartCount: number | null;
  /** The engine the container is on (null or absent: DOCKER_HOST's). */
  engine?: EngineSpec | null;
}

export function needsDocker(targets: readonly PlanTarget[]): boolean {
  return targets.some((t) => t.container !== undefined || t.label !== undefined);
}

type PortMap = Record<string, Array<{ HostIp?: string; HostPort?: string }> | null | undefined>;

function firstTcpBinding(ports: PortMap | undefined, engineHost: string | null): string | null {
  for (const [key, bindings] of Object.entries(ports ?? {})) {
    if (!key.endsWith('/tcp') || !bindings) continue;
    for (const b of bindings) {
      if (!b.HostPort) continue; // "" in HostConfig means "any free port": only the live state knows it
      const any = !b.HostIp || b.HostIp === '0.0.0.0' || b.HostIp === '::';
      // On another engine's host: its address, unless bound to its loopback (unreachable from here)
      if (engineHost !== null && !any && isLoopback(b.HostIp as string) && !isLoopback(engineHost)) continue;
      const host = engineHost !== null && (any || isLoopback(b.HostIp as string)) ? engineHost : any ? '127.0.0.1' : (b.HostIp as string);
      return `http://${host.includes(':') ? `[${host}]` : host}:${b.HostPort}`;
    }
  }
  return null;
}

/**
 * The first published TCP port, as an http URL on the loopback address it is bound to. The live
 * bindings (NetworkSettings.Ports) are empty while a container is restarting or stopped, so a
 * fixed host port configured in HostConfig.PortBindings, which survives restarts, is the fallback.
 */
export function endpointFromPorts(info: Docker.ContainerInspectInfo, engineHost: string | null = null): string | null {
  return firstTcpBinding(info.NetworkSettings?.Ports as PortMap | undefined, engineHost) ?? firstTcpBinding(info.HostConfig?.PortBindings as PortMap | undefined, engineHost);
}

/** How long resolveTarget waits for a restarting container whose port only its live state knows. */
export const RESTARTING_WAIT_MS = 15_000;
const RESTARTING_POLL_MS = 250;

/**
 * `engineHost`: the host of the target's engine when it is not on this machine (its published
 * ports are reached there).
 */
export async function resolveTarget(t: PlanTarget, docker: Docker | null, clock: Clock = new RealClock(), engineHost: string | null = null): Promise<ResolvedTarget> {
  if (!t.container && !t.label) {
    return { node: t.name, endpoint: t.endpoint as string, containerId: null, containerName: null, image: null, restartCount: null };
  }
  if (!docker) throw new GauntletError('GAUNTLET_DOCKER_UNAVAILABLE', ['-', `target ${t.name} is a container but no Docker client was given`]);
  let info: Docker.ContainerInspectInfo | null;
  if (t.container) {
    info = await inspectContainer(docker, t.container);
    if (!info) throw new GauntletError('GAUNTLET_TARGET_NOT_FOUND', [t.name, `no container named ${t.container}`]);
  } else {
    const found = await docker.listContainers({ all: true, filters: { label: [`${TARGET_LABEL}=${t.label}`] } });
    if (found.length === 0) throw new GauntletError('GAUNTLET_TARGET_NOT_FOUND', [t.name, `no container has the label ${TARGET_LABEL}=${t.label}`]);
    if (found.length > 1) {
      const names = found.map((c) => c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12)).join(', ');
      throw new GauntletError('GAUNTLET_TARGET_AMBIGUOUS', [t.name, `${found.length} containers have the label ${TARGET_LABEL}=${t.label}: ${names}`]);
    }
    info = await inspectContainer(docker, (found[0] as Docker.ContainerInfo).Id);
    if (!info) throw new GauntletError('GAUNTLET_TARGET_NOT_FOUND', [t.name, `container with label ${TARGET_LABEL}=${t.label} disappeared`]);
  }
  const name = info.Name.replace(/^\//, '');
  let endpoint = t.endpoint ?? endpointFromPorts(info, engineHost);
  // A container Docker is restarting (restart policy, or a crash the plan is about to measure)
  // shows no live ports and, with an ephemeral host port, no configured one either: wait a
  // bounded time for it to run again rather than refusing a target that is about to be back.
  const deadline = clock.now() + RESTARTING_WAIT_MS;
  while (!endpoint && (info.State?.Restarting || info.State?.Status === 'restarting') && clock.now() < deadline) {
    await clock.sleep(RESTARTING_POLL_MS);
    const again = await inspectContainer(docker, info.Id);
    if (!again) break;
    info = again;
    endpoint = endpointFromPorts(info, engineHost);
  }
  if (!endpoint) {
    throw new GauntletError('GAUNTLET_TARGET_NO_ENDPOINT', [t.name, `container ${name} publishes no TCP port; publish one (on 127.0.0.1) or give the target an endpoint`]);
  }
  return { node: t.name, endpoint, containerId: info.Id, containerName: name, image: info.Config.Image, restartCount: info.RestartCount };
}

/**
 * DOCKER_HOST's engine when some container target is on it (reachable, or a clear error), null
 * when none is.
 */
export async function defaultEngineFor(plan: Plan, docker: Docker | null): Promise<Docker | null> {
  if (!needsDocker(plan.targets.filter((t) => !t.engine))) return null;
  if (!docker) throw new GauntletError('GAUNTLET_DOCKER_UNAVAILABLE', ['-', 'the plan has container targets but no Docker client is available']);
  await requireDocker(docker);
  return docker;
}

/** A plan's engines by name, their files made absolute (relative to the plan's folder). */
export function planEngines(plan: Plan, planDir: string): Map<string, EngineSpec> {
  return new Map(plan.engines.map((e) => [e.name, engineSpecOf(e, planDir)]));
}

/**
 * Every target on its engine: each engine a target names answers first (a refused SSH host key
 * said as such), then each target is resolved there. `docker` is DOCKER_HOST's engine (null when
 * no target is on it).
 */
export async function resolveOnEngines(plan: Plan, specs: ReadonlyMap<string, EngineSpec>, engines: EngineContexts, docker: Docker | null, clock: Clock): Promise<ResolvedTarget[]> {
  for (const spec of specs.values()) {
    if (!plan.targets.some((t) => t.engine === spec.name)) continue;
    try {
      await requireDocker(engines.docker(spec) as Docker, engineLabel(spec));
    } catch (err) {
      const why = hostKeyRefusal(spec.name);
      throw why ? new GauntletError('GAUNTLET_DOCKER_UNAVAILABLE', [engineLabel(spec), why], { cause: err }) : err;
    }
  }
  return Promise.all(
    plan.targets.map(async (t) => {
      const spec = t.engine ? (specs.get(t.engine) as EngineSpec) : null;
      const r = await resolveTarget(t, spec ? engines.docker(spec) : docker, clock, engineHostAddress(spec));
      return { ...r, engine: spec };
    }),
  );
}
