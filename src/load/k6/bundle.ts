// Bundles a k6 scenario written in TypeScript (or modern JavaScript) into one ES module that
// k6 v0.49+ can run: its runtime does not parse syntax newer than ES2017 inside ES modules,
// so esbuild lowers the syntax; k6's own modules stay imports.
import { build } from 'esbuild';
import { GauntletError } from '../../errors.js';

export async function bundleScenario(entry: string, outfile: string): Promise<string> {
  try {
    await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      format: 'esm',
      target: 'es2017',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      external: ['k6', 'k6/*'],
      logLevel: 'silent',
      legalComments: 'none',
    });
    return outfile;
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors;
    const detail = errors?.length ? errors.map((e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`).join('; ') : (err as Error).message;
    throw new GauntletError('GAUNTLET_LOAD_K6_BUNDLE', [entry, detail]);
  }
}
