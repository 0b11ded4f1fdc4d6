// A small workload for engine tests: one target, constant 5 req/s for 5 s, one kind of request.
import type { MixItem, Workload } from '../../src/load/workload.js';

export function testMix(over: Partial<MixItem> = {}): MixItem {
  return { name: 'default', weight: 1, api: 'chat', stream: true, model: undefined, promptTokens: { fixed: 16 }, maxTokens: { fixed: 16 }, prompts: null, promptsFile: null, timeoutMs: 5000, ...over };
}

export function testWorkload(over: Partial<Workload> = {}): Workload {
  return {
    targets: [{ node: 'node-a', endpoint: 'http://127.0.0.1:9' }],
    durationMs: 5000,
    seed: 1,
    arrival: 'constant',
    burstiness: 1,
    profile: { startRate: 5, stages: [] },
    maxInFlight: null,
    mix: [testMix()],
    retry: null,
    defaultModel: 'm',
    ...over,
  };
}

/**
 * The k6 multi-instance tests' load: two nodes on one simulator, 30 streamed chats a second in
 * total (constant arrivals), 8 tokens each, for `durationMs` — 120 arrivals in 4 s.
 */
export function twoNodeK6Workload(endpoint: string, durationMs: number): Workload {
  return testWorkload({
    targets: [
      { node: 'a', endpoint },
      { node: 'b', endpoint },
    ],
    durationMs,
    profile: { startRate: 30, stages: [] },
    mix: [testMix({ model: 'sim-llama', maxTokens: { fixed: 8 } })],
    defaultModel: 'sim-llama',
  });
}
