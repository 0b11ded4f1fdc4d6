#!/usr/bin/env node
// A stand-in for kubectl and k6-operator, for tests on a machine with no Kubernetes: `apply`
// of Gauntlet's ConfigMap + TestRun starts, per runner, the real k6 (K6_BIN) with the command
// k6-operator's NewRunnerJob builds (--quiet, its execution segment, the TestRun's `arguments`
// split on spaces, the script, --paused, the instance and job tags), its stdout and stderr
// together as the "pod log"; a starter resumes them together once every REST API says paused.
// The ConfigMap's mount at /test is emulated by putting its files in a folder of the fake's and
// writing that folder for /test in the arguments and in config.json. `logs -f job/<job>` follows
// a log until its k6 ended; `get job -o jsonpath={.status.failed}`; `delete testrun|configmap`.
// State lives in FAKE_KUBE_DIR. What a real cluster adds (scheduling, image pulls, the
// initializer job) is not emulated.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const STATE = process.env.FAKE_KUBE_DIR;
if (!STATE) {
  process.stderr.write('fake-kubectl: FAKE_KUBE_DIR is not set\n');
  process.exit(2);
}
const args = process.argv.slice(2);
let namespace = 'default';
const rest = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--namespace' || args[i] === '-n') namespace = args[++i];
  else if (args[i] === '--context') i++;
  else rest.push(args[i]);
}
const ns = join(STATE, namespace);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const jobDir = join(ns, 'jobs');
mkdirSync(jobDir, { recursive: true });
mkdirSync(join(ns, 'configmaps'), { recursive: true });
mkdirSync(join(ns, 'testruns'), { recursive: true });

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function apply() {
  const docs = parseAllDocuments(readFileSync(0, 'utf8')).map((d) => d.toJSON());
  for (const d of docs) {
    if (d.kind === 'ConfigMap') {
      const dir = join(ns, 'configmaps', d.metadata.name);
      mkdirSync(dir, { recursive: true });
      for (const [k, v] of Object.entries(d.data)) writeFileSync(join(dir, k), k === 'config.json' ? v.replaceAll('/test/', `${dir}/`) : v);
      process.stdout.write(`configmap/${d.metadata.name} created\n`);
    } else if (d.kind === 'TestRun') {
      writeFileSync(join(ns, 'testruns', `${d.metadata.name}.json`), JSON.stringify(d));
      // (FAKE_KUBE_STALL: the operator never starts the runners, as with an image that cannot be pulled)
      if (process.env.FAKE_KUBE_STALL === '1') continue;
      const op = spawn(process.execPath, [process.argv[1], '--namespace', namespace, '__operate', d.metadata.name], { detached: true, stdio: 'ignore', env: process.env });
      op.unref();
      process.stdout.write(`testrun.k6.io/${d.metadata.name} created\n`);
    } else {
      process.stderr.write(`error: fake-kubectl does not know kind ${d.kind}\n`);
      process.exit(1);
    }
  }
}

/** k6-operator: runner jobs, then the starter. */
async function operate(name) {
  const tr = JSON.parse(readFileSync(join(ns, 'testruns', `${name}.json`), 'utf8'));
  const n = tr.spec.parallelism;
  const mount = join(ns, 'configmaps', tr.spec.script.configMap.name);
  const seq = Array.from({ length: n + 1 }, (_, i) => (i === 0 ? '0' : i === n ? '1' : `${i}/${n}`));
  const ports = [];
  const pids = [];
  for (let i = 1; i <= n; i++) {
    const port = await freePort();
    ports.push(port);
    const job = `${name}-${i}`;
    const command = ['run', '--quiet'];
    if (n > 1) command.push(`--execution-segment=${seq[i - 1]}:${seq[i]}`, `--execution-segment-sequence=${seq.join(',')}`);
    command.push(...tr.spec.arguments.replaceAll('/test/', `${mount}/`).split(' '));
    command.push(join(mount, tr.spec.script.configMap.file), `--address=127.0.0.1:${port}`, '--paused', '--tag', `instance_id=${i}`, '--tag', `job_name=${job}`);
    // (FAKE_KUBE_BREAK_RUNNER=i: that runner's k6 is given a flag it refuses, and exits non-zero)
    if (process.env.FAKE_KUBE_BREAK_RUNNER === String(i)) command.push('--no-such-flag');
    const logFd = openSync(join(jobDir, `${job}.log`), 'a');
    const k6 = spawn(process.env.K6_BIN ?? 'k6', command, { stdio: ['ignore', logFd, logFd], env: { ...process.env, K6_NO_USAGE_REPORT: 'true' } });
    closeSync(logFd);
    pids.push(k6.pid);
    k6.once('close', (code, sig) => writeFileSync(join(jobDir, `${job}.status`), String(code ?? (sig ? 137 : 1))));
  }
  writeFileSync(join(ns, 'testruns', `${name}.pids`), JSON.stringify([process.pid, ...pids]));
  // the starter: every runner paused (its REST API up), then all resumed together
  // (FAKE_KUBE_NO_STARTER: it never resumes them, as when the starter job cannot run)
  if (process.env.FAKE_KUBE_NO_STARTER === '1') return;
  for (let t = 0; t < 600; t++) {
    const states = await Promise.all(ports.map((p) => fetch(`http://127.0.0.1:${p}/v1/status`).then((r) => r.json()).then((b) => b?.data?.attributes?.paused === true, () => false)));
    if (states.every(Boolean)) break;
    await sleep(100);
  }
  await Promise.all(
    ports.map((p) =>
      fetch(`http://127.0.0.1:${p}/v1/status`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { type: 'status', id: 'default', attributes: { paused: false } } }) }).catch(() => undefined),
    ),
  );
}

async function logs(target, timeoutS) {
  const job = target.replace(/^job\//, '');
  const log = join(jobDir, `${job}.log`);
  const deadline = Date.now() + timeoutS * 1000;
  while (!existsSync(log)) {
    if (Date.now() > deadline) {
      process.stderr.write(`error: timed out waiting for the condition (job ${job})\n`);
      process.exit(1);
    }
    await sleep(50);
  }
  const fd = openSync(log, 'r');
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    const done = existsSync(join(jobDir, `${job}.status`));
    let n;
    while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) process.stdout.write(buf.subarray(0, n));
    if (done) break;
    await sleep(50);
  }
  closeSync(fd);
}

/** `get job <job> -o jsonpath={.status.succeeded},{.status.failed}`: "1," or ",1" once its k6 ended, "," before. */
function getJob(job) {
  const status = join(jobDir, `${job}.status`);
  if (!existsSync(join(jobDir, `${job}.log`))) {
    process.stderr.write(`Error from server (NotFound): jobs.batch "${job}" not found\n`);
    process.exit(1);
  }
  const code = existsSync(status) ? readFileSync(status, 'utf8') : null;
  process.stdout.write(code === null ? ',' : code === '0' ? '1,' : ',1');
}

/** `get testrun <name> -o jsonpath={.status.stage}`. */
function getTestRun(name) {
  if (!existsSync(join(ns, 'testruns', `${name}.json`))) {
    process.stderr.write(`Error from server (NotFound): testruns.k6.io "${name}" not found\n`);
    process.exit(1);
  }
  process.stdout.write(existsSync(join(ns, 'testruns', `${name}.pids`)) ? 'started' : 'initialization');
}

function deleteTestRun(name) {
  const pidsFile = join(ns, 'testruns', `${name}.pids`);
  if (existsSync(pidsFile)) {
    for (const pid of JSON.parse(readFileSync(pidsFile, 'utf8'))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(pidsFile);
  }
  for (const f of readdirSync(jobDir)) if (f.startsWith(`${name}-`) && f.endsWith('.log') && !existsSync(join(jobDir, f.replace(/\.log$/, '.status')))) writeFileSync(join(jobDir, f.replace(/\.log$/, '.status')), '137');
  rmSync(join(ns, 'testruns', `${name}.json`), { force: true });
}

const [verb, a1, a2] = rest;
if (verb === 'apply' && a1 === '-f' && a2 === '-') await apply();
else if (verb === '__operate') await operate(a1);
else if (verb === 'logs' && a1 === '-f') await logs(a2, Number((rest.find((x) => x.startsWith('--pod-running-timeout=')) ?? '=30s').split('=')[1].replace(/s$/, '')));
else if (verb === 'get' && a1 === 'job') getJob(a2);
else if (verb === 'get' && a1 === 'testrun') getTestRun(a2);
else if (verb === 'delete' && a1 === 'testrun') deleteTestRun(a2);
else if (verb === 'delete' && a1 === 'configmap') rmSync(join(ns, 'configmaps', a2), { recursive: true, force: true });
else {
  process.stderr.write(`fake-kubectl: unsupported: ${rest.join(' ')}\n`);
  process.exit(2);
}
