// The plan's load section, made ready for an engine: defaults applied, the rate profile and
// the request mix resolved, prompt files read and checked line by line. Both engines take a
// Workload, so the same plan runs on either.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { GauntletError } from '../errors.js';
import type { Plan } from '../plan/schema.js';
import { packageRoot } from '../util/paths.js';
import type { MixItem as PromptMix, PromptRecord } from './prompts.js';
import type { Arrival, RateProfile } from './schedule.js';
import type { LoadTarget } from './types.js';

/** A kind of request in the mix, with where its prompts came from. */
export interface MixItem extends PromptMix {
  promptsFile: string | null;
}

export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  jitter: number;
}

export interface Workload {
  targets: LoadTarget[];
  durationMs: number;
  seed: number;
  arrival: Arrival;
  burstiness: number;
  profile: RateProfile;
  maxInFlight: number | null;
  mix: MixItem[];
  retry: RetryPolicy | null;
  /** Used where a mix entry names no model. */
  defaultModel: string;
}

const PromptLine = z.union([
  z.object({ messages: z.array(z.object({ role: z.string(), content: z.string() })).min(1), max_tokens: z.number().int().positive().optional() }),
  z.object({ prompt: z.string().min(1), max_tokens: z.number().int().positive().optional() }),
]);

/** Where a plan's `prompts:` file is: relative to the plan, else in scenarios/data/. */
export function resolvePromptsFile(name: string, planPath: string | null): string {
  const candidates = isAbsolute(name) ? [name] : [...(planPath ? [resolve(dirname(planPath), name)] : []), join(packageRoot(), 'scenarios', 'data', name)];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new GauntletError('GAUNTLET_PLAN_INVALID', [planPath ?? 'plan', `  load prompts: ${name} not found (looked in ${candidates.join(', ')})`]);
  return found;
}

/** Reads a JSONL prompt file: one {"messages": [...]} or {"prompt": "..."} per line, optional max_tokens. */
export function readPrompts(path: string): PromptRecord[] {
  const out: PromptRecord[] = [];
  const problems: string[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        // (not V8's message: it quotes the line, and a plan sent to the daemon must not read files back)
        const at = /position \d+/.exec((err as Error).message)?.[0];
        problems.push(`  ${path}:${i + 1}: not JSON${at ? ` (at ${at})` : ''}`);
        return;
      }
      const r = PromptLine.safeParse(value);
      if (!r.success) {
        problems.push(`  ${path}:${i + 1}: expected {"messages": [{"role", "content"}…]} or {"prompt": "…"} (optional "max_tokens")`);
        return;
      }
      const d = r.data;
      out.push({ ...('messages' in d ? { messages: d.messages } : { prompt: d.prompt }), ...(d.max_tokens !== undefined ? { maxTokens: d.max_tokens } : {}) });
    });
  if (problems.length > 0) throw new GauntletError('GAUNTLET_PLAN_INVALID', [path, problems.slice(0, 20).join('\n')]);
  if (out.length === 0) throw new GauntletError('GAUNTLET_PLAN_INVALID', [path, '  the prompt file has no prompts']);
  return out;
}

export function buildWorkload(plan: Plan, targets: LoadTarget[], defaultModel: string, planPath: string | null): Workload {
  const l = plan.load;
  const entries = l.mix ?? [{ weight: 1, api: l.api, stream: l.stream, model: l.model, prompt_tokens: l.prompt_tokens, max_tokens: l.max_tokens, prompts: l.prompts, timeout: undefined, name: undefined }];
  const mix: MixItem[] = entries.map((e, i) => {
    const file = e.prompts ? resolvePromptsFile(e.prompts, planPath) : null;
    const api = e.api ?? 'chat';
    return {
      name: e.name ?? (entries.length === 1 ? 'default' : `mix${i + 1}`),
      weight: e.weight,
      api,
      stream: e.stream ?? true,
      model: e.model,
      promptTokens: e.prompt_tokens ?? { fixed: 128 },
      maxTokens: e.max_tokens ?? { fixed: 64 },
      prompts: file ? readPrompts(file) : null,
      promptsFile: file,
      timeoutMs: e.timeout ?? l.timeout,
    };
  });
  for (const m of mix) {
    if (m.prompts && m.api === 'completions' && m.prompts.some((p) => p.messages)) {
      throw new GauntletError('GAUNTLET_PLAN_INVALID', [planPath ?? 'plan', `  load mix ${m.name}: ${m.promptsFile} holds chat messages, but api is completions`]);
    }
  }
  return {
    targets,
    durationMs: plan.duration,
    seed: plan.seed,
    arrival: l.arrival,
    burstiness: l.burstiness ?? 1,
    profile: l.stages ? { startRate: l.start_rate, stages: l.stages } : { startRate: l.rate as number, stages: [] },
    maxInFlight: l.max_in_flight ?? null,
    mix,
    retry: l.retry ? { attempts: l.retry.attempts, backoffMs: l.retry.backoff, maxBackoffMs: l.retry.max_backoff, jitter: l.retry.jitter } : null,
    defaultModel,
  };
}

/** The peak rate of a profile (requests/s), for sizing (k6 VUs, connection pools). */
export function peakRate(p: RateProfile): number {
  return Math.max(p.startRate, ...p.stages.map((s) => s.target));
}
