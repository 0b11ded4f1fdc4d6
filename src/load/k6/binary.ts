// Finds the k6 binary (K6_BIN, else PATH) and what it can do: its version, and whether it has
// the xk6-sse extension (checked by having `k6 inspect` load a script that imports k6/x/sse —
// the one test that does not depend on how a build prints its extension list).
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { GauntletError } from '../../errors.js';

const run = promisify(execFile);

export interface K6Binary {
  path: string;
  version: string;
  sse: boolean;
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The k6 binary to use, or null when there is none. A K6_BIN that is not executable is an error. */
export function locateK6(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.K6_BIN) {
    if (!executable(env.K6_BIN)) throw new GauntletError('GAUNTLET_LOAD_K6_MISSING', [`K6_BIN=${env.K6_BIN} is not an executable file`]);
    return env.K6_BIN;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'k6'))) return join(dir, 'k6');
  }
  return null;
}

export async function probeK6(path: string): Promise<K6Binary> {
  let version: string;
  try {
    const { stdout } = await run(path, ['version'], { timeout: 15_000 });
    version = /k6 (v\d+\.\d+\.\d+\S*)/.exec(stdout)?.[1] ?? stdout.trim().split('\n')[0] ?? 'unknown';
  } catch (err) {
    throw new GauntletError('GAUNTLET_LOAD_K6_MISSING', [`${path} version failed: ${(err as Error).message}`]);
  }
  const dir = mkdtempSync(join(tmpdir(), 'gauntlet-k6-probe-'));
  try {
    const script = join(dir, 'probe.js');
    writeFileSync(script, "import sse from 'k6/x/sse';\nexport default function () { void sse; }\n");
    const sse = await run(path, ['inspect', script], { timeout: 15_000 }).then(
      () => true,
      () => false,
    );
    return { path, version, sse };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
