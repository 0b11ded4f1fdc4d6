// gpu-memory-pressure on the real Docker engine of a machine without GPUs: it refuses a node
// with no GPU devices, and an image that is not there, clearly and through the ledger as a run
// would inject it; for a node that asks for GPUs, the engine accepts the sidecar as Gauntlet
// creates it, and when the host cannot give it the GPUs the sidecar is removed again. Nothing
// labelled gauntlet.fault is left behind.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { gpuMemoryPressure, sidecarName } from '../../faults/gpu-memory-pressure.js';
import { dockerClient, inspectContainer } from '../../src/docker/engine.js';
import { SIM_IMAGE_REPO, ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { GauntletError } from '../../src/errors.js';
import { injectFault } from '../../src/fault/ledger.js';
import type { FaultContext, FaultInjector, FaultTarget } from '../../src/fault/types.js';
import { silentLogger } from '../../src/log.js';
import { openStore, type Store } from '../../src/store/store.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { describeDocker } from '../helpers/docker.js';
import { tempDir } from '../helpers/tmp.js';

const PLAIN = 'gauntlet-it-gpumem';
const GPU = 'gauntlet-it-gpumem-gpu';
const FAULT_IDS = ['it-gpumem-plain', 'it-gpumem-noimage', 'it-gpumem-gpu'];

describeDocker('gpu-memory-pressure on a host without GPUs (real Docker)', () => {
  const docker = dockerClient();
  const dir = tempDir();
  const ctx: FaultContext = { docker, log: silentLogger, clock: new RealClock() };
  const injector = gpuMemoryPressure as FaultInjector<unknown>;
  let image: string;
  let store: Store;

  const cleanup = () => removeContainers(docker, [PLAIN, GPU, ...FAULT_IDS.map(sidecarName)]);
  const helpersOf = async (faultId: string) => docker.listContainers({ all: true, filters: { label: [`gauntlet.fault=${faultId}`] } });
  const inject = (target: FaultTarget, params: Record<string, unknown>, id: string) => injectFault(store, null, injector, target, injector.params.parse(params), ctx, id);

  beforeAll(async () => {
    // The simulator image built by the other integration tests (or now, if it is missing).
    image = (await docker.getImage(`${SIM_IMAGE_REPO}:latest`).inspect().then(() => true, () => false)) ? `${SIM_IMAGE_REPO}:latest` : await ensureSimImage(docker, silentLogger);
    await cleanup();
    store = openStore(join(dir, 'g.db'));
  }, 120_000);

  afterAll(async () => {
    store?.close();
    await cleanup();
  });

  it('refuses a node with no GPU devices clearly, touches it not, and leaves no helper', async () => {
    const info = await startSimContainer(docker, image, { name: PLAIN, targetLabel: 'it-gpumem', gpus: 2, loadMs: 0, hostPort: await freePort(), restart: 'no' });
    const target: FaultTarget = { node: 'node-gpumem', containerId: info.Id, containerName: PLAIN };
    const err = await inject(target, { image, command: ['--help'], duration: '10s' }, 'it-gpumem-plain').then(
      () => new Error('was injected'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GauntletError);
    expect((err as GauntletError).code).toBe('GAUNTLET_FAULT_INJECT');
    expect((err as Error).message).toBe(
      `injecting gpu-memory-pressure into node-gpumem failed: container ${PLAIN} has no GPU devices (no DeviceRequests with capability gpu, no /dev/nvidia* devices): nothing to put pressure on`,
    );
    expect(store.getFault('it-gpumem-plain')).toMatchObject({ state: 'failed', kind: 'gpu-memory-pressure', injected_at: null });
    expect(await helpersOf('it-gpumem-plain')).toEqual([]);
    expect(await inspectContainer(docker, sidecarName('it-gpumem-plain'))).toBeNull();
    const after = await docker.getContainer(PLAIN).inspect();
    expect(after.State).toMatchObject({ Running: true, StartedAt: info.State.StartedAt });
  }, 60_000);

  it('for a node that asks for GPUs: refuses a missing image; the sidecar the engine accepts is removed when the host has no GPU driver', async () => {
    // Created, never started: Docker accepts the GPU request at create and checks it at start.
    const created = await docker.createContainer({
      name: GPU,
      Image: image,
      Labels: { gauntlet: '1', 'gauntlet.component': 'sim', 'gauntlet.target': 'it-gpumem-gpu' },
      HostConfig: { DeviceRequests: [{ Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] }], NetworkMode: 'none' },
    });
    const target: FaultTarget = { node: 'node-gpu', containerId: created.id, containerName: GPU };

    const missing = 'gauntlet-no-such-image:never';
    await expect(inject(target, { image: missing, command: ['/fill'], duration: '10s' }, 'it-gpumem-noimage')).rejects.toThrow(
      `injecting gpu-memory-pressure into node-gpu failed: image ${missing} is not present on the Docker host; no registry pull is attempted: build or load the image there first (docker build / docker load)`,
    );
    expect(await helpersOf('it-gpumem-noimage')).toEqual([]);

    const outcome = await inject(target, { image, command: ['--help'], duration: '2s', share: 0.5 }, 'it-gpumem-gpu').then(
      (f) => f,
      (e: unknown) => e as Error,
    );
    if (outcome instanceof Error) {
      // No GPU driver on this host: the start fails, and the ledger's revert removes the sidecar.
      expect(outcome.message).toMatch(/^injecting gpu-memory-pressure into node-gpu failed: starting sidecar gauntlet-fault-it-gpumem-gpu \(image .+\) failed: .*could not select device driver "nvidia" with capabilities: \[\[gpu\]\]/);
      expect(store.getFault('it-gpumem-gpu')).toMatchObject({ state: 'failed', revert_action: 'removed sidecar gauntlet-fault-it-gpumem-gpu (created, never started)' });
    } else {
      // A host with a GPU driver: the sidecar ran (the simulator's --help); revert removes it.
      expect(await outcome.revert()).toMatch(/^removed sidecar gauntlet-fault-it-gpumem-gpu /);
    }
    expect(await helpersOf('it-gpumem-gpu')).toEqual([]);
    // Reverting again from the ledger's undo record alone finds nothing to do.
    const undo = JSON.parse(store.getFault('it-gpumem-gpu')?.undo ?? '{}') as Record<string, unknown>;
    expect(await gpuMemoryPressure.revert(undo, ctx)).toEqual({ action: 'nothing: sidecar gauntlet-fault-it-gpumem-gpu does not exist (never created, or already removed)' });
  }, 60_000);
});
