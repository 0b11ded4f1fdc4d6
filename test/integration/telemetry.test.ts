// Node telemetry against a real simulator container: Docker's stats (memory against the limit
// the container was given, CPU) and the node's Prometheus /metrics under vLLM's names, checked
// against what the test itself put on the node (streams in flight, the memory limit).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CONTAINER_METRICS, TelemetryCollector, type TelemetrySample } from '../../src/detect/telemetry.js';
import { dockerClient } from '../../src/docker/engine.js';
import { ensureSimImage, removeContainers, startSimContainer } from '../../src/docker/sim-image.js';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_METRICS } from '../../src/plan/schema.js';
import { RealClock } from '../../src/util/clock.js';
import { freePort } from '../../src/util/ports.js';
import { describeDocker } from '../helpers/docker.js';
import { openStream, waitServing } from '../helpers/sim-stream.js';

const NAME = 'gauntlet-it-telemetry';

describeDocker('telemetry from Docker stats and /metrics (real Docker)', () => {
  const docker = dockerClient();
  const clock = new RealClock();
  let base = '';
  let id = '';

  beforeAll(async () => {
    const image = await ensureSimImage(docker, silentLogger);
    await removeContainers(docker, [NAME]);
    const port = await freePort();
    const info = await startSimContainer(docker, image, { name: NAME, targetLabel: 'it-telemetry', gpus: 2, loadMs: 200, hostPort: port, memoryMb: 256, itlMs: 20 });
    id = info.Id;
    base = `http://127.0.0.1:${port}`;
    await waitServing(base, 30_000);
  }, 120_000);

  afterAll(() => removeContainers(docker, [NAME]));

  it('samples container memory (within its limit) and CPU, and the server metrics match the streams in flight', async () => {
    const samples: TelemetrySample[] = [];
    const collector = new TelemetryCollector([{ node: 'n', containerId: id, endpoint: base }], { intervalMs: 500, metricsPath: '/metrics', metrics: DEFAULT_METRICS, timeoutMs: 2000 }, docker, clock, silentLogger, (s) => samples.push(s));
    // three long streams in flight for the whole sampling
    const streams = [0, 1, 2].map(() => openStream(base, 400));
    try {
      await clock.sleep(600);
      collector.start();
      await clock.sleep(3000);
      await collector.stop();
    } finally {
      for (const s of streams) s.abort();
    }
    const of = (metric: string): number[] => samples.filter((s) => s.metric === metric).map((s) => s.value);
    const mem = of(CONTAINER_METRICS.memory);
    const limit = of(CONTAINER_METRICS.memoryLimit);
    const cpu = of(CONTAINER_METRICS.cpu);
    const running = of('vllm:num_requests_running');
    const fb = of('DCGM_FI_DEV_FB_USED');
    process.stderr.write(
      `telemetry: ${samples.length} samples; memory ${(Math.max(...mem) / 1048576).toFixed(1)} MiB of ${(limit[0] ?? 0) / 1048576} MiB; cpu ${cpu.map((c) => c.toFixed(2)).join(',')} cores; running ${running.join(',')}; GPU memory ${fb.join(',')} MiB\n`,
    );
    expect(mem.length).toBeGreaterThanOrEqual(3);
    for (const m of mem) expect(m).toBeGreaterThan(1 << 20);
    for (const m of mem) expect(m).toBeLessThanOrEqual(256 << 20);
    expect(limit[0]).toBe(256 << 20);
    expect(cpu.length).toBeGreaterThanOrEqual(2); // from consecutive samples
    for (const c of cpu) expect(c).toBeGreaterThanOrEqual(0);
    expect(running.length).toBeGreaterThanOrEqual(3);
    expect(running.every((r) => r === 3)).toBe(true);
    expect(of('vllm:num_requests_waiting').every((w) => w === 0)).toBe(true);
    expect(of('vllm:gpu_cache_usage_perc').every((u) => u > 0 && u < 1)).toBe(true);
    expect(fb.every((v) => v > 0)).toBe(true);
  }, 60_000);
});
