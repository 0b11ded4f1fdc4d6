// `gauntlet demo`: two simulated 4-GPU nodes in Docker, the plan scenarios/demo.yaml against
// them, a report, and the containers removed again — on success, failure or Ctrl-C.
import { join } from 'node:path';
import { requireDocker, inspectContainer, type Docker } from './docker/engine.js';
import { ensureHelperImage, ensureSimImage, removeContainers, startSimContainer } from './docker/sim-image.js';
import { GauntletError } from './errors.js';
import type { Logger } from './log.js';
import { loadPlanFile } from './plan/load.js';
import type { Plan } from './plan/schema.js';
import { runPlan, type RunContext, type RunResult } from './run/runner.js';
import { packageRoot } from './util/paths.js';
import { freePort } from './util/ports.js';

export const DEMO_NODES = [
  { name: 'gauntlet-demo-node-a', label: 'node-a' },
  { name: 'gauntlet-demo-node-b', label: 'node-b' },
];

export function demoPlanPath(): string {
  return join(packageRoot(), 'scenarios', 'demo.yaml');
}

/** Removes demo containers left by an earlier demo; refuses to touch a same-named stranger. */
async function clearOldDemo(docker: Docker): Promise<void> {
  for (const n of DEMO_NODES) {
    const info = await inspectContainer(docker, n.name);
    if (!info) continue;
    if (info.Config.Labels?.['gauntlet.demo'] !== '1') {
      throw new GauntletError('GAUNTLET_TARGET_AMBIGUOUS', [n.label, `a container named ${n.name} exists and was not made by gauntlet demo; remove or rename it`]);
    }
    await removeContainers(docker, [n.name]);
  }
}

export async function runDemo(
  docker: Docker,
  ctx: Omit<RunContext, 'docker'>,
  options: { plan?: Plan; keep?: boolean; onStep?: (s: string) => void } = {},
): Promise<RunResult> {
  const step = options.onStep ?? (() => undefined);
  const log: Logger = ctx.log;
  const plan = options.plan ?? loadPlanFile(demoPlanPath());
  await requireDocker(docker);
  step('building the simulator and fault-helper images if needed (FROM scratch, host node binary)');
  const image = await ensureSimImage(docker, log);
  // The latency fault's proxy image too, now rather than in the middle of the run.
  await ensureHelperImage(docker, log);
  await clearOldDemo(docker);
  try {
    for (const n of DEMO_NODES) {
      const port = await freePort();
      await startSimContainer(docker, image, {
        name: n.name,
        targetLabel: n.label,
        gpus: 4,
        loadMs: 1500,
        ttftMs: 60,
        itlMs: 15,
        hostPort: port,
        // A memory limit, so the oom fault has a cgroup to exhaust (and the pressure a share to fill).
        memoryMb: 768,
        labels: { 'gauntlet.demo': '1' },
      });
      step(`started ${n.name} (4 simulated GPUs, 127.0.0.1:${port}, restart on-failure, memory limit 768 MiB)`);
    }
    step(`running plan ${plan.name}: ${plan.duration / 1000}s, ${plan.faults.length} faults`);
    return await runPlan(plan, demoPlanPath(), { ...ctx, docker });
  } finally {
    if (!options.keep) {
      await removeContainers(
        docker,
        DEMO_NODES.map((n) => n.name),
      );
      step('removed the demo containers');
    }
  }
}
