// k6 on Kubernetes, driven by a run (load.k6_operator): the plan's load as a k6-operator TestRun
// (src/load/k6/operator.ts: the bundle, its config and prompts in a ConfigMap, `parallelism: N`)
// applied with kubectl; k6-operator gives runner i its execution segment, starts them paused and
// resumes them together (its starter). Each runner writes its k6 JSON output to its stdout, so
// its pod's log (`kubectl logs -f job/<name>-<i>`) is read back, line by line while it runs, into
// the same parsers, windows and histograms as a local k6's. A stop deletes the TestRun (its jobs
// and pods go with it); at the end the TestRun and its ConfigMap are deleted. Only kubectl is run,
// with argument arrays: names are Gauntlet's own, the namespace and context checked by the plan.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { GauntletError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { packageRoot } from '../../util/paths.js';
import type { EngineCapabilities, LoadEngine, LoadProgress, LoadSink } from '../types.js';
import type { Workload } from '../workload.js';
import { bundleScenario } from './bundle.js';
import { k6Config } from './config.js';
import { countingSink, instanceSinkOf, k6Parsers } from './engine.js';
import { k6OperatorManifest } from './operator.js';
import { K6OutputParser } from './output.js';

export interface K6OperatorOptions {
  /** The user's own scenario (plan load.script), or null for Gauntlet's. */
  script: string | null;
  instances: number;
  namespace: string;
  /** kubectl's --context (null: its current one). */
  context: string | null;
  /** The kubectl binary (a path or a name on PATH). */
  kubectl: string;
  /** The runner image (null: k6-operator's default, which lacks xk6-sse). */
  image: string | null;
  /** The runner image has xk6-sse: Gauntlet's SSE scenario (ttft at the first content chunk, ITL). */
  sse: boolean;
  log: Logger;
  /** How long runners may take to be scheduled and start (image pulls). */
  startTimeoutMs?: number;
}

/** How kubectl is told which cluster and namespace, before its command. */
function kubeArgs(o: Pick<K6OperatorOptions, 'context' | 'namespace'>, args: readonly string[]): string[] {
  return [...(o.context ? ['--context', o.context] : []), '--namespace', o.namespace, ...args];
}

/** Runs kubectl once; rejects with its own last words. */
function kubectl(o: K6OperatorOptions, args: readonly string[], input: string | null, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(o.kubectl, kubeArgs(o, args), { timeout: timeoutMs, maxBuffer: 4 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kubectl ${args.slice(0, 2).join(' ')}: ${(stderr || err.message).trim().split('\n').slice(-3).join(' ')}`));
      else resolve(stdout);
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? undefined);
  });
}

/** After a stop, how long the runners' logs are read while their pods go (then the followers are cut). */
const STOP_GRACE_MS = 30_000;

/** A k6 JSON output line (the rest of a pod's log is k6's own messages, on its stderr). */
const JSON_LINE = /^\s*\{/;

export class K6OperatorEngine implements LoadEngine {
  readonly name = 'k6';
  readonly progress: LoadProgress = { scheduled: 0, inFlight: 0, done: 0, ok: 0, failed: 0 };
  readonly capabilities: EngineCapabilities;
  /** The TestRun's name: Gauntlet's own, fresh for every run. */
  readonly testRun = `gauntlet-${randomBytes(4).toString('hex')}`;

  constructor(private readonly opts: K6OperatorOptions) {
    if (!(Number.isInteger(opts.instances) && opts.instances >= 1 && opts.instances <= 1000)) throw new RangeError(`k6-operator runners must be a whole number from 1 to 1000, got ${opts.instances}`);
    const own = opts.script === null;
    const notes = [
      `k6 on Kubernetes: a k6-operator TestRun of ${opts.instances} runner${opts.instances === 1 ? '' : 's'} in namespace ${opts.namespace}${opts.image ? ` (image ${opts.image})` : " (k6-operator's default runner image)"}; each runner's JSON output read back from its pod's log.`,
      "The runners stamp their samples with their nodes' clocks (not measured here: keep the cluster's clocks synchronised).",
      "Each runner's CPU is not measured here: its lateness (late_ms_max) is its saturation signal.",
    ];
    if (!opts.sse) notes.push('Without xk6-sse in the runner image, k6 buffers each response: TTFT is time to first byte (an approximation) and inter-token gaps are not measured.');
    this.capabilities = { ttft: opts.sse ? 'first_content_chunk' : 'time_to_first_byte', itl: opts.sse, queueDelay: own, notes };
  }

  /** The TestRun's stage as k6-operator reports it (initialization, created, started, error, …). */
  private async stage(): Promise<string> {
    const got = await kubectl(this.opts, ['get', 'testrun', this.testRun, '-o', 'jsonpath={.status.stage}'], null).catch((err: Error) => `unknown (${err.message})`);
    return got.trim() || 'unknown';
  }

  generators(): { name: string; host: string | null }[] {
    return Array.from({ length: this.opts.instances }, (_, i) => ({ name: `k6-${i + 1}`, host: `k8s ${this.opts.namespace}/job/${this.testRun}-${i + 1}` }));
  }

  async run(w: Workload, signal: AbortSignal, sink: LoadSink): Promise<void> {
    const o = this.opts;
    const log = o.log;
    const dir = mkdtempSync(join(tmpdir(), 'gauntlet-k6op-'));
    const entry = o.script ?? join(packageRoot(), 'scenarios', 'load', o.sse ? 'chat-sse.ts' : 'chat.ts');
    const own = o.script === null;
    const n = o.instances;
    let applied = false;
    const remove = async (): Promise<void> => {
      await kubectl(o, ['delete', 'testrun', this.testRun, '--ignore-not-found', '--wait=false'], null).catch((err: Error) => log.warn(`could not delete TestRun ${this.testRun}: ${err.message}`));
    };
    try {
      const bundle = readFileSync(await bundleScenario(entry, join(dir, 'scenario.js')), 'utf8');
      const manifest = k6OperatorManifest(w, bundle, { name: this.testRun, namespace: o.namespace, parallelism: n, image: o.image });
      const { counting, lastEnd } = countingSink(this.progress, sink);
      const config = k6Config(w);
      const parserFor = k6Parsers(w, config.targets, log, { own, sse: o.sse });
      // (deleted at the end even when apply fails: the server may have taken part of it, or all
      // of it before kubectl's answer was lost)
      applied = true;
      try {
        await kubectl(o, ['apply', '-f', '-'], manifest.yaml);
      } catch (err) {
        throw new GauntletError('GAUNTLET_LOAD_K6_FAILED', [`(k6-operator) the TestRun could not be applied: ${(err as Error).message}`]);
      }
      log.info({ testRun: this.testRun, namespace: o.namespace, runners: n, configMapBytes: manifest.configMapBytes }, 'k6-operator TestRun applied: reading each runner’s log');
      // A stop deletes the TestRun; the runners' logs are read until their pods are gone (what
      // they wrote last is kept), for at most a grace, then the followers are cut.
      const ending = new AbortController();
      const stop = new AbortController();
      let graceTimer: NodeJS.Timeout | null = null;
      const onAbort = (): void => {
        if (ending.signal.aborted) return;
        ending.abort();
        void remove();
        graceTimer = setTimeout(() => stop.abort(), STOP_GRACE_MS);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      const startTimeoutMs = o.startTimeoutMs ?? 600_000;
      const startBy = Date.now() + startTimeoutMs;
      // One runner failing (or never starting) stops the others: the load is no longer the plan's.
      let failed: string | null = null;
      const fail = (why: string): void => {
        failed ??= why;
        onAbort();
      };
      // Runners started but silent (k6-operator's starter never resumed them, its initializer
      // failed): no output from any of them by startBy fails the load rather than waiting for ever.
      let output = 0;
      const watchdog = setTimeout(() => {
        if (output === 0) void this.stage().then((stage) => fail(`no runner wrote any output within ${Math.round(startTimeoutMs / 1000)} s (TestRun stage: ${stage}); see kubectl describe testrun ${this.testRun} -n ${o.namespace}`));
        // (a few seconds after startBy: a runner whose pod never ran is named by its follower first)
      }, startTimeoutMs + 5000);
      const runners = Array.from({ length: n }, (_, i) => {
        const name = `k6-${i + 1}`;
        const job = `${this.testRun}-${i + 1}`;
        const { sink: instanceSink, late } = instanceSinkOf(name, n, counting, sink);
        const parser = parserFor(name, { ...instanceSink, planned: (node, at, count) => (output++, instanceSink.planned?.(node, at, count)), record: (r) => (output++, instanceSink.record(r)) }, { prefix: true });
        return (async () => {
          const tail: string[] = [];
          const got = await this.followLog(job, parser, tail, startBy, ending.signal, stop.signal);
          parser.end();
          late.flush();
          if (ending.signal.aborted) return;
          if (got === 'never') return fail(`${name} (job ${job}) did not start within ${Math.round(startTimeoutMs / 1000)} s${tail.length ? `: ${tail.slice(-3).join(' ')}` : ''}`);
          if (got === 'broken') log.warn(`${name} (job ${job}): its log stream broke (${tail.at(-1) ?? ''}); what it wrote after is not read`);
          // its log ended: did its k6 fail? (the Job controller records it a moment after the pod ends)
          for (let i = 0; i < 30 && !ending.signal.aborted; i++) {
            const [succeeded, failedPods] = (await kubectl(o, ['get', 'job', job, '-o', 'jsonpath={.status.succeeded},{.status.failed}'], null).catch(() => ',')).trim().split(',');
            if (Number(failedPods) > 0) return fail(`${name} (job ${job}) failed${tail.length ? `; its last output:\n${tail.slice(-10).join('\n')}` : ''}`);
            if (Number(succeeded) > 0) return;
            await new Promise((r) => setTimeout(r, 1000));
          }
        })();
      });
      await Promise.all(runners);
      clearTimeout(watchdog);
      if (graceTimer) clearTimeout(graceTimer);
      signal.removeEventListener('abort', onAbort);
      if (lastEnd() > Number.NEGATIVE_INFINITY) sink.ended?.(lastEnd());
      if (failed && !signal.aborted) throw new GauntletError('GAUNTLET_LOAD_K6_FAILED', [`(k6-operator) ${failed}`]);
    } finally {
      if (applied) {
        await remove();
        await kubectl(o, ['delete', 'configmap', `${this.testRun}-scenario`, '--ignore-not-found', '--wait=false'], null).catch((err: Error) => log.warn(`could not delete ConfigMap ${this.testRun}-scenario: ${err.message}`));
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * Follows a runner job's log into the parser until it ends. Before its pod runs, kubectl says the
   * job is not there yet or the pod is pending: asked again every 2 s until `startBy` (or, once the
   * load is ending, not again). 'ended': its log ended; 'broken': the stream broke after some of
   * it was read; 'never': it never started.
   */
  private async followLog(job: string, parser: K6OutputParser, tail: string[], startBy: number, ending: AbortSignal, stop: AbortSignal): Promise<'ended' | 'broken' | 'never'> {
    const o = this.opts;
    for (let attempt = 0; !stop.aborted; attempt++) {
      // (kubectl waits for the pod to run: at most 30 s at a time, and not past startBy)
      const waitS = Math.max(1, Math.min(30, Math.ceil((startBy - Date.now()) / 1000)));
      const child = spawn(o.kubectl, kubeArgs(o, ['logs', '-f', `job/${job}`, '-c', 'k6', `--pod-running-timeout=${waitS}s`]), { stdio: ['ignore', 'pipe', 'pipe'] });
      const kill = (): void => void child.kill('SIGTERM');
      stop.addEventListener('abort', kill, { once: true });
      let lines = 0;
      const errText: string[] = [];
      createInterface({ input: child.stderr }).on('line', (l) => errText.push(l));
      const closed = new Promise<number | null>((resolve) => {
        child.once('error', (err) => {
          errText.push(err.message);
          resolve(null);
        });
        child.once('close', (code) => resolve(code));
      });
      for await (const line of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
        lines++;
        if (JSON_LINE.test(line)) parser.line(line);
        else {
          tail.push(line);
          if (tail.length > 20) tail.shift();
        }
      }
      const code = await closed;
      stop.removeEventListener('abort', kill);
      if (lines > 0 && code === 0) return 'ended';
      if (lines > 0) {
        // the stream broke mid-log (an API server restart): what was read stays; not read twice
        tail.push(`kubectl logs ended with code ${code}: ${errText.slice(-2).join(' ')}`);
        return 'broken';
      }
      if (errText.length) tail.splice(0, tail.length, ...errText.slice(-3));
      if (ending.aborted) return 'ended';
      if (Date.now() >= startBy) return 'never';
      await new Promise((r) => setTimeout(r, Math.min(2000, 200 * (attempt + 1))));
    }
    return 'ended';
  }
}
