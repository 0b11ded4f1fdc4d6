// gpu-memory-pressure: another tenant takes most of the node's GPU memory for `duration` — a
// stray notebook, a second engine on the same cards, a leak in a co-located job. A sidecar
// container is given exactly the target's GPU devices (its DeviceRequests with capability gpu
// and its /dev/nvidia* device mappings) and runs a user-supplied image and command that
// allocates the memory; Gauntlet ships no CUDA code and pulls nothing from a registry.
// The command gets GAUNTLET_GPU_MEMORY_SHARE (the share of each GPU's memory to take) and
// GAUNTLET_DURATION_S (how long to hold it) in its environment; it should exit after that
// long, but nothing relies on it: revert removes the sidecar (force) whatever it is doing,
// and reports how its command ended, since only that tells whether the pressure landed.
// What is measured is the node's reaction: KV-cache evictions and slower tokens, CUDA OOM on
// new requests, or a crash.
import { z } from 'zod';
import { tailLogs, type Docker } from '../src/docker/engine.js';
import { GauntletError, errorMessage } from '../src/errors.js';
import { helperLabels, type FaultContext, type FaultInjector, type FaultTarget, type UndoRecord } from '../src/fault/types.js';
import { formatDuration } from '../src/util/duration.js';
import { durationParam, share } from './params.js';

const KIND = 'gpu-memory-pressure';
export const SHARE_ENV = 'GAUNTLET_GPU_MEMORY_SHARE';
export const DURATION_ENV = 'GAUNTLET_DURATION_S';
/** Seconds Docker gives the sidecar after SIGTERM: a memory filler has nothing to save. */
const STOP_TIMEOUT_S = 2;
/** Log lines of the sidecar kept in the ledger when it is removed. */
const LOG_LINES = 10;

const Params = z.strictObject({
  /** An image present on the Docker host (built or loaded there; never pulled). */
  image: z.string().trim().min(1, 'expected image as a local image reference, e.g. "gpu-filler:latest"'),
  /** The argv of the memory filler, no shell; it is the container's Cmd, so an image ENTRYPOINT gets it as arguments (as `docker run image args`). */
  command: z
    .array(z.string(), { error: 'expected command as a list of strings (the argv, e.g. ["python3", "/fill.py"]); a shell string is not accepted' })
    .min(1, 'expected command to name at least the program to run'),
  duration: durationParam('duration', 1000),
  /** Extra environment for the command (names and values as strings). */
  env: z
    .record(z.string(), z.string())
    .superRefine((env, ctx) => {
      for (const name of Object.keys(env)) {
        if (!/^[^=\s]+$/.test(name)) ctx.addIssue({ code: 'custom', message: `expected an environment variable name (no "=", no spaces), got ${JSON.stringify(name)}`, path: [name] });
      }
      for (const reserved of [SHARE_ENV, DURATION_ENV]) {
        if (reserved in env) ctx.addIssue({ code: 'custom', message: `${reserved} is set by Gauntlet (from ${reserved === SHARE_ENV ? 'share' : 'duration'}); set that param instead`, path: [reserved] });
      }
    })
    .optional(),
  /** The share of each GPU's memory the command should take, 0 < x ≤ 1. */
  share: share('share').default(0.9),
});
type Params = z.infer<typeof Params>;

/** A GPU device request as Docker reports it (DeviceIDs and Options may be null there). */
type GpuRequest = Docker.DeviceRequest;

export interface GpuDevices {
  /** The target's DeviceRequests that ask for GPUs, as Docker reported them. */
  requests: GpuRequest[];
  /** The target's device mappings under /dev/nvidia* (GPUs and their control devices). */
  devices: Docker.DeviceMapping[];
}

/** The helper's name, from the fault id: the only key revert needs. */
export function sidecarName(faultId: string): string {
  return `gauntlet-fault-${faultId}`;
}

/** A request for GPUs: capability gpu (`--gpus`, compose's `capabilities: [gpu]`), and not zero of them. */
function isGpuRequest(r: GpuRequest): boolean {
  const asksGpu = (r.Capabilities ?? []).some((set) => (set ?? []).includes('gpu'));
  const none = (r.DeviceIDs ?? []).length === 0 && r.Count === 0;
  return asksGpu && !none;
}

const NVIDIA_DEVICE = /^\/dev\/nvidia/;
/** A GPU itself (/dev/nvidia0 …), as opposed to the control devices (nvidiactl, nvidia-uvm …). */
const NVIDIA_GPU = /^\/dev\/nvidia\d+$/;

/** The GPU devices in a container's HostConfig. */
export function gpuDevices(host: { DeviceRequests?: GpuRequest[] | null; Devices?: Docker.DeviceMapping[] | null }): GpuDevices {
  return {
    requests: (host.DeviceRequests ?? []).filter(isGpuRequest),
    devices: (host.Devices ?? []).filter((d) => NVIDIA_DEVICE.test(d.PathOnHost)),
  };
}

/** Whether those devices include a GPU (not only control devices). */
export function hasGpu(d: GpuDevices): boolean {
  return d.requests.length > 0 || d.devices.some((m) => NVIDIA_GPU.test(m.PathOnHost));
}

/** One line per device, for the journal and messages: "driver nvidia: GPUs 0,1", "/dev/nvidia0". */
export function describeDevices(d: GpuDevices): string[] {
  const requests = d.requests.map((r) => {
    const which = r.DeviceIDs && r.DeviceIDs.length > 0 ? `GPUs ${r.DeviceIDs.join(',')}` : r.Count === -1 ? 'all GPUs' : `${r.Count ?? 0} GPU(s)`;
    return `driver ${r.Driver || '(default)'}: ${which}`;
  });
  const devices = d.devices.map((m) => (m.PathInContainer && m.PathInContainer !== m.PathOnHost ? `${m.PathOnHost}:${m.PathInContainer}` : m.PathOnHost));
  return [...requests, ...devices];
}

function requireDocker(ctx: FaultContext): Docker {
  if (!ctx.docker) throw new Error(`${KIND} needs the Docker engine`);
  return ctx.docker;
}

function refuse(node: string, why: string): never {
  throw new GauntletError('GAUNTLET_FAULT_INJECT', [KIND, node, why]);
}

function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

/** Why a container with no GPU devices has none, with a hint where its GPUs may come from instead. */
function noGpuReason(name: string, info: Docker.ContainerInspectInfo, found: GpuDevices): string {
  let why = `container ${name} has no GPU devices (no DeviceRequests with capability gpu, no /dev/nvidia* devices): nothing to put pressure on`;
  if (found.devices.length > 0) why += `; it maps only ${found.devices.map((d) => d.PathOnHost).join(', ')}, which are not GPUs`;
  const visible = (info.Config.Env ?? []).find((e) => e.startsWith('NVIDIA_VISIBLE_DEVICES='));
  if (info.HostConfig.Runtime === 'nvidia' && visible) {
    why += `; it gets GPUs from the nvidia runtime and ${visible}, which this fault does not copy: give the node its GPUs with --gpus (DeviceRequests) instead`;
  }
  return why;
}

export const gpuMemoryPressure: FaultInjector<Params> = {
  kind: KIND,
  description: "a sidecar container with the node's GPU devices runs a user-supplied image and command that fills GPU memory for duration",
  needsContainer: true,
  instant: false,
  holdMs: (p) => p.duration,
  params: Params,

  async describe(target, params, ctx) {
    const c = target.containerName ?? target.containerId;
    const name = sidecarName(ctx.faultId ?? '<fault id>');
    const envNames = [SHARE_ENV, DURATION_ENV, ...Object.keys(params.env ?? {})];
    return [
      `inspect container ${c} for its GPU devices (HostConfig.DeviceRequests with capability gpu, HostConfig.Devices under /dev/nvidia*); refuse if it has none`,
      `check that image ${params.image} is present on the Docker host (no registry pull is attempted)`,
      `create container ${name} from image ${params.image} with command ${JSON.stringify(params.command)} (argv, no shell), the same GPU devices as ${c}, no network, env ${SHARE_ENV}=${params.share} ${DURATION_ENV}=${params.duration / 1000}${envNames.length > 2 ? ` and ${envNames.slice(2).join(', ')}` : ''}, labelled gauntlet.fault; start it (the command should take that share of each GPU's memory and exit after ${formatDuration(params.duration)})`,
      `after ${formatDuration(params.duration)}: remove container ${name} (force), recording how its command ended (revert)`,
    ];
  },

  async prepare(target: FaultTarget, params, ctx): Promise<UndoRecord> {
    const docker = requireDocker(ctx);
    if (!ctx.faultId) throw new Error(`${KIND} needs the fault id (ctx.faultId) to name its sidecar`);
    const ref = target.containerId ?? target.containerName;
    if (!ref) refuse(target.node, 'the target has no container: a GPU sidecar needs a Docker target');
    const info = await docker.getContainer(ref).inspect();
    const name = info.Name.replace(/^\//, '');
    const found = gpuDevices(info.HostConfig as { DeviceRequests?: GpuRequest[] | null; Devices?: Docker.DeviceMapping[] | null });
    if (!hasGpu(found)) refuse(target.node, noGpuReason(name, info, found));
    try {
      await docker.getImage(params.image).inspect();
    } catch (err) {
      if (statusCode(err) === 404) {
        refuse(target.node, `image ${params.image} is not present on the Docker host; no registry pull is attempted: build or load the image there first (docker build / docker load)`);
      }
      throw err;
    }
    return {
      sidecar: sidecarName(ctx.faultId),
      faultId: ctx.faultId,
      targetId: info.Id,
      targetName: name,
      // What prepare saw is what inject gives the sidecar: nothing is looked up twice.
      deviceRequests: found.requests,
      devices: found.devices,
    };
  },

  async inject(target, params, undo, ctx) {
    const docker = requireDocker(ctx);
    const name = undo.sidecar as string;
    const found: GpuDevices = { requests: undo.deviceRequests as GpuRequest[], devices: undo.devices as Docker.DeviceMapping[] };
    const env = [`${SHARE_ENV}=${params.share}`, `${DURATION_ENV}=${params.duration / 1000}`, ...Object.entries(params.env ?? {}).map(([k, v]) => `${k}=${v}`)];
    const sidecar = await docker.createContainer({
      name,
      Image: params.image,
      Cmd: params.command,
      Env: env,
      Labels: { ...helperLabels(undo.faultId as string, KIND), 'gauntlet.target.container': undo.targetId as string },
      StopTimeout: STOP_TIMEOUT_S,
      HostConfig: {
        DeviceRequests: found.requests,
        Devices: found.devices,
        NetworkMode: 'none',
        AutoRemove: false, // revert reads how the command ended before removing it
      },
    });
    try {
      await sidecar.start();
    } catch (err) {
      // The ledger reverts (removes the created sidecar); the message says why it did not run.
      refuse(target.node, `starting sidecar ${name} (image ${params.image}) failed: ${errorMessage(err)}`);
    }
    const at = ctx.clock.now();
    return { at, detail: { sidecar: name, image: params.image, devices: describeDevices(found) } };
  },

  async revert(undo, ctx) {
    const docker = requireDocker(ctx);
    const name = undo.sidecar as string;
    const sidecar = docker.getContainer(name);
    let info: Docker.ContainerInspectInfo;
    try {
      info = await sidecar.inspect();
    } catch (err) {
      if (statusCode(err) === 404) return { action: `nothing: sidecar ${name} does not exist (never created, or already removed)` };
      throw err;
    }
    const owner = info.Config.Labels?.['gauntlet.fault'];
    if (owner !== undo.faultId) {
      return { action: `nothing: container ${name} is not this fault's sidecar (label gauntlet.fault=${owner ?? 'none'}); left as it is` };
    }
    const s = info.State;
    let lastLogs: string[] = [];
    if (s.Status !== 'created') {
      try {
        lastLogs = await tailLogs(docker, name, LOG_LINES);
      } catch (err) {
        lastLogs = [`(logs unavailable: ${errorMessage(err)})`];
      }
    }
    try {
      await sidecar.remove({ force: true });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
    const how =
      s.Status === 'created'
        ? 'created, never started'
        : s.Running
          ? 'its command was still running'
          : `its command had exited with code ${s.ExitCode}${s.OOMKilled ? ', OOM-killed' : ''}`;
    return {
      action: `removed sidecar ${name} (${how})`,
      result: { sidecar: name, state: s.Status, running: s.Running, exit_code: s.Running ? null : s.ExitCode, oom_killed: s.OOMKilled, started_at: s.StartedAt, finished_at: s.FinishedAt, last_logs: lastLogs },
    };
  },
};
