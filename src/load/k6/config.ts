// The plan's workload as k6 options and the scenario's config file. Pure.
// One arrival-rate scenario per node (k6 tags its samples with the scenario), at the node's
// share of the rate. k6 rates are integers per timeUnit, so rates are given per 1000 s.
import { meanLength } from '../distributions.js';
import type { Workload } from '../workload.js';

const PER = 1000; // rates are expressed per 1000 s so fractional req/s stay exact

export interface K6Scenario {
  executor: 'constant-arrival-rate' | 'ramping-arrival-rate';
  exec: 'default';
  timeUnit: string;
  rate?: number;
  duration?: string;
  startRate?: number;
  stages?: { duration: string; target: number }[];
  preAllocatedVUs: number;
  maxVUs: number;
  gracefulStop: string;
  tags: { node: string };
}

export interface K6ScenarioConfig {
  targets: Record<string, { node: string; endpoint: string }>;
  /** Prompt lists are written to files of their own (promptsPath) and shared across VUs. */
  mix: (Omit<Workload['mix'][number], 'prompts'> & { prompts: null; promptsPath?: string })[];
  defaultModel: string;
  retry: Workload['retry'];
  seed: number;
  options: { scenarios: Record<string, K6Scenario>; discardResponseBodies: false; summaryTrendStats: string[] };
}

/**
 * How long a request is expected to take, for sizing VUs: 1 s plus 50 ms per output token
 * (a loaded server's pace), at most the timeout.
 */
export function expectedLatencyMs(w: Workload): number {
  return Math.max(...w.mix.map((m) => Math.min(m.timeoutMs, 1000 + meanLength(m.maxTokens) * 50)));
}

/** `promptsPath(i)`: where the engine writes mix entry i's prompts (as a JSON array). */
export function k6Config(w: Workload, promptsPath: (i: number) => string = (i) => `prompts-${i}.json`): K6ScenarioConfig {
  const n = w.targets.length;
  const share = 1 / n;
  const peak = Math.max(w.profile.startRate, ...w.profile.stages.map((s) => s.target)) * share;
  const timeoutMs = Math.max(...w.mix.map((m) => m.timeoutMs));
  // A retrying iteration holds its VU through every attempt and backoff.
  const attempts = w.retry?.attempts ?? 1;
  const iterationMs = attempts * timeoutMs + (w.retry ? (attempts - 1) * w.retry.maxBackoffMs : 0);
  const pre = Math.max(1, Math.ceil((peak * expectedLatencyMs(w)) / 1000) + 1);
  let max = Math.min(10_000, Math.max(pre, Math.ceil((peak * iterationMs) / 1000) + 1));
  if (w.maxInFlight) max = Math.max(1, Math.min(max, Math.ceil(w.maxInFlight / n)));
  const vus = { preAllocatedVUs: Math.min(pre, max), maxVUs: max };

  const scenarios: Record<string, K6Scenario> = {};
  const targets: K6ScenarioConfig['targets'] = {};
  w.targets.forEach((t, i) => {
    const name = `node_${i + 1}`;
    targets[name] = { node: t.node, endpoint: t.endpoint };
    const common = { exec: 'default' as const, timeUnit: `${PER}s`, gracefulStop: `${Math.ceil(iterationMs / 1000) + 5}s`, tags: { node: t.node }, ...vus };
    if (w.profile.stages.length === 0) {
      // k6 starts an arrival at the duration's very end too (150/s for 1000ms: 151 iterations,
      // for 1999ms: 300; k6 v0.49), and on a busy machine one a moment past a duration 1 ms
      // short: ending half an interval early gives exactly the plan's arrivals, t < duration,
      // as builtin does. k6 refuses durations under 1 s.
      const rate = Math.max(1, Math.round(w.profile.startRate * share * PER));
      const margin = Math.max(1, Math.floor((PER * 1000) / rate / 2));
      scenarios[name] = { ...common, executor: 'constant-arrival-rate', rate, duration: `${Math.max(1000, w.durationMs - margin)}ms` };
      return;
    }
    // k6 ends a ramping scenario with its last stage; Gauntlet holds the last target to the end.
    const stages: { duration: string; target: number }[] = [];
    let left = w.durationMs;
    let previous = w.profile.startRate;
    for (const s of w.profile.stages) {
      if (left <= 0) break;
      const d = Math.min(s.duration, left);
      // A stage cut by the end of the plan stops where its ramp has got to by then.
      const reached = d < s.duration ? previous + ((s.target - previous) * d) / s.duration : s.target;
      stages.push({ duration: `${d}ms`, target: Math.round(reached * share * PER) });
      previous = s.target;
      left -= d;
    }
    if (left > 0) stages.push({ duration: `${left}ms`, target: stages.at(-1)?.target ?? 0 });
    scenarios[name] = { ...common, executor: 'ramping-arrival-rate', startRate: Math.round(w.profile.startRate * share * PER), stages };
  });
  return {
    targets,
    mix: w.mix.map((m, i) => ({ ...m, prompts: null, ...(m.prompts ? { promptsPath: promptsPath(i) } : {}) })),
    defaultModel: w.defaultModel,
    retry: w.retry,
    seed: w.seed,
    options: { scenarios, discardResponseBodies: false, summaryTrendStats: ['avg', 'p(50)', 'p(99)', 'max'] },
  };
}
