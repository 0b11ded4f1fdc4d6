// packet-loss: a share of the node's packets dropped for `duration`.
//   driver "netem": `tc qdisc add dev eth0 root handle <gauntlet handle> netem loss X%` in the
//   container's network namespace (egress: every packet the node sends, its SYN-ACKs and
//   response segments). Real hosts usually have it.
//   driver "iptables": `-m statistic --mode random --probability X -j DROP` on INPUT and
//   OUTPUT in the container's namespace (this kernel has no netem; iptables works), each rule
//   commented `gauntlet:<fault id>` so it can be found and removed without the ledger.
// Both act inside the target's namespace, so every client's traffic is affected, not only
// Gauntlet's. TCP retransmits what is dropped: the node shows it as slower streams, stalls
// and, at high shares, timeouts. A container restarted mid-fault has a new namespace: the
// rules went with the old one.
import { z } from 'zod';
import { GauntletError } from '../src/errors.js';
import { netnsOn } from '../src/fault/netns.js';
import { capsOf, hostOf } from '../src/fault/host-access.js';
import { ruleComment, type FaultContext, type FaultInjector, type HostCaps } from '../src/fault/types.js';
import { formatDuration } from '../src/util/duration.js';
import { durationParam, share } from './params.js';

/** The qdisc handle Gauntlet's netem uses: found and removed by it, never someone else's. */
export const GAUNTLET_QDISC_HANDLE = '6a17:';

const Params = z.strictObject({
  share: share('share'),
  duration: durationParam('duration', 100, 86_400_000),
  driver: z.enum(['auto', 'netem', 'iptables']).default('auto'),
  /** iptables: which packets — arriving, leaving or both. netem acts on leaving packets only. */
  direction: z.enum(['in', 'out', 'both']).default('both'),
  /** The container's network interface (netem). */
  interface: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'expected an interface name like eth0').default('eth0'),
});
type Params = z.infer<typeof Params>;

function requireDocker(ctx: FaultContext) {
  if (!ctx.docker) throw new Error('packet-loss needs the Docker engine');
  return ctx.docker;
}

async function caps(ctx: FaultContext): Promise<HostCaps> {
  return ctx.caps ?? (await capsOf(hostOf(ctx)));
}

function chooseDriver(p: Params, c: HostCaps): { driver: 'netem' | 'iptables' } | { refused: string } {
  if (p.driver === 'netem' || (p.driver === 'auto' && c.netem && p.direction !== 'in')) {
    if (!c.netem) return { refused: `driver netem asked for, but ${c.notes.netem ?? 'this kernel has no netem qdisc'}` };
    if (p.direction === 'in') return { refused: 'netem drops leaving packets only; use driver iptables for direction in' };
    return { driver: 'netem' };
  }
  if (!c.iptables) return { refused: `no netem and no usable iptables: ${c.notes.iptables ?? 'iptables missing'}` };
  return { driver: 'iptables' };
}

const chains = (d: Params['direction']): string[] => (d === 'in' ? ['INPUT'] : d === 'out' ? ['OUTPUT'] : ['INPUT', 'OUTPUT']);

export const packetLoss: FaultInjector<Params> = {
  kind: 'packet-loss',
  description: "drop a share of the node's packets for duration (netem loss, or iptables statistic in the container's network namespace)",
  needsContainer: true,
  instant: false,
  holdMs: (p) => p.duration,
  params: Params,

  async unsupported(ctx) {
    const c = await caps(ctx);
    if (!c.nsenter) return `cannot enter a container's network namespace: ${c.notes.nsenter ?? 'nsenter unavailable'}`;
    if (!c.netem && !c.iptables) return `neither netem (${c.notes.netem ?? 'missing'}) nor iptables (${c.notes.iptables ?? 'missing'})`;
    return null;
  },

  async describe(target, params, ctx) {
    const c = target.containerName ?? target.containerId;
    const chosen = chooseDriver(params, await caps(ctx));
    if ('refused' in chosen) return [`refused: ${chosen.refused}`];
    const pct = `${(params.share * 100).toFixed(1)} %`;
    const what =
      chosen.driver === 'netem'
        ? [`in the network namespace of ${c}: tc qdisc add dev ${params.interface} root handle ${GAUNTLET_QDISC_HANDLE} netem loss ${pct}`]
        : chains(params.direction).map((ch) => `in the network namespace of ${c}: iptables -I ${ch} -m statistic --mode random --probability ${params.share} -m comment --comment ${ruleComment('<fault id>')} -j DROP`);
    return [...what, `after ${formatDuration(params.duration)}: remove ${chosen.driver === 'netem' ? 'the qdisc' : 'the rules'} (revert)`];
  },

  async prepare(target, params, ctx) {
    const { inNetnsOk, tcpRetransmits, running } = netnsOn(hostOf(ctx));
    const info = await requireDocker(ctx).getContainer(target.containerId as string).inspect();
    if (!info.State.Running || !info.State.Pid) throw new GauntletError('GAUNTLET_FAULT_INJECT', ['packet-loss', target.node, `container is ${info.State.Status}, not running`]);
    if (!(await running(info.State.Pid))) {
      throw new GauntletError('GAUNTLET_FAULT_INJECT', ['packet-loss', target.node, `the container's main pid ${info.State.Pid} is not visible here: Gauntlet must run in the Docker host's PID namespace`]);
    }
    if (info.HostConfig.NetworkMode === 'host') {
      throw new GauntletError('GAUNTLET_FAULT_INJECT', ['packet-loss', target.node, "the container uses the host's network namespace: dropping packets there would hit the whole host; refused"]);
    }
    const chosen = chooseDriver(params, await caps(ctx));
    if ('refused' in chosen) throw new GauntletError('GAUNTLET_FAULT_INJECT', ['packet-loss', target.node, chosen.refused]);
    if (chosen.driver === 'netem') {
      // The handle carries no fault id: one netem loss per namespace, or a revert could remove another's.
      const show = await inNetnsOk(info.State.Pid, 'tc', ['qdisc', 'show', 'dev', params.interface]);
      if (show.includes(`qdisc netem ${GAUNTLET_QDISC_HANDLE}`)) throw new GauntletError('GAUNTLET_FAULT_INJECT', ['packet-loss', target.node, `${params.interface} already has Gauntlet's packet-loss qdisc: another packet-loss fault is active on this node`]);
    }
    return {
      containerId: info.Id,
      pid: info.State.Pid,
      startedAt: info.State.StartedAt,
      driver: chosen.driver,
      interface: params.interface,
      faultId: ctx.faultId ?? 'manual',
      // What the drops did is read at the end against this: TCP had to retransmit.
      retransmitsBefore: await tcpRetransmits(info.State.Pid),
    };
  },

  async inject(target, params, undo, ctx) {
    const { inNetns, inNetnsOk } = netnsOn(hostOf(ctx));
    const pid = undo.pid as number;
    const id = undo.faultId as string;
    let at: number;
    if (undo.driver === 'netem') {
      at = ctx.clock.now();
      const r = await inNetns(pid, 'tc', ['qdisc', 'add', 'dev', params.interface, 'root', 'handle', GAUNTLET_QDISC_HANDLE, 'netem', 'loss', `${(params.share * 100).toFixed(3)}%`]);
      if (r.code !== 0) {
        throw new GauntletError('GAUNTLET_FAULT_INJECT', ['packet-loss', target.node, `tc qdisc add … netem failed: ${r.stderr.trim()}${/File exists/.test(r.stderr) ? ' (the interface already has a root qdisc: another network fault on this node?)' : ''}`]);
      }
    } else {
      at = ctx.clock.now();
      for (const chain of chains(params.direction)) {
        await inNetnsOk(pid, 'iptables', ['-w', '5', '-I', chain, '-m', 'statistic', '--mode', 'random', '--probability', String(params.share), '-m', 'comment', '--comment', ruleComment(id), '-j', 'DROP']);
      }
    }
    return { at, driver: undo.driver as string, detail: { share: params.share, chains: undo.driver === 'iptables' ? chains(params.direction) : undefined, interface: params.interface } };
  },

  async revert(undo, ctx) {
    const { inNetns, inNetnsOk, deleteTaggedRules, tcpRetransmits, taggedRulePackets } = netnsOn(hostOf(ctx));
    let info;
    try {
      info = await requireDocker(ctx).getContainer(undo.containerId as string).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return { action: 'nothing: container no longer exists (its namespace went with it)' };
      throw err;
    }
    if (!info.State.Running || !info.State.Pid) return { action: 'nothing: container not running (its network namespace, and the rules in it, are gone)' };
    const restarted = info.State.StartedAt !== undo.startedAt;
    const pid = info.State.Pid;
    // The effect, from the kernel's own counters in the namespace (same incarnation only).
    const result: Record<string, unknown> = {};
    if (!restarted) {
      const after = await tcpRetransmits(pid);
      if (after !== null && typeof undo.retransmitsBefore === 'number') result.tcp_retransmits = after - undo.retransmitsBefore;
      if (undo.driver === 'iptables') result.dropped_packets = await taggedRulePackets(pid, undo.faultId as string);
    }
    const withResult = (action: string) => (Object.keys(result).length > 0 ? { action, result } : { action });
    if (undo.driver === 'netem') {
      // A new namespace: its qdisc, if any, was put there by a later fault, not this one.
      if (restarted) return { action: 'nothing: the container restarted; its new namespace has no qdisc of this fault' };
      const stats = await inNetns(pid, 'tc', ['-s', 'qdisc', 'show', 'dev', String(undo.interface)]);
      const dropped = /qdisc netem 6a17:[\s\S]*?dropped (\d+)/.exec(stats.stdout)?.[1];
      if (dropped !== undefined && !restarted) result.dropped_packets = Number(dropped);
      const show = await inNetnsOk(pid, 'tc', ['qdisc', 'show', 'dev', String(undo.interface)]);
      if (!show.includes(`qdisc netem ${GAUNTLET_QDISC_HANDLE}`)) return { action: restarted ? 'nothing: the container restarted; its new namespace has no netem qdisc' : 'nothing: no gauntlet netem qdisc (never landed or already removed)' };
      await inNetnsOk(pid, 'tc', ['qdisc', 'del', 'dev', String(undo.interface), 'root', 'handle', GAUNTLET_QDISC_HANDLE]);
      return withResult('removed the netem qdisc');
    }
    const n = await deleteTaggedRules(pid, undo.faultId as string);
    return withResult(n > 0 ? `removed ${n} iptables rule(s)` : restarted ? 'nothing: the container restarted; its new namespace has no rules' : 'nothing: no rules left (never landed or already removed)');
  },
};
