// The k6 engine: bundles the scenario, runs the k6 binary with its JSON output going into a
// FIFO, and reads that stream line by line while k6 runs — a 72 h run's output never sits in
// memory or on disk. k6's exit code and last stderr lines become a clear error.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { constants, createReadStream, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { GauntletError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { packageRoot } from '../../util/paths.js';
import { freePort } from '../../util/ports.js';
import { request } from 'undici';
import type { EngineCapabilities, LoadEngine, LoadProgress, LoadSink, RequestRecord } from '../types.js';
import type { Workload } from '../workload.js';
import { locateK6, probeK6, type K6Binary } from './binary.js';
import { bundleScenario } from './bundle.js';
import { k6Config, type K6ScenarioConfig } from './config.js';
import { K6OutputParser } from './output.js';
import { remoteClockOffset, removeRemoteDir, remoteDir, spawnRemoteK6, sshHostName, uploadBundle, watchRemoteCpu, type K6Host, type SshHost } from './remote.js';

const run = promisify(execFile);

/** What k6's exit codes mean (k6 errext/exitcodes). */
export const K6_EXIT_CODES: Record<number, string> = {
  97: 'cloud test run failed',
  98: 'cloud progress unavailable',
  99: 'thresholds were crossed',
  100: 'setup() timed out',
  101: 'teardown() timed out',
  102: 'timed out',
  103: 'engine error',
  104: 'invalid configuration',
  105: 'aborted from outside',
  106: 'cannot start its REST API (its address is taken)',
  107: 'the script threw an exception',
  108: 'the script aborted the test',
};

export interface K6EngineOptions {
  /** The user's own scenario (plan load.script), or null for Gauntlet's. */
  script: string | null;
  arrival: Workload['arrival'];
  maxInFlight: number | null;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /**
   * k6 processes splitting the load with execution segments (load.parallelism): 1/N of every
   * scenario's arrivals each, started paused and resumed together once all are ready.
   */
  instances?: number;
  /**
   * Where each instance runs (load.k6_hosts, one entry per instance): this machine, or a host
   * reached over SSH. Given, it sets the number of instances.
   */
  hosts?: K6Host[];
}

export type { K6Host } from './remote.js';

/** Per second of arrival, how late the instance's sends were at most (its own saturation signal). */
export class Lateness {
  private second = -1;
  private worst = 0;
  constructor(private readonly emit: (at: number, ms: number) => void) {}
  note(at: number, lateMs: number): void {
    const s = Math.floor(at / 1000);
    if (s !== this.second) this.flush();
    if (this.second === -1) this.second = s;
    this.worst = Math.max(this.worst, lateMs);
  }
  flush(): void {
    if (this.second >= 0) this.emit((this.second + 1) * 1000, this.worst);
    this.second = -1;
    this.worst = 0;
  }
}

/**
 * The sink every k6 instance of a run reports into, with live progress. Gauntlet's scenario says
 * when each iteration starts (gauntlet_planned, of which dropped_iterations were never started):
 * scheduled counts starts and in flight is started − finished. Other scripts: scheduled counts
 * first attempts as they end. Several instances: the load began with the first of them and ended
 * with the last (lastEnd, said by the caller once all are done).
 */
export function countingSink(progress: LoadProgress, sink: LoadSink): { counting: LoadSink; lastEnd: () => number } {
  let starts = 0;
  let finished = 0;
  let startsKnown = false;
  let began = false;
  let lastEnd = Number.NEGATIVE_INFINITY;
  const counting: LoadSink = {
    ...sink,
    started: (at) => {
      if (began) return;
      began = true;
      sink.started?.(at);
    },
    ended: (at) => {
      lastEnd = Math.max(lastEnd, at);
    },
    record: (r) => {
      progress.done++;
      if (r.final) finished++;
      if (!startsKnown && r.attempt === 1) progress.scheduled++;
      if (r.outcome === 'ok') progress.ok++;
      else if (r.outcome !== 'cancelled') progress.failed++;
      if (startsKnown) progress.inFlight = Math.max(0, starts - finished);
      sink.record(r);
    },
    planned: (node, at, count) => {
      startsKnown = true;
      starts += count;
      progress.scheduled = starts;
      progress.inFlight = Math.max(0, starts - finished);
      sink.planned?.(node, at, count);
    },
    scheduleMiss: (node, at, count) => {
      // A dropped arrival is also reported as planned: it was due, never started.
      starts -= count;
      progress.scheduled = Math.max(0, starts);
      sink.scheduleMiss?.(node, at, count);
    },
  };
  return { counting, lastEnd: () => lastEnd };
}

/** One instance's sink: with several, its own lateness reported under its name (which one fell behind). */
export function instanceSinkOf(name: string, instances: number, counting: LoadSink, sink: LoadSink): { sink: LoadSink; late: Lateness } {
  const late = new Lateness((at, ms) => sink.generator?.(name, at, 'late_ms_max', ms));
  if (instances === 1) return { sink: counting, late };
  return {
    sink: {
      ...counting,
      record: (r: RequestRecord) => {
        if (r.queueDelayMs !== null) late.note(r.sentAt, r.queueDelayMs);
        counting.record(r);
      },
    },
    late,
  };
}

/**
 * The parsers of one run's k6 instances: samples mapped to their nodes by scenario, records
 * numbered once across all of them, malformed lines logged (the first 20 of them all).
 */
export function k6Parsers(w: Workload, targets: K6ScenarioConfig['targets'], log: Logger, o: { own: boolean; sse: boolean }): (name: string, sink: LoadSink, opts?: { prefix?: boolean; clockShiftMs?: number }) => K6OutputParser {
  const scenarioNode = Object.fromEntries(Object.entries(targets).map(([k, v]) => [k, v.node]));
  let seq = 0;
  const nextSeq = (): number => ++seq;
  let problems = 0;
  return (name, sink, opts = {}) =>
    new K6OutputParser(
      { nodes: w.targets.map((t) => t.node), scenarioNode, recordsFrom: o.own ? 'gauntlet_request' : 'http_reqs', ttftFrom: o.own || o.sse ? 'metric' : 'ttfb', nextSeq, ...(opts.clockShiftMs !== undefined ? { clockShiftMs: opts.clockShiftMs } : {}) },
      sink,
      (m) => {
        if (++problems <= 20) log.warn(opts.prefix ? `${name}: ${m}` : m);
        else if (problems === 21) log.warn('more malformed k6 output lines: not logged one by one');
      },
    );
}

/** k6's execution segment sequence for n equal segments: 0, 1/n, 2/n, …, 1. */
export function segmentSequence(n: number): string[] {
  return Array.from({ length: n + 1 }, (_, i) => (i === 0 ? '0' : i === n ? '1' : `${i}/${n}`));
}

/**
 * Waits until a paused k6's REST API answers (its VUs are initialised): true, or false when the
 * process ended or the run was stopped first, or it did not answer within a minute.
 */
async function waitPaused(port: number, exited: Promise<unknown>, signal: AbortSignal): Promise<boolean> {
  let gone = false;
  void exited.then(() => (gone = true));
  for (let i = 0; i < 600 && !gone && !signal.aborted; i++) {
    try {
      const r = await request(`http://127.0.0.1:${port}/v1/status`, { headersTimeout: 1000, bodyTimeout: 1000 });
      const body = (await r.body.json().catch(() => null)) as { data?: { attributes?: { paused?: boolean } } } | null;
      // ready: up, and paused (as asked) before its test starts
      if (r.statusCode === 200 && body?.data?.attributes?.paused === true) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Stops a k6 through its REST API (as Ctrl-C does: the iterations in flight are cut). */
async function stopK6(port: number): Promise<void> {
  const r = await request(`http://127.0.0.1:${port}/v1/status`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: { type: 'status', id: 'default', attributes: { stopped: true } } }),
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  await r.body.dump();
}

/** Resumes a paused k6 through its REST API. */
async function resume(port: number): Promise<void> {
  const r = await request(`http://127.0.0.1:${port}/v1/status`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: { type: 'status', id: 'default', attributes: { paused: false } } }),
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}: ${text.slice(0, 200)}`);
}

/** A k6 process (local, or ssh running one): how it ended, its last stderr lines, its output being read. */
interface LaunchedK6 {
  child: ChildProcess;
  exited: Promise<[number | null, NodeJS.Signals | null, Error | null]>;
  stderrTail: string[];
  opened: () => boolean;
  reading: Promise<Error | null>;
}

/**
 * Watches a started k6: keeps its last 20 stderr lines (but those matching `noise`), and feeds its
 * JSON output to the parser — from the FIFO it writes into, or (fifo null) from its stdout.
 */
function watchK6(child: ChildProcess, parser: K6OutputParser, fifo: string | null, noise: RegExp | null = null): LaunchedK6 {
  const stderrTail: string[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (l) => {
    if (noise?.test(l)) return;
    stderrTail.push(l);
    if (stderrTail.length > 20) stderrTail.shift();
  });
  if (fifo) child.stdout?.resume();
  // 'close' (not 'exit'): stderr is fully read by then. A spawn failure ends it too.
  const exited = new Promise<[number | null, NodeJS.Signals | null, Error | null]>((resolve) => {
    child.once('error', (err) => resolve([null, null, err]));
    child.once('close', (code, sig) => resolve([code, sig, null]));
  });
  let opened = fifo === null;
  const reading = (async (): Promise<Error | null> => {
    let input: NodeJS.ReadableStream = child.stdout as NodeJS.ReadableStream;
    if (fifo) input = createReadStream(fifo, { encoding: 'utf8' }).on('open', () => (opened = true));
    for await (const line of createInterface({ input, crlfDelay: Infinity })) parser.line(line);
    parser.end();
    return null;
  })().catch((err: Error) => err);
  return { child, exited, stderrTail, opened: () => opened, reading };
}

export class K6Engine implements LoadEngine {
  readonly name = 'k6';
  readonly progress: LoadProgress = { scheduled: 0, inFlight: 0, done: 0, ok: 0, failed: 0 };
  readonly capabilities: EngineCapabilities;
  private readonly entry: string;

  private constructor(
    readonly binary: K6Binary,
    private readonly opts: K6EngineOptions,
  ) {
    const own = opts.script === null;
    this.entry = opts.script ?? join(packageRoot(), 'scenarios', 'load', binary.sse ? 'chat-sse.ts' : 'chat.ts');
    const notes = [`k6 ${binary.version} at ${binary.path}${binary.sse ? ', with xk6-sse' : ', without the SSE extension'}.`];
    if (!binary.sse) notes.push('Without xk6-sse, k6 buffers each response: TTFT is time to first byte (an approximation) and inter-token gaps are not measured.');
    else {
      notes.push('TTFT, inter-token gaps and TPOT are timed in the k6 script with Date.now(): whole milliseconds.');
      notes.push('xk6-sse has no request timeout: a hung stream holds its VU until k6 stops the scenario and is never recorded as a timeout; hangs show as schedule misses and in the probes.');
    }
    if (opts.arrival !== 'constant') notes.push(`k6's arrival-rate executors space arrivals evenly: the plan's ${opts.arrival} arrivals run as evenly spaced ones on k6.`);
    if (own) notes.push("k6 starts each arrival or drops it (a schedule miss); Gauntlet's scenario measures how late it started each one against k6's own arrival schedule (queue delay), so latency from the scheduled send is measured too.");
    else notes.push('k6 starts each arrival or drops it (a schedule miss); with your own scenario how late it started them is not measured (no queue delay, no latency from the scheduled send).');
    notes.push("k6 needs a moment (bundle, VU start-up) before its first arrival: fault times, windows and exposure count from that first arrival (its gauntlet_planned point) to the last request's end, not from when Gauntlet launched k6. Raw request rows from k6 number each attempt on its own (retries are not grouped).");
    if (opts.maxInFlight) notes.push(`max_in_flight maps to k6's maxVUs: arrivals over it are dropped (schedule misses), not queued.`);
    if (!own) notes.push(`Your own scenario ${opts.script}: records come from its http_req_* samples, so a stream cut mid-body that the SSE extension reports as 200 counts as ok; emit gauntlet_request (see scenarios/load/lib.ts) to report outcomes yourself.`);
    this.capabilities = { ttft: binary.sse ? 'first_content_chunk' : 'time_to_first_byte', itl: binary.sse, queueDelay: own, notes };
  }

  /** The k6 processes while they run (one per instance), for their CPU. */
  private readonly running = new Map<string, number>();

  processId(): number | null {
    return this.instances === 1 ? (this.running.get('k6') ?? null) : null;
  }

  /** Every k6 process running now, by generator name (k6, or k6-1 … k6-N with execution segments). */
  processes(): { name: string; pid: number }[] {
    return [...this.running].map(([name, pid]) => ({ name, pid }));
  }

  /** The generators, as the report names them, and where they run (null: this machine). */
  generators(): { name: string; host: string | null }[] {
    const hosts = this.hosts();
    if (hosts.length === 1 && hosts[0]?.kind === 'local') return [{ name: 'k6', host: null }];
    return hosts.map((h, i) => ({ name: `k6-${i + 1}`, host: h.kind === 'ssh' ? sshHostName(h) : null }));
  }

  /** Where each instance runs. */
  private hosts(): K6Host[] {
    return this.opts.hosts ?? Array.from({ length: this.opts.instances ?? 1 }, () => ({ kind: 'local' as const }));
  }

  /** How many k6 processes split the load (execution segments). */
  get instances(): number {
    return this.hosts().length;
  }

  static async create(opts: K6EngineOptions): Promise<K6Engine> {
    const path = locateK6(opts.env);
    if (!path) throw new GauntletError('GAUNTLET_LOAD_K6_MISSING', ['no k6 binary was found: set K6_BIN or put k6 on PATH (or use load.engine: builtin)']);
    if (opts.instances !== undefined && !(Number.isInteger(opts.instances) && opts.instances >= 1 && opts.instances <= 256)) throw new RangeError(`k6 instances must be a whole number from 1 to 256, got ${opts.instances}`);
    if (opts.hosts !== undefined && !(opts.hosts.length >= 1 && opts.hosts.length <= 256)) throw new RangeError(`k6 hosts: 1 to 256 instances, got ${opts.hosts.length}`);
    return new K6Engine(await probeK6(path), opts);
  }

  /** Starts one k6 process writing its JSON output into `fifo`, and reads that as it comes. */
  private launch(
    name: string,
    fifo: string | null,
    parser: K6OutputParser,
    extra: string[],
    configPath: string,
    script: string,
  ): LaunchedK6 {
    const child = spawn(this.binary.path, ['run', '--no-usage-report', '--no-summary', '--quiet', ...extra, '--out', `json=${fifo ?? '-'}`, '-e', `GAUNTLET_CONFIG=${configPath}`, script], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.opts.env, K6_NO_USAGE_REPORT: 'true' },
    });
    if (child.pid !== undefined) this.running.set(name, child.pid);
    const launched = watchK6(child, parser, fifo);
    void launched.exited.then(() => this.running.delete(name));
    return launched;
  }

  /** Starts one k6 on another host over SSH; its JSON output comes back on the session's stdout. */
  private launchRemote(host: SshHost, dir: string, parser: K6OutputParser, extra: string[], ports: { local: number; remote: number }): LaunchedK6 {
    const child = spawnRemoteK6(host, dir, ['--no-usage-report', '--no-summary', '--quiet', ...extra, '--out', 'json=-', '-e', `GAUNTLET_CONFIG=${dir}/config.json`, `${dir}/scenario.js`], ports);
    // (ssh's own noise while the REST API is polled before k6 listens stays out of the error's last lines)
    return watchK6(child, parser, null, /^channel \d+: open failed/);
  }

  async run(w: Workload, signal: AbortSignal, sink: LoadSink): Promise<void> {
    const log = this.opts.log;
    const dir = mkdtempSync(join(tmpdir(), 'gauntlet-k6-'));
    try {
      const config = k6Config(w, (i) => join(dir, `prompts-${i}.json`));
      w.mix.forEach((m, i) => {
        if (m.prompts) writeFileSync(join(dir, `prompts-${i}.json`), JSON.stringify(m.prompts));
      });
      const configPath = join(dir, 'config.json');
      writeFileSync(configPath, JSON.stringify(config));
      const script = await bundleScenario(this.entry, join(dir, 'scenario.js'));
      const own = this.opts.script === null;
      const { counting, lastEnd } = countingSink(this.progress, sink);
      const n = this.instances;
      const parserFor = k6Parsers(w, config.targets, log, { own, sse: this.binary.sse });
      const hosts = this.hosts();
      const names = this.generators().map((g) => g.name);
      const segments = segmentSequence(n);
      // A REST API address of its own for every instance, on 127.0.0.1: several are resumed
      // together through it, a remote one is stopped through it (a signal to ssh does not reach
      // it), and with k6's default (localhost:6565) a second k6 on this host — another run, the
      // daemon's drill beside a soak — runs without its REST API (k6 0.49 only warns) and could
      // not be paused, resumed or stopped through it; a paused one would wait for ever.
      const ports = await Promise.all(hosts.map(() => freePort()));
      // Remote hosts: the bundle, a config naming the files where they will be there, and the prompts.
      const settled = await Promise.allSettled(
        hosts.map(async (h, i) => {
          if (h.kind !== 'ssh') return null;
          const rdir = remoteDir();
          const files = [
            { name: 'scenario.js', content: readFileSync(script) },
            { name: 'config.json', content: Buffer.from(JSON.stringify(k6Config(w, (k) => `${rdir}/prompts-${k}.json`))) },
            ...w.mix.flatMap((m, k) => (m.prompts ? [{ name: `prompts-${k}.json`, content: Buffer.from(JSON.stringify(m.prompts)) }] : [])),
          ];
          let clock: { offsetMs: number; errorMs: number } | null = null;
          try {
            [clock] = await Promise.all([remoteClockOffset(h), uploadBundle(h, rdir, files)]);
          } catch (err) {
            await removeRemoteDir(h, rdir);
            throw new GauntletError('GAUNTLET_LOAD_K6_FAILED', [`(${names[i]} on ${sshHostName(h)}) could not be set up: ${(err as Error).message}`]);
          }
          // the REST API's port there: one of Gauntlet's choosing (k6 says 106 if it is taken)
          // Its k6 stamps samples with its own clock: brought onto this one's.
          if (clock) log.info({ instance: names[i], host: sshHostName(h), offsetMs: clock.offsetMs, errorMs: clock.errorMs }, `${names[i]} on ${sshHostName(h)}: its clock is ${clock.offsetMs.toFixed(1)} ± ${clock.errorMs.toFixed(1)} ms off this one's; its samples' times are corrected`);
          else log.warn(`${names[i]} on ${sshHostName(h)}: its clock's offset could not be measured (no date +%s%N there): its samples keep that host's times`);
          return { host: h, dir: rdir, remotePort: 30_000 + randomInt(30_000), clock };
        }),
      );
      const remote = settled.map((x) => (x.status === 'fulfilled' ? x.value : null));
      const setupFailed = settled.find((x) => x.status === 'rejected');
      if (setupFailed) {
        await Promise.all(remote.map((x) => (x ? removeRemoteDir(x.host, x.dir) : undefined)));
        throw setupFailed.reason;
      }
      const instances = await Promise.all(
        names.map(async (name, i) => {
          // One local instance writes into a FIFO (as before several existed); several write to their
          // stdout, `json=-` (a FIFO's open would hold one of libuv's four threads each until k6
          // opens it; and /dev/stdout cannot be opened when stdout is Node's socket pair).
          const there = remote[i];
          const fifo = !there && n === 1 ? join(dir, 'out.jsonl') : null;
          if (fifo) await run('mkfifo', [fifo]);
          const { sink: instanceSink, late } = instanceSinkOf(name, n, counting, sink);
          const parser = parserFor(name, instanceSink, { prefix: n > 1, ...(there?.clock ? { clockShiftMs: -there.clock.offsetMs } : {}) });
          // With several instances each runs its execution segment, paused until all are ready.
          const split = (address: number | null): string[] => [
            ...(n > 1 ? ['--execution-segment', `${segments[i]}:${segments[i + 1]}`, '--execution-segment-sequence', segments.join(','), '--paused'] : []),
            ...(address !== null ? ['--address', `127.0.0.1:${address}`] : []),
          ];
          const launched = there
            ? this.launchRemote(there.host, there.dir, parser, split(there.remotePort), { local: ports[i] as number, remote: there.remotePort })
            : this.launch(name, fifo, parser, split(ports[i] as number), configPath, script);
          void launched.reading.then(() => late.flush());
          if (there?.clock) sink.generator?.(name, Date.now(), 'clock_offset_ms', there.clock.offsetMs);
          // A remote k6's CPU, read there every second over an SSH session of its own (a local one's
          // is read by the run's monitor), opened as the instance starts: a watch opened only once
          // the instances ran missed short loads under stress-ng. (Each remote instance so opens two
          // sessions at once: sshd's MaxStartups, 10 by default, bounds how many start together.)
          const cpu = there
            ? watchRemoteCpu(
                there.host,
                there.dir,
                (c) => {
                  const at = Date.now();
                  sink.generator?.(name, at, 'k6_cpu_cores', c.cores);
                  sink.generator?.(name, at, 'k6_cpu_share', c.share);
                },
                (why) => log.warn(`${name} on ${sshHostName(there.host)}: its CPU is not measured: ${why}`),
              )
            : null;
          return { name, fifo, parser, port: ports[i] as number, remote: there, cpu, ...launched };
        }),
      );
      // A stop: each instance's REST API (a remote k6 hears nothing else) and SIGINT to a local one,
      // k6's own graceful stop; after a grace, SIGKILL (a remote k6 is then killed by removeRemoteDir).
      const graceMs = Math.max(...w.mix.map((m) => m.timeoutMs)) + 15_000;
      let killTimer: NodeJS.Timeout | null = null;
      const stopAll = (): void => {
        for (const x of instances) {
          void stopK6(x.port).catch(() => undefined);
          if (!x.remote) x.child.kill('SIGINT');
        }
        killTimer ??= setTimeout(() => {
          for (const x of instances) x.child.kill('SIGKILL');
        }, graceMs);
      };
      // One instance failing stops the others: the load is no longer the plan's.
      let failed: { name: string; code: number | null; sig: NodeJS.Signals | null; err: Error | null; tail: string[] } | null = null;
      for (const x of instances) {
        void x.exited.then(([code, sig, err]) => {
          if (signal.aborted || code === 0 || code === 99) return;
          failed ??= { name: x.name, code, sig, err, tail: x.stderrTail };
          stopAll();
        });
      }

      // Ctrl-C
      const onAbort = stopAll;
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });

      if (n > 1 && !signal.aborted) {
        // Every instance's REST API answers (its VUs are initialised), then all resume at once,
        // as k6-operator's starter does.
        const ready = await Promise.all(instances.map((x, i) => waitPaused(ports[i] as number, x.exited, signal)));
        if (ready.every(Boolean) && !failed && !signal.aborted) {
          log.info({ instances: n, segments: segments.join(',') }, 'k6 instances ready: resuming them together');
          // (one that cannot be resumed would wait paused for ever: the run fails and all stop)
          await Promise.all(
            instances.map((x) =>
              resume(x.port).catch((err: Error) => {
                failed ??= { name: x.name, code: null, sig: null, err: new Error(`could not be resumed through its REST API: ${err.message}`), tail: x.stderrTail };
              }),
            ),
          );
          if (failed) stopAll();
        } else {
          const slow = instances[ready.findIndex((x) => !x)];
          if (slow && !signal.aborted) failed ??= { name: slow.name, code: null, sig: null, err: new Error('did not become ready (its REST API did not answer within a minute, or it ended first)'), tail: slow.stderrTail };
          stopAll();
        }
      }

      const results = await Promise.all(instances.map((x) => x.exited));
      signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      for (const x of instances) {
        if (x.fifo && !x.opened()) {
          // k6 ended without opening its output: open the FIFO's write end once so the reader ends.
          try {
            closeSync(openSync(x.fifo, constants.O_WRONLY | constants.O_NONBLOCK));
          } catch {
            // the reader already finished, or never opened: nothing waits
          }
        }
      }
      const readErrors = await Promise.all(instances.map((x) => x.reading));
      for (const x of instances) x.cpu?.stop();
      await Promise.all(instances.map((x) => x.cpu?.done));
      await Promise.all(instances.map((x) => (x.remote ? removeRemoteDir(x.remote.host, x.remote.dir) : undefined)));
      if (lastEnd() > Number.NEGATIVE_INFINITY) sink.ended?.(lastEnd());
      instances.forEach((x, i) => log.info({ instance: x.name, code: results[i]?.[0], signal: results[i]?.[1], ...x.parser.stats }, 'k6 finished'));
      const spawnError = results.find((r) => r[2] !== null)?.[2];
      if (spawnError) throw new GauntletError('GAUNTLET_LOAD_K6_FAILED', [`could not be started (${this.binary.path}): ${spawnError.message}`]);
      const readError = readErrors.find((e) => e !== null);
      if (readError) throw new GauntletError('GAUNTLET_LOAD_K6_FAILED', [`output could not be read: ${readError.message}`]);

      if (signal.aborted) return;
      const f = failed as { name: string; code: number | null; sig: NodeJS.Signals | null; err: Error | null; tail: string[] } | null;
      if (!f) {
        if (results.some((r) => r[0] === 99)) log.warn('k6 says thresholds were crossed (exit 99); Gauntlet judges its own gates, so the run goes on');
        return;
      }
      const viaSsh = instances.find((x) => x.name === f.name)?.remote;
      const meaning = f.err ? f.err.message : viaSsh && f.code === 255 ? `could not be reached or run over ssh (${sshHostName(viaSsh.host)}, ssh exit 255)` : f.code === null ? `was killed by ${f.sig}` : `exited with code ${f.code}${K6_EXIT_CODES[f.code] ? ` (${K6_EXIT_CODES[f.code]})` : ''}`;
      throw new GauntletError('GAUNTLET_LOAD_K6_FAILED', [`${n > 1 ? `(${f.name}) ` : ''}${meaning}${f.tail.length ? `; its last output:\n${f.tail.join('\n')}` : ''}`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

