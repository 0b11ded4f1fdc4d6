// The daemon's log file is rotated by size and keeps at most `keep` old files; stdout gets every line.
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createDaemonLogger } from '../../src/log.js';
import { tempDir } from '../helpers/tmp.js';

describe('createDaemonLogger', () => {
  it('rotates past max_bytes, keeps `keep` old files, and writes every line to stdout too', () => {
    const dir = tempDir();
    const file = join(dir, 'daemon.log');
    let stdoutLines = 0;
    const stdout = new Writable({
      write(chunk: Buffer, _enc, cb) {
        stdoutLines += chunk.toString('utf8').split('\n').filter(Boolean).length;
        cb();
      },
    });
    const log = createDaemonLogger({ level: 'info', file, maxBytes: 2000, keep: 2, stdout });
    for (let i = 0; i < 100; i++) log.info({ i }, `line ${i} ${'x'.repeat(40)}`);
    expect(stdoutLines).toBe(100);
    expect(existsSync(file)).toBe(true);
    expect(existsSync(`${file}.1`)).toBe(true);
    expect(existsSync(`${file}.2`)).toBe(true);
    expect(existsSync(`${file}.3`)).toBe(false);
    for (const f of [file, `${file}.1`, `${file}.2`]) expect(statSync(f).size).toBeLessThanOrEqual(2000);
    // the newest lines in the live file, the ones before in .1, in order, none lost between them
    const live = readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { i: number }).i);
    const one = readFileSync(`${file}.1`, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { i: number }).i);
    expect(live.at(-1)).toBe(99);
    expect(live[0]).toBe((one.at(-1) as number) + 1);
  });

  it('a log file deleted or moved meanwhile: the next rotation reopens it and logging goes on', () => {
    const dir = tempDir();
    const file = join(dir, 'daemon.log');
    const stdout = new Writable({ write: (_c, _e, cb) => cb() });
    const log = createDaemonLogger({ level: 'info', file, maxBytes: 1000, keep: 2, stdout });
    for (let i = 0; i < 5; i++) log.info({ i }, 'before');
    rmSync(file);
    for (let i = 0; i < 40; i++) log.info({ i }, `after ${'y'.repeat(40)}`);
    expect(existsSync(file)).toBe(true);
    const last = readFileSync(file, 'utf8').trim().split('\n').at(-1) as string;
    expect((JSON.parse(last) as { i: number; msg: string }).i).toBe(39);
  });
});
