// Docker-dependent tests: with CI=true a missing engine is a failure; elsewhere the suite
// says loudly that it skipped them.
import { describe, it } from 'vitest';
import { dockerClient, tailLogs, type Docker } from '../../src/docker/engine.js';

async function probe(): Promise<{ ok: boolean; reason: string }> {
  try {
    const v = await dockerClient().version();
    return { ok: true, reason: `engine ${v.Version}` };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

export const docker = await probe();

export function describeDocker(name: string, fn: () => void): void {
  if (docker.ok) {
    describe(name, fn);
    return;
  }
  if (process.env.CI === 'true' || process.env.CI === '1') {
    describe(name, () => {
      it('needs a Docker engine (CI=true: a missing engine is a failure)', () => {
        throw new Error(`no Docker engine: ${docker.reason}; .ci/run starts one with scripts/ensure-docker.sh`);
      });
    });
    return;
  }
  process.stderr.write(`\n*** SKIPPED "${name}": no Docker engine (${docker.reason}). Start one (bash scripts/ensure-docker.sh) or run with CI=true to make this a failure. ***\n\n`);
  describe.skip(name, fn);
}

/** One ground-truth line the simulator wrote to its log (`TRUTH {json}`). */
export interface TruthLine {
  at: number;
  event: string;
  [k: string]: unknown;
}

/** The simulator container's ground truth: its TRUTH lines among the last `lines` of its log. */
export async function readTruth(d: Docker, container: string, lines = 5000): Promise<TruthLine[]> {
  return (await tailLogs(d, container, lines)).filter((l) => l.startsWith('TRUTH ')).map((l) => JSON.parse(l.slice(6)) as TruthLine);
}
