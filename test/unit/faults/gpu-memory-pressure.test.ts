// gpu-memory-pressure without a GPU: the exact Docker API requests, checked against a fake
// dockerode that records every call — the sidecar's create body for targets given GPUs by
// DeviceRequests and by /dev/nvidia* devices, the refusals, revert, and the dry run.
import { selfOwner } from '../../../src/util/proc.js';
import { describe, expect, it } from 'vitest';
import { DURATION_ENV, SHARE_ENV, gpuMemoryPressure, sidecarName } from '../../../faults/gpu-memory-pressure.js';
import type { Docker } from '../../../src/docker/engine.js';
import { isGauntletError } from '../../../src/errors.js';
import type { FaultContext, FaultTarget, UndoRecord } from '../../../src/fault/types.js';
import { silentLogger } from '../../../src/log.js';
import { VirtualClock } from '../../../src/util/clock.js';

type Call = [string, ...unknown[]];

function httpError(statusCode: number, message: string): Error {
  return Object.assign(new Error(`(HTTP code ${statusCode}) ${message}`), { statusCode });
}

interface FakeOptions {
  /** Inspect answers by container id or name; missing ones are 404. */
  containers?: Record<string, unknown>;
  /** Images present locally. */
  images?: string[];
  /** The error start() throws, if any. */
  startError?: Error;
  /** The error remove() throws, if any. */
  removeError?: Error;
  logs?: string;
}

/** A dockerode-shaped fake: every call is recorded, in order, with its arguments. */
function fakeDocker(o: FakeOptions = {}) {
  const calls: Call[] = [];
  const container = (ref: string) => ({
    async inspect() {
      calls.push(['container.inspect', ref]);
      const info = o.containers?.[ref];
      if (!info) throw httpError(404, `no such container: ${ref}`);
      return info;
    },
    async start() {
      calls.push(['container.start', ref]);
      if (o.startError) throw o.startError;
    },
    async remove(opts: unknown) {
      calls.push(['container.remove', ref, opts]);
      if (o.removeError) throw o.removeError;
    },
    async logs(opts: unknown) {
      calls.push(['container.logs', ref, opts]);
      return Buffer.from(o.logs ?? '');
    },
  });
  const docker = {
    getContainer(ref: string) {
      calls.push(['getContainer', ref]);
      return container(ref);
    },
    getImage(name: string) {
      calls.push(['getImage', name]);
      return {
        async inspect() {
          calls.push(['image.inspect', name]);
          if (!(o.images ?? []).includes(name)) throw httpError(404, `no such image: ${name}`);
          return { Id: `sha256:${name}` };
        },
      };
    },
    async createContainer(body: { name: string }) {
      calls.push(['createContainer', body]);
      return container(body.name);
    },
  };
  return { docker: docker as unknown as Docker, calls };
}

const TARGET: FaultTarget = { node: 'node-a', containerId: 'abc123', containerName: 'vllm-a' };
const FAULT_ID = 'f-0001';
const SIDECAR = 'gauntlet-fault-f-0001';
const IMAGE = 'gpu-filler:1';

function targetInfo(host: Record<string, unknown>, config: Record<string, unknown> = {}) {
  return {
    Id: 'abc123full',
    Name: '/vllm-a',
    State: { Status: 'running', Running: true },
    Config: { Env: ['PATH=/usr/bin'], Labels: {}, ...config },
    HostConfig: { NetworkMode: 'bridge', Runtime: 'runc', DeviceRequests: null, Devices: [], ...host },
  };
}

/** As Docker reports `--gpus '"device=0,1"'`. */
const REQUEST_IDS = { Driver: 'nvidia', Count: 0, DeviceIDs: ['0', '1'], Capabilities: [['gpu']], Options: null };
/** As Docker reports `--gpus all`. */
const REQUEST_ALL = { Driver: '', Count: -1, DeviceIDs: null, Capabilities: [['gpu']], Options: {} };
const NVIDIA_DEVICES = [
  { PathOnHost: '/dev/nvidia0', PathInContainer: '/dev/nvidia0', CgroupPermissions: 'rwm' },
  { PathOnHost: '/dev/nvidiactl', PathInContainer: '/dev/nvidiactl', CgroupPermissions: 'rwm' },
  { PathOnHost: '/dev/nvidia-uvm', PathInContainer: '/dev/nvidia-uvm', CgroupPermissions: 'rwm' },
];

const ctxOf = (docker: Docker | null): FaultContext => ({ docker, log: silentLogger, clock: new VirtualClock(), faultId: FAULT_ID });
const params = (p: Record<string, unknown> = {}) => gpuMemoryPressure.params.parse({ image: IMAGE, command: ['/fill', '--hold'], duration: '30s', ...p });

/** prepare then inject, as the ledger runs them; returns the create body. */
async function injectInto(info: unknown, p = params()) {
  const { docker, calls } = fakeDocker({ containers: { abc123: info }, images: [IMAGE] });
  const ctx = ctxOf(docker);
  const undo = await gpuMemoryPressure.prepare(TARGET, p, ctx);
  const landed = await gpuMemoryPressure.inject(TARGET, p, undo, ctx);
  const create = calls.find((c) => c[0] === 'createContainer');
  return { undo, landed, calls, body: create?.[1] };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(isGauntletError(err, 'GAUNTLET_FAULT_INJECT')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('was not refused');
}

describe('gpu-memory-pressure params', () => {
  it('parses durations as plans give them, defaults share to 0.9; a held fault for duration', () => {
    expect(params()).toEqual({ image: IMAGE, command: ['/fill', '--hold'], duration: 30_000, share: 0.9 });
    expect(params({ duration: 90, share: 0.5, env: { CUDA_VISIBLE_DEVICES: '0' } })).toMatchObject({ duration: 90_000, share: 0.5, env: { CUDA_VISIBLE_DEVICES: '0' } });
    expect(gpuMemoryPressure.instant).toBe(false);
    expect(gpuMemoryPressure.needsContainer).toBe(true);
    expect(gpuMemoryPressure.holdMs?.(params({ duration: '2m' }))).toBe(120_000);
  });

  it('refuses a shell string, a missing image, a bad share, reserved env names and unknown keys', () => {
    const bad = (p: Record<string, unknown>): string => {
      const r = gpuMemoryPressure.params.safeParse({ image: IMAGE, command: ['/fill'], duration: '30s', ...p });
      return r.success ? 'accepted' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    };
    expect(bad({ command: 'python3 fill.py' })).toBe('command: expected command as a list of strings (the argv, e.g. ["python3", "/fill.py"]); a shell string is not accepted');
    expect(bad({ command: [] })).toBe('command: expected command to name at least the program to run');
    expect(bad({ image: '' })).toMatch(/^image: expected image as a local image reference/);
    expect(bad({ image: undefined })).toMatch(/^image: /);
    expect(bad({ duration: 'soon' })).toBe('duration: expected duration as a duration like "500ms", "30s" or "2m"');
    expect(bad({ share: 1.5 })).toBe('share: expected share at most 1 (a share: 0.3 = 30 %)');
    expect(bad({ share: 0 })).toBe('share: expected share above 0');
    expect(bad({ env: { [SHARE_ENV]: '0.5' } })).toBe(`env.${SHARE_ENV}: ${SHARE_ENV} is set by Gauntlet (from share); set that param instead`);
    expect(bad({ env: { 'A=B': 'x' } })).toMatch(/^env\.A=B: expected an environment variable name/);
    expect(bad({ env: { N: 3 } })).toMatch(/^env\.N: /);
    expect(bad({ shell: true })).toMatch(/shell/);
  });
});

describe('gpu-memory-pressure against a fake Docker', () => {
  it('gives the sidecar the DeviceRequests of a target started with --gpus, exactly', async () => {
    const { undo, landed, body, calls } = await injectInto(targetInfo({ DeviceRequests: [REQUEST_IDS, { Driver: 'other', Count: 1, Capabilities: [['fpga']] }] }), params({ env: { FILL_MODE: 'cuda' } }));
    expect(undo).toEqual({ sidecar: SIDECAR, faultId: FAULT_ID, targetId: 'abc123full', targetName: 'vllm-a', deviceRequests: [REQUEST_IDS], devices: [] });
    expect(body).toEqual({
      name: SIDECAR,
      Image: IMAGE,
      Cmd: ['/fill', '--hold'],
      Env: [`${SHARE_ENV}=0.9`, `${DURATION_ENV}=30`, 'FILL_MODE=cuda'],
      Labels: { gauntlet: '1', 'gauntlet.component': 'fault-helper', 'gauntlet.fault': FAULT_ID, 'gauntlet.fault.kind': 'gpu-memory-pressure', 'gauntlet.owner': selfOwner(), 'gauntlet.target.container': 'abc123full' },
      StopTimeout: 2,
      HostConfig: { DeviceRequests: [REQUEST_IDS], Devices: [], NetworkMode: 'none', AutoRemove: false },
    });
    expect(landed.detail).toEqual({ sidecar: SIDECAR, image: IMAGE, devices: ['driver nvidia: GPUs 0,1'] });
    // Read-only until the create; the sidecar is started by name; nothing else is touched.
    expect(calls.map((c) => c[0])).toEqual(['getContainer', 'container.inspect', 'getImage', 'image.inspect', 'createContainer', 'container.start']);
    expect(calls.at(-1)).toEqual(['container.start', SIDECAR]);
  });

  it('gives the sidecar the /dev/nvidia* device mappings of a target started with --device, and --gpus all', async () => {
    const other = { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' };
    const { body, landed } = await injectInto(targetInfo({ DeviceRequests: [REQUEST_ALL], Devices: [other, ...NVIDIA_DEVICES] }), params({ share: 0.5, duration: '1500ms' }));
    expect(body).toMatchObject({
      Env: [`${SHARE_ENV}=0.5`, `${DURATION_ENV}=1.5`],
      HostConfig: { DeviceRequests: [REQUEST_ALL], Devices: NVIDIA_DEVICES, NetworkMode: 'none', AutoRemove: false },
    });
    expect(landed.detail.devices).toEqual(['driver (default): all GPUs', '/dev/nvidia0', '/dev/nvidiactl', '/dev/nvidia-uvm']);
  });

  it('takes /dev/nvidia* devices alone (no DeviceRequests) as GPUs', async () => {
    const { body } = await injectInto(targetInfo({ DeviceRequests: null, Devices: NVIDIA_DEVICES }));
    expect(body).toMatchObject({ HostConfig: { DeviceRequests: [], Devices: NVIDIA_DEVICES } });
  });

  it('refuses a target with no GPU devices, before looking at the image or creating anything', async () => {
    const { docker, calls } = fakeDocker({ containers: { abc123: targetInfo({ DeviceRequests: [{ Driver: 'nvidia', Count: 0, DeviceIDs: [], Capabilities: [['gpu']] }] }) }, images: [IMAGE] });
    const msg = await refusal(gpuMemoryPressure.prepare(TARGET, params(), ctxOf(docker)));
    expect(msg).toBe('injecting gpu-memory-pressure into node-a failed: container vllm-a has no GPU devices (no DeviceRequests with capability gpu, no /dev/nvidia* devices): nothing to put pressure on');
    expect(calls.map((c) => c[0])).toEqual(['getContainer', 'container.inspect']);
  });

  it('says so when a target maps only NVIDIA control devices, or gets GPUs from the nvidia runtime', async () => {
    const ctl = NVIDIA_DEVICES.slice(1);
    let { docker } = fakeDocker({ containers: { abc123: targetInfo({ Devices: ctl }) } });
    expect(await refusal(gpuMemoryPressure.prepare(TARGET, params(), ctxOf(docker)))).toContain('; it maps only /dev/nvidiactl, /dev/nvidia-uvm, which are not GPUs');
    ({ docker } = fakeDocker({ containers: { abc123: targetInfo({ Runtime: 'nvidia' }, { Env: ['NVIDIA_VISIBLE_DEVICES=all'] }) } }));
    expect(await refusal(gpuMemoryPressure.prepare(TARGET, params(), ctxOf(docker)))).toContain('it gets GPUs from the nvidia runtime and NVIDIA_VISIBLE_DEVICES=all, which this fault does not copy');
  });

  it('refuses an image that is not present locally, saying no pull is attempted', async () => {
    const { docker, calls } = fakeDocker({ containers: { abc123: targetInfo({ Devices: NVIDIA_DEVICES }) }, images: [] });
    const msg = await refusal(gpuMemoryPressure.prepare(TARGET, params(), ctxOf(docker)));
    expect(msg).toBe(
      'injecting gpu-memory-pressure into node-a failed: image gpu-filler:1 is not present on the Docker host; no registry pull is attempted: build or load the image there first (docker build / docker load)',
    );
    expect(calls.map((c) => c[0])).toEqual(['getContainer', 'container.inspect', 'getImage', 'image.inspect']);
  });

  it('passes on an engine error other than 404 as it is', async () => {
    const { docker } = fakeDocker({ containers: { abc123: targetInfo({ Devices: NVIDIA_DEVICES }) } });
    (docker as unknown as { getImage: () => unknown }).getImage = () => ({ inspect: () => Promise.reject(httpError(500, 'engine broke')) });
    await expect(gpuMemoryPressure.prepare(TARGET, params(), ctxOf(docker))).rejects.toThrow('(HTTP code 500) engine broke');
  });

  it('reports a sidecar that would not start (no GPU driver on the host) clearly', async () => {
    const startError = httpError(500, 'server error - could not select device driver "nvidia" with capabilities: [[gpu]]');
    const { docker } = fakeDocker({ containers: { abc123: targetInfo({ DeviceRequests: [REQUEST_ALL] }) }, images: [IMAGE], startError });
    const ctx = ctxOf(docker);
    const undo = await gpuMemoryPressure.prepare(TARGET, params(), ctx);
    expect(await refusal(gpuMemoryPressure.inject(TARGET, params(), undo, ctx))).toBe(
      `injecting gpu-memory-pressure into node-a failed: starting sidecar ${SIDECAR} (image ${IMAGE}) failed: (HTTP code 500) server error - could not select device driver "nvidia" with capabilities: [[gpu]]`,
    );
  });
});

describe('gpu-memory-pressure revert', () => {
  const undo: UndoRecord = { sidecar: SIDECAR, faultId: FAULT_ID, targetId: 'abc123full', targetName: 'vllm-a', deviceRequests: [REQUEST_ALL], devices: [] };
  const sidecarInfo = (state: Record<string, unknown>, labels: Record<string, string> = { 'gauntlet.fault': FAULT_ID }) => ({
    Id: 'side1',
    Name: `/${SIDECAR}`,
    Config: { Tty: true, Labels: labels },
    State: { Status: 'running', Running: true, ExitCode: 0, OOMKilled: false, StartedAt: '2025-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z', ...state },
  });

  it('removes the sidecar by name with force, from the undo record alone, and records how it ended', async () => {
    const { docker, calls } = fakeDocker({ containers: { [SIDECAR]: sidecarInfo({ Status: 'exited', Running: false, ExitCode: 2, FinishedAt: '2025-01-01T00:00:30Z' }) }, logs: 'filling 0.9 of 2 GPUs\nCUDA error: out of memory\n' });
    const r = await gpuMemoryPressure.revert(undo, { docker, log: silentLogger, clock: new VirtualClock() });
    expect(r.action).toBe(`removed sidecar ${SIDECAR} (its command had exited with code 2)`);
    expect(r.result).toMatchObject({ sidecar: SIDECAR, state: 'exited', running: false, exit_code: 2, oom_killed: false, last_logs: ['filling 0.9 of 2 GPUs', 'CUDA error: out of memory'] });
    expect(calls.filter((c) => c[0] === 'getContainer').every((c) => c[1] === SIDECAR)).toBe(true);
    expect(calls.at(-1)).toEqual(['container.remove', SIDECAR, { force: true }]);
  });

  it('removes a sidecar still running, or never started', async () => {
    let { docker } = fakeDocker({ containers: { [SIDECAR]: sidecarInfo({}) } });
    expect((await gpuMemoryPressure.revert(undo, ctxOf(docker))).action).toBe(`removed sidecar ${SIDECAR} (its command was still running)`);
    let calls: Call[];
    ({ docker, calls } = fakeDocker({ containers: { [SIDECAR]: sidecarInfo({ Status: 'created', Running: false }) } }));
    expect((await gpuMemoryPressure.revert(undo, ctxOf(docker))).action).toBe(`removed sidecar ${SIDECAR} (created, never started)`);
    expect(calls.some((c) => c[0] === 'container.logs')).toBe(false);
  });

  it('is idempotent: a sidecar already gone (404) is nothing to do', async () => {
    const { docker, calls } = fakeDocker({ containers: {} });
    const r = await gpuMemoryPressure.revert(undo, ctxOf(docker));
    expect(r).toEqual({ action: `nothing: sidecar ${SIDECAR} does not exist (never created, or already removed)` });
    expect(calls.some((c) => c[0] === 'container.remove')).toBe(false);
    // Gone between the inspect and the remove (the sweep, another revert): still done.
    const raced = fakeDocker({ containers: { [SIDECAR]: sidecarInfo({}) }, removeError: httpError(404, 'no such container') });
    expect((await gpuMemoryPressure.revert(undo, ctxOf(raced.docker))).action).toBe(`removed sidecar ${SIDECAR} (its command was still running)`);
  });

  it('passes on an engine error other than 404, so the ledger keeps the fault active', async () => {
    const { docker } = fakeDocker({ containers: { [SIDECAR]: sidecarInfo({}) }, removeError: httpError(500, 'driver busy') });
    await expect(gpuMemoryPressure.revert(undo, ctxOf(docker))).rejects.toThrow('driver busy');
  });

  it("never removes a container of that name that is not this fault's sidecar", async () => {
    const { docker, calls } = fakeDocker({ containers: { [SIDECAR]: sidecarInfo({}, { 'gauntlet.fault': 'someone-else' }) } });
    expect((await gpuMemoryPressure.revert(undo, ctxOf(docker))).action).toBe(`nothing: container ${SIDECAR} is not this fault's sidecar (label gauntlet.fault=someone-else); left as it is`);
    expect(calls.some((c) => c[0] === 'container.remove')).toBe(false);
  });
});

describe('gpu-memory-pressure dry run', () => {
  it('describes image, command, devices and revert without touching Docker', async () => {
    const { docker, calls } = fakeDocker({ containers: { abc123: targetInfo({ DeviceRequests: [REQUEST_ALL] }) }, images: [IMAGE] });
    const lines = await gpuMemoryPressure.describe(TARGET, params({ env: { FILL_MODE: 'cuda' } }), ctxOf(docker));
    expect(calls).toEqual([]);
    expect(lines).toEqual([
      'inspect container vllm-a for its GPU devices (HostConfig.DeviceRequests with capability gpu, HostConfig.Devices under /dev/nvidia*); refuse if it has none',
      'check that image gpu-filler:1 is present on the Docker host (no registry pull is attempted)',
      `create container ${SIDECAR} from image gpu-filler:1 with command ["/fill","--hold"] (argv, no shell), the same GPU devices as vllm-a, no network, env ${SHARE_ENV}=0.9 ${DURATION_ENV}=30 and FILL_MODE, labelled gauntlet.fault; start it (the command should take that share of each GPU's memory and exit after 30.0s)`,
      `after 30.0s: remove container ${SIDECAR} (force), recording how its command ended (revert)`,
    ]);
    expect(sidecarName('x')).toBe('gauntlet-fault-x');
  });

  it('names the sidecar by placeholder when there is no fault id yet', async () => {
    const lines = await gpuMemoryPressure.describe(TARGET, params(), { docker: null, log: silentLogger, clock: new VirtualClock() });
    expect(lines[2]).toContain('create container gauntlet-fault-<fault id> from image');
  });
});
