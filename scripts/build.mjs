// Bundles the CLI (dependencies stay external, resolved from node_modules), the simulator and
// the fault helpers (no dependencies at all, so the same files run on the host and inside a
// FROM-scratch image), and compiles the static memory hog the oom fault copies into a target.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';

const common = { bundle: true, platform: 'node', target: 'node20', sourcemap: 'linked', logLevel: 'warning' };

await Promise.all([
  build({
    ...common,
    entryPoints: ['src/cli/main.ts'],
    outfile: 'dist/gauntlet.js',
    format: 'esm',
    packages: 'external',
    banner: { js: '#!/usr/bin/env node' },
  }),
  // The builtin engine's worker threads (load.parallelism > 1).
  build({
    ...common,
    entryPoints: ['src/load/worker.ts'],
    outfile: 'dist/load-worker.js',
    format: 'esm',
    packages: 'external',
  }),
  build({
    ...common,
    entryPoints: ['src/sim/main.ts'],
    outfile: 'dist/sim.cjs',
    format: 'cjs',
  }),
  existsSync('faults/helpers/proxy.ts') &&
    build({
      ...common,
      entryPoints: ['faults/helpers/proxy.ts'],
      outfile: 'dist/helpers/proxy.cjs',
      format: 'cjs',
    }),
  build({
    ...common,
    entryPoints: ['bench/stream-server.ts', 'bench/client.ts', 'bench/run.ts', 'bench/detection.ts', 'bench/engines.ts', 'bench/engine-client.ts', 'bench/report-build.ts', 'bench/soak.ts'],
    outdir: 'dist/bench',
    format: 'esm',
    packages: 'external',
  }),
]);

// A static binary: it runs inside any target container, whatever libc (or none) its image has.
mkdirSync('dist/helpers', { recursive: true });
try {
  execFileSync('gcc', ['-static', '-O2', '-o', 'dist/helpers/gauntlet-hog', 'faults/helpers/hog.c'], { stdio: ['ignore', 'inherit', 'inherit'] });
} catch (err) {
  process.stderr.write(`build: cannot compile faults/helpers/hog.c with gcc -static (${err.message}); the oom fault will refuse until it is built (apt-get install gcc libc6-dev)\n`);
}
