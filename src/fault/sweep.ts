// The second line of "a fault is never left behind": after the ledger's reverts, anything
// Gauntlet creates on a host still carrying its mark is removed — helper containers labelled
// gauntlet.fault, iptables rules commented gauntlet:<id>, qdiscs with Gauntlet's handle — in
// the namespaces of the given containers. What belongs to a fault still active under a live
// Gauntlet process (another run) is left to it.
import type { EngineSpec } from '../docker/engines.js';
import { sameEngine } from './engine-contexts.js';
import { errorMessage } from '../errors.js';
import type { Store } from '../store/store.js';
import { hostname } from 'node:os';
import { ownerAlive, selfOwner } from '../util/proc.js';
import { AGENT_COMPONENT, hostOf } from './host-access.js';
import { netnsOn } from './netns.js';
import type { FaultContext } from './types.js';

/** Root qdisc handles Gauntlet's network faults use (packet-loss netem, latency netem). */
export const GAUNTLET_QDISC_HANDLES = ['6a17:', '6a18:'];

/** Fault ids still active under a live Gauntlet process: theirs to revert, not ours. */
function liveFaultIds(store: Store): Set<string> {
  return new Set(store.unrevertedFaults().filter((f) => live(f.owner)).map((f) => f.id));
}

/**
 * This process, another live Gauntlet process on this host, or a Gauntlet on another machine
 * (an engine two machines share): whether that one lives cannot be told from here, so what it
 * holds is left to it (its own next start sweeps it).
 */
function live(owner: string | null | undefined): boolean {
  if (owner === null || owner === undefined) return false;
  if (owner.split('|')[0] !== hostname()) return true;
  return owner === selfOwner() || ownerAlive(owner);
}

type Labelled = { Id: string; Names: string[]; Labels: Record<string, string> };

/** Force-removes the containers with a label but those `keep` spares; one line each (a 404 is not worth one). */
async function removeLabelled(docker: NonNullable<FaultContext['docker']>, label: string, what: string, keep: (c: Labelled) => boolean, why: (c: Labelled) => string, done: string[]): Promise<void> {
  let found: Labelled[];
  try {
    found = (await docker.listContainers({ all: true, filters: { label: [label] } })) as Labelled[];
  } catch (err) {
    done.push(`cannot list ${what} containers: ${errorMessage(err)}`);
    return;
  }
  for (const c of found) {
    if (keep(c)) continue;
    const name = c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12);
    try {
      await docker.getContainer(c.Id).remove({ force: true });
      done.push(`removed ${what} container ${name}${why(c)}`);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) done.push(`could not remove ${what} container ${name}: ${errorMessage(err)}`);
    }
  }
}

/**
 * Removes Gauntlet's leftovers. `containerIds`: the containers whose network namespaces to
 * search (plan targets, containers in the ledger, containers labelled gauntlet.target).
 * Returns one line per thing removed (or that could not be).
 */
export async function sweepLeftovers(store: Store, ctx: FaultContext, containerIds: readonly string[]): Promise<string[]> {
  const docker = ctx.docker;
  if (!docker) return [];
  try {
    await docker.ping();
  } catch {
    return []; // no engine: nothing of Gauntlet's can be on it that we could reach
  }
  const done: string[] = [];
  const liveIds = liveFaultIds(store);
  const { inNetns, listTaggedRules, deleteTaggedRules, running } = netnsOn(hostOf(ctx));

  // Agent containers (another engine's host work) whose Gauntlet died, and helper containers
  // (latency proxies, GPU-memory sidecars …) not running a fault for a live Gauntlet (this
  // ledger's, or another process's by its label).
  await removeLabelled(docker, `gauntlet.component=${AGENT_COMPONENT}`, 'agent', (c) => live(c.Labels['gauntlet.owner']), () => ' (its Gauntlet is gone)', done);
  await removeLabelled(docker, 'gauntlet.fault', 'helper', (c) => liveIds.has(c.Labels['gauntlet.fault'] ?? '') || live(c.Labels['gauntlet.owner']), (c) => ` (fault ${c.Labels['gauntlet.fault'] ?? ''})`, done);

  // Rules and qdiscs inside the targets' namespaces (none on a simulated host: nothing runs there).
  if (hostOf(ctx).simulated) return done;
  const liveContainers = new Set(store.unrevertedFaults().filter((f) => live(f.owner) && f.container_id).map((f) => f.container_id as string));
  for (const cid of new Set(containerIds)) {
    let pid: number;
    let name = cid.slice(0, 12);
    try {
      const info = await docker.getContainer(cid).inspect();
      name = info.Name.replace(/^\//, '');
      if (!info.State.Running || !info.State.Pid || info.HostConfig.NetworkMode === 'host' || !(await running(info.State.Pid))) continue;
      pid = info.State.Pid;
    } catch {
      continue; // gone: its namespace went with it
    }
    try {
      for (const r of await listTaggedRules(pid)) {
        if (liveIds.has(r.faultId)) continue;
        await deleteTaggedRules(pid, r.faultId);
        done.push(`removed iptables rules of fault ${r.faultId} in ${name}`);
      }
    } catch (err) {
      done.push(`could not check iptables rules in ${name}: ${errorMessage(err)}`);
    }
    if (liveContainers.has(cid)) continue;
    const show = await inNetns(pid, 'ip', ['-o', 'link', 'show']);
    const ifaces = show.code === 0 ? [...show.stdout.matchAll(/^\d+:\s+([^:@\s]+)/gm)].map((m) => m[1] as string).filter((i) => i !== 'lo') : ['eth0'];
    for (const dev of ifaces) {
      const q = await inNetns(pid, 'tc', ['qdisc', 'show', 'dev', dev]);
      if (q.code !== 0) continue;
      for (const handle of GAUNTLET_QDISC_HANDLES) {
        if (!new RegExp(`qdisc \\S+ ${handle} root`).test(q.stdout)) continue;
        const del = await inNetns(pid, 'tc', ['qdisc', 'del', 'dev', dev, 'root', 'handle', handle]);
        done.push(del.code === 0 ? `removed qdisc ${handle} on ${dev} in ${name}` : `could not remove qdisc ${handle} on ${dev} in ${name}: ${del.stderr.trim()}`);
      }
    }
  }
  return done;
}

/** The containers a sweep should look into when no plan says: labelled targets and the ledger's. */
export async function sweepCandidates(store: Store, ctx: FaultContext): Promise<string[]> {
  const ids = new Set<string>();
  // the ledger's containers on this context's engine (each other engine's are swept there)
  for (const f of store.db.prepare('SELECT DISTINCT container_id, engine FROM faults WHERE container_id IS NOT NULL').all() as { container_id: string; engine: string | null }[]) {
    let spec: EngineSpec | null = null;
    try {
      spec = f.engine ? (JSON.parse(f.engine) as EngineSpec) : null;
    } catch {
      // an unreadable engine: looked for here (a container not on this engine is not found)
    }
    if (sameEngine(spec, ctx.engine)) ids.add(f.container_id);
  }
  if (ctx.docker) {
    try {
      for (const c of await ctx.docker.listContainers({ filters: { label: ['gauntlet.target'] } })) ids.add(c.Id);
    } catch {
      // the sweep reports what it can
    }
  }
  return [...ids];
}
