// Bundles the CLI (dependencies stay external, resolved from node_modules) and the simulator
// (no dependencies at all, so the same file runs on the host and inside a FROM-scratch image).
import { build } from 'esbuild';

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
  build({
    ...common,
    entryPoints: ['src/sim/main.ts'],
    outfile: 'dist/sim.cjs',
    format: 'cjs',
  }),
  build({
    ...common,
    entryPoints: ['bench/stream-server.ts', 'bench/client.ts', 'bench/run.ts'],
    outdir: 'dist/bench',
    format: 'esm',
    packages: 'external',
  }),
]);
