// The CLI's side of a running daemon. A daemon says where it listens in <data_dir>/daemon.json
// (written once it listens, removed when it stops); the CLI finds it beside the database it was
// given, checks that its process is alive and that it answers, and then sends runs and drills
// there instead of starting a second Gauntlet on the same targets.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { GauntletError, errorMessage } from '../errors.js';
import { procStat, statRunning } from '../util/proc.js';
import { TOKEN_FILE } from './token.js';

export const DAEMON_FILE = 'daemon.json';

export interface DaemonInfo {
  pid: number;
  address: string;
  started_at: string;
}

export function writeDaemonInfo(dataDir: string, info: DaemonInfo): void {
  writeFileSync(join(dataDir, DAEMON_FILE), `${JSON.stringify(info)}\n`, { mode: 0o600 });
}

function readDaemonInfo(dataDir: string): DaemonInfo | null {
  try {
    const info = JSON.parse(readFileSync(join(dataDir, DAEMON_FILE), 'utf8')) as DaemonInfo;
    return typeof info.pid === 'number' && typeof info.address === 'string' ? info : null;
  } catch {
    return null;
  }
}

/** Removes daemon.json if it is this process's (not another daemon's that took the folder since). */
export function removeDaemonInfo(dataDir: string, pid: number): void {
  if (readDaemonInfo(dataDir)?.pid === pid) rmSync(join(dataDir, DAEMON_FILE), { force: true });
}

/** The daemon.json in `dataDir` when its process is alive (a stale one, of a dead pid, is null). */
export function liveDaemonInfo(dataDir: string): DaemonInfo | null {
  const info = readDaemonInfo(dataDir);
  return info && statRunning(procStat(info.pid)) ? info : null;
}

/**
 * The daemon keeping `dataDir`, if one runs (a stale daemon.json is ignored). One whose process
 * lives but does not answer is an error, not "none": a busy daemon must not let a second
 * Gauntlet start beside it.
 */
export async function findDaemon(dataDir: string): Promise<DaemonClient | null> {
  const info = liveDaemonInfo(dataDir);
  if (!info) return null;
  let token: string;
  try {
    token = readFileSync(join(dataDir, TOKEN_FILE), 'utf8').trim();
  } catch {
    return null;
  }
  const client = new DaemonClient(info, token);
  await client.call('GET', '/health');
  return client;
}

export class DaemonClient {
  constructor(
    readonly info: DaemonInfo,
    private readonly token: string,
  ) {}

  /** One API call; an error answer becomes a GauntletError with the daemon's own code and message. */
  async call<T = unknown>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let res;
    try {
      res = await request(`${this.info.address}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new GauntletError('GAUNTLET_DAEMON_API', [this.info.address, `no answer: ${errorMessage(err)}`]);
    }
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // text (a report file)
    }
    if (res.statusCode >= 400) {
      const e = (parsed as { error?: { code?: string; message?: string } }).error;
      throw new GauntletError('GAUNTLET_DAEMON_API', [this.info.address, `${res.statusCode} ${e?.code ?? ''}: ${e?.message ?? text}`]);
    }
    return parsed as T;
  }
}
