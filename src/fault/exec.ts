// Running a program (no shell), bounded in time: on this machine here, or on another engine's
// host through its agent (src/fault/host-access.ts).
import { execFile } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with arguments (no shell), bounded in time; never throws for a non-zero exit. */
export function run(file: string, args: readonly string[], timeoutMs = 10_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(file, args as string[], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
      if (!e) return resolve({ code: 0, stdout, stderr });
      if (typeof e.code === 'string') return resolve({ code: 127, stdout, stderr: `${file}: ${e.code === 'ENOENT' ? 'not installed (not on PATH)' : e.message}` });
      resolve({ code: typeof e.code === 'number' ? e.code : 1, stdout, stderr: e.killed ? `${file}: timed out after ${timeoutMs} ms` : stderr || e.message });
    });
  });
}
