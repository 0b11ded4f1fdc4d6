// Where Gauntlet's own files are, whether running from dist/ (bundled) or src/ (tests).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The directory holding Gauntlet's package.json. */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'gauntlet') return (cached = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find Gauntlet's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}
