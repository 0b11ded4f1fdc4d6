// A simulator as a plain process on a free loopback port (no Docker), for engine tests.
import { spawn } from 'node:child_process';
import { request } from 'undici';
import { simBundlePath } from '../../src/docker/sim-image.js';
import { freePort } from '../../src/util/ports.js';

export interface SimProcess {
  endpoint: string;
  kill(): void;
}

/**
 * Starts `dist/sim.cjs` with the given options and waits (at most 10 s) until /health answers
 * `status` (200 once loaded; 503 for a node kept loading).
 */
export async function startSimProcess(args: string[], status = 200): Promise<SimProcess> {
  const port = await freePort();
  const proc = spawn(process.execPath, [simBundlePath(), '--port', String(port), ...args], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  const sim = { endpoint, kill: () => void proc.kill('SIGKILL') };
  for (let i = 0; i < 200; i++) {
    if (await request(`${endpoint}/health`).then((r) => (r.body.dump(), r.statusCode === status), () => false)) return sim;
    await new Promise((r) => setTimeout(r, 50));
  }
  sim.kill();
  throw new Error(`the simulator (${args.join(' ')}) did not answer /health ${status} within 10 s`);
}
