// The one kind of load the benchmarks send: one target, constant arrivals, one kind of chat request.
import type { Workload } from '../src/load/workload.js';

export function benchWorkload(o: { endpoint: string; rate: number; seconds: number; stream: boolean; model: string; promptTokens: number; maxTokens: number }): Workload {
  return {
    targets: [{ node: 'bench', endpoint: o.endpoint }],
    durationMs: o.seconds * 1000,
    seed: 1,
    arrival: 'constant',
    burstiness: 1,
    profile: { startRate: o.rate, stages: [] },
    maxInFlight: null,
    mix: [{ name: 'bench', weight: 1, api: 'chat', stream: o.stream, model: o.model, promptTokens: { fixed: o.promptTokens }, maxTokens: { fixed: o.maxTokens }, prompts: null, promptsFile: null, timeoutMs: 30_000 }],
    retry: null,
    defaultModel: o.model,
  };
}
