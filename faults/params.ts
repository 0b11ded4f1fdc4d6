// Shared pieces of the fault plug-ins' parameter schemas. Plans give params as raw YAML
// values: durations are "500ms", "30s", "2m" (or a number of seconds), shares are 0..1.
import { z } from 'zod';
import { parseDuration } from '../src/util/duration.js';

/** A duration param, in ms after parsing. */
export function durationParam(what: string, min = 0, max = 7 * 86_400_000) {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? v * 1000 : parseDuration(v);
    if (ms === undefined || !Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: `expected ${what} as a duration like "500ms", "30s" or "2m"`, input: v });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({ code: 'custom', message: `expected ${what} between ${min}ms and ${max / 1000}s`, input: v });
      return z.NEVER;
    }
    return ms;
  });
}

/** A share of something, 0 < x ≤ 1 (0.3 = 30 %). */
export const share = (what: string) => z.number().gt(0, `expected ${what} above 0`).max(1, `expected ${what} at most 1 (a share: 0.3 = 30 %)`);
