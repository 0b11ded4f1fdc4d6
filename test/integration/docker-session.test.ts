// The Docker engine must not share the session of whoever started it: a dockerd that
// scripts/ensure-docker.sh started in the caller's process group died with that shell or job
// (seen: the engine vanished in the middle of a later run). In CI, .ci/run starts it with the
// script and then runs this suite from the same shell: a dockerd in that session fails here.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { describeDocker } from '../helpers/docker.js';

/** Process group and session of a process, from /proc/<pid>/stat (fields 5 and 6). */
function groupAndSession(pid: number | 'self'): { pgrp: number; session: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pgrp: Number(f[2]), session: Number(f[3]) };
}

describeDocker('the Docker engine outlives the shell that started it', () => {
  it('dockerd runs in a session and process group of its own, not the test run\'s', () => {
    let pids: number[] = [];
    try {
      pids = execFileSync('pgrep', ['-x', 'dockerd'], { encoding: 'utf8' }).trim().split('\n').map(Number);
    } catch {
      // no local dockerd (a remote engine through DOCKER_HOST): nothing of ours to check
      return;
    }
    const self = groupAndSession('self');
    for (const pid of pids) {
      const d = groupAndSession(pid);
      expect(d.session, `dockerd ${pid} is in this test run's session ${self.session}: started without setsid, it dies with the shell`).not.toBe(self.session);
      expect(d.pgrp).not.toBe(self.pgrp);
    }
  });
});
