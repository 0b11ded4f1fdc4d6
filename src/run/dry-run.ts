// --dry-run: every action a run (or drill) would take, in order, and nothing touched. Targets
// are resolved (Docker inspect is read-only), each fault plug-in describes what it would do,
// and what the safety settings or this host would skip is said up front.
import { resolveParallelism } from '../load/parallel.js';
import { FAULTS } from '../../faults/index.js';
import { dirname } from 'node:path';
import { engineIsLocal, engineLabel, type EngineSpec } from '../docker/engines.js';
import { EngineContexts } from '../fault/engine-contexts.js';
import { isInstant, type FaultContext, type FaultInjector } from '../fault/types.js';
import type { Docker } from '../docker/engine.js';
import type { Logger } from '../log.js';
import type { Plan } from '../plan/schema.js';
import type { Clock } from '../util/clock.js';
import { formatDuration } from '../util/duration.js';
import { faultSchedule } from './runner.js';
import { defaultEngineFor, planEngines, resolveOnEngines } from './targets.js';

export async function dryRunPlan(plan: Plan, ctx: { docker: Docker | null; log: Logger; clock: Clock; planSource?: string | null; connectEngine?: (spec: EngineSpec) => Docker }): Promise<string[]> {
  const docker = await defaultEngineFor(plan, ctx.docker);
  const engines = new EngineContexts({ docker, log: ctx.log, clock: ctx.clock }, ctx.connectEngine);
  try {
    return await describePlan(plan, ctx, docker, engines);
  } finally {
    // (an agent started to learn a remote host's capabilities is removed)
    await engines.close().catch(() => undefined);
  }
}

async function describePlan(plan: Plan, ctx: { log: Logger; clock: Clock; planSource?: string | null }, docker: Docker | null, engines: EngineContexts): Promise<string[]> {
  const lines: string[] = [`dry run of plan ${plan.name}: nothing below is done; no request is sent, no target touched`];
  const specs = planEngines(plan, ctx.planSource ? dirname(ctx.planSource) : process.cwd());
  const targets = await resolveOnEngines(plan, specs, engines, docker, ctx.clock);
  const used = [...specs.values()].filter((spec) => targets.some((t) => t.engine?.name === spec.name));
  const onDefault = targets.some((t) => !t.engine && t.containerId);
  if (used.length > 0 || (onDefault && !engineIsLocal(null))) {
    lines.push('Docker engines:');
    if (onDefault) lines.push(`  default (DOCKER_HOST): ${engineLabel(null)}${engineIsLocal(null) ? ' (this machine: host work done here)' : " (another machine: signals, /proc and network namespaces there through Gauntlet's agent container gauntlet-agent-*, started only if a fault needs that host's capabilities, then removed)"}`);
    for (const spec of used) {
      lines.push(
        `  ${spec.name}: ${spec.host}${spec.tls ? ' (TLS, client certificate)' : ''}${engineIsLocal(spec) ? ' (a socket on this machine: host work done here)' : ` — signals, /proc and network namespaces there through Gauntlet's agent container gauntlet-agent-* (its host's PID and network namespaces; started here only if a fault needs that host's capabilities (netem, iptables), then removed; the targets are not touched)`}`,
      );
    }
  }
  lines.push('targets:');
  for (const t of targets) {
    let extra = '';
    const on = t.engine ? engines.docker(t.engine) : docker;
    if (on && t.containerId) {
      const info = await on.getContainer(t.containerId).inspect();
      const mem = info.HostConfig.Memory ? `memory limit ${Math.round(info.HostConfig.Memory / 2 ** 20)} MiB` : 'no memory limit';
      extra = ` — ${info.State.Status}, restart policy ${info.HostConfig.RestartPolicy?.Name || 'no'}, ${mem}, restarts so far ${info.RestartCount}`;
    }
    lines.push(`  ${t.node}: ${t.containerName ? `container ${t.containerName} (${(t.containerId ?? '').slice(0, 12)}, image ${t.image})${t.engine ? ` on engine ${t.engine.name}` : ''}` : 'bare endpoint'} at ${t.endpoint}${extra}`);
  }
  const l = plan.load;
  const rate = l.rate !== undefined ? `${l.rate} req/s` : `stages from ${l.start_rate} req/s: ${(l.stages ?? []).map((s) => `${s.target}/s over ${formatDuration(s.duration)}`).join(', ')}`;
  lines.push(`wait until every target's ${plan.probes.path} answers 2xx (at most ${formatDuration(plan.ready_timeout)})`);
  const gens = resolveParallelism(l.parallelism);
  const hosts = l.k6_hosts;
  const split = hosts
    ? ` split over ${hosts.reduce((a, h) => a + h.instances, 0)} k6 instances (execution segments): ${hosts.map((h) => `${h.instances} on ${h.host === 'local' ? 'this machine' : h.host}`).join(', ')}`
    : gens === 1
      ? ''
      : l.engine === 'k6'
        ? ` split over ${gens} k6 processes (execution segments)`
        : ` on ${gens} worker threads`;
  lines.push(`load: ${l.engine} engine${split}, ${rate} in total (${l.arrival} arrivals, open loop) for ${formatDuration(plan.duration)}, timeout ${formatDuration(l.timeout)}`);
  lines.push(`probes: ${plan.probes.path} every ${formatDuration(plan.probes.interval)} per node (timeout ${formatDuration(plan.probes.timeout)}); a one-token canary every ${formatDuration(plan.probes.canary_interval)}; both every ${formatDuration(plan.probes.fast_interval)}, concurrently on fresh connections, while a node is faulted, suspect, busy, down or recovering`);
  const schedule = faultSchedule(plan);
  lines.push(schedule.length === 0 ? 'faults: none' : `faults (${schedule.length}), times from the start of the load:`);
  const s = plan.safety;
  if (s.max_concurrent_faults !== undefined || s.min_healthy_nodes > 0) {
    lines.push(`  blast radius: at most ${s.max_concurrent_faults ?? 'any number of'} fault(s) at once, at least ${s.min_healthy_nodes} other node(s) healthy — otherwise skipped and recorded`);
  }
  if (s.halt) lines.push(`  halt: stop injecting and revert when the error rate outside fault windows exceeds ${(s.halt.error_rate * 100).toFixed(1)} % over ${formatDuration(s.halt.for)}`);
  for (const [i, occ] of schedule.entries()) {
    const injector = FAULTS[occ.kind] as FaultInjector<unknown>;
    const t = targets.find((x) => x.node === occ.node);
    if (!t) continue;
    const hold = isInstant(injector, occ.params) ? `instant; window ends when the node serves again (recovery limit ${formatDuration(plan.recovery_limit)})` : `held ${formatDuration(injector.holdMs?.(occ.params) ?? plan.recovery_limit)}`;
    lines.push(`  f${i + 1} at +${formatDuration(occ.offsetMs)}: ${occ.kind} on ${t.node} (${hold})`);
    // each fault on its node's engine and host (a remote host's capabilities through its agent)
    const fctx: FaultContext = engines.for(t.engine);
    const unsupported = await injector.unsupported?.(fctx);
    if (unsupported) {
      lines.push(`      would be skipped: not supported on ${t.engine && !engineIsLocal(t.engine) ? `engine ${t.engine.name}'s host` : 'this host'}: ${unsupported}`);
      continue;
    }
    for (const a of await injector.describe({ node: t.node, containerId: t.containerId, containerName: t.containerName, engine: t.engine ?? null }, occ.params, fctx)) lines.push(`      ${a}`);
  }
  lines.push('at the end (and on Ctrl-C/SIGTERM): revert every active fault, flush the store, write the report');
  return lines;
}
