// --dry-run: every action a run (or drill) would take, in order, and nothing touched. Targets
// are resolved (Docker inspect is read-only), each fault plug-in describes what it would do,
// and what the safety settings or this host would skip is said up front.
import { resolveParallelism } from '../load/parallel.js';
import { FAULTS } from '../../faults/index.js';
import { detectHostCaps } from '../fault/host.js';
import { isInstant, type FaultContext, type FaultInjector } from '../fault/types.js';
import type { Docker } from '../docker/engine.js';
import type { Logger } from '../log.js';
import type { Plan } from '../plan/schema.js';
import type { Clock } from '../util/clock.js';
import { formatDuration } from '../util/duration.js';
import { faultSchedule } from './runner.js';
import { needsDocker, resolveTarget } from './targets.js';

export async function dryRunPlan(plan: Plan, ctx: { docker: Docker | null; log: Logger; clock: Clock }): Promise<string[]> {
  const docker = needsDocker(plan.targets) ? ctx.docker : null;
  const lines: string[] = [`dry run of plan ${plan.name}: nothing below is done; no request is sent, no container touched`];
  const targets = await Promise.all(plan.targets.map((t) => resolveTarget(t, docker)));
  lines.push('targets:');
  for (const t of targets) {
    let extra = '';
    if (docker && t.containerId) {
      const info = await docker.getContainer(t.containerId).inspect();
      const mem = info.HostConfig.Memory ? `memory limit ${Math.round(info.HostConfig.Memory / 2 ** 20)} MiB` : 'no memory limit';
      extra = ` — ${info.State.Status}, restart policy ${info.HostConfig.RestartPolicy?.Name || 'no'}, ${mem}, restarts so far ${info.RestartCount}`;
    }
    lines.push(`  ${t.node}: ${t.containerName ? `container ${t.containerName} (${(t.containerId ?? '').slice(0, 12)}, image ${t.image})` : 'bare endpoint'} at ${t.endpoint}${extra}`);
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
  const caps = await detectHostCaps();
  const fctx: FaultContext = { docker, log: ctx.log, clock: ctx.clock, caps };
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
    const unsupported = await injector.unsupported?.(fctx);
    if (unsupported) {
      lines.push(`      would be skipped: not supported on this host: ${unsupported}`);
      continue;
    }
    for (const a of await injector.describe({ node: t.node, containerId: t.containerId, containerName: t.containerName }, occ.params, fctx)) lines.push(`      ${a}`);
  }
  lines.push('at the end (and on Ctrl-C/SIGTERM): revert every active fault, flush the store, write the report');
  return lines;
}
