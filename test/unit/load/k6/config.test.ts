import { describe, expect, it } from 'vitest';
import { k6Config } from '../../../../src/load/k6/config.js';
import type { Workload } from '../../../../src/load/workload.js';
import { testMix, testWorkload } from '../../../helpers/workload.js';

const base: Workload = testWorkload({
  targets: [
    { node: 'node-a', endpoint: 'http://127.0.0.1:1' },
    { node: 'node-b', endpoint: 'http://127.0.0.1:2' },
  ],
  durationMs: 300_000,
  mix: [testMix({ promptTokens: { fixed: 64 }, maxTokens: { fixed: 64 }, timeoutMs: 60_000 })],
});

describe('k6Config', () => {
  it('one constant-arrival-rate scenario per node at its share, fractional rates kept exact', () => {
    const c = k6Config(base);
    expect(Object.keys(c.options.scenarios)).toEqual(['node_1', 'node_2']);
    const s = c.options.scenarios.node_1;
    expect(s).toMatchObject({ executor: 'constant-arrival-rate', rate: 2500, timeUnit: '1000s', duration: '299800ms', tags: { node: 'node-a' } }); // k6 also starts one at t = duration: half an interval short (200 ms of 2.5/s's 400)
    expect(c.targets.node_2).toEqual({ node: 'node-b', endpoint: 'http://127.0.0.1:2' });
  });

  it('VUs: enough for rate × expected latency, at most rate × timeout', () => {
    const s = k6Config(base).options.scenarios.node_1;
    // 2.5/s × (1 s + 64 × 50 ms) = 10.5 → 12; 2.5/s × 60 s = 150 → 151
    expect(s?.preAllocatedVUs).toBe(12);
    expect(s?.maxVUs).toBe(151);
    expect(k6Config({ ...base, maxInFlight: 20 }).options.scenarios.node_1?.maxVUs).toBe(10);
  });

  it('stages ramp per node and the last target holds to the end of the plan', () => {
    const c = k6Config({ ...base, profile: { startRate: 0, stages: [{ duration: 60_000, target: 10 }, { duration: 0, target: 20 }] } });
    expect(c.options.scenarios.node_1).toMatchObject({
      executor: 'ramping-arrival-rate',
      startRate: 0,
      stages: [
        { duration: '60000ms', target: 5000 },
        { duration: '0ms', target: 10000 },
        { duration: '240000ms', target: 10000 },
      ],
    });
  });

  it('a ramp cut by the end of the plan stops where it has got to', () => {
    const c = k6Config({ ...base, durationMs: 300_000, profile: { startRate: 0, stages: [{ duration: 600_000, target: 100 }] } });
    expect(c.options.scenarios.node_1?.stages).toEqual([{ duration: '300000ms', target: 25_000 }]); // 50 req/s total, 25 per node
  });

  it('retries are sized in: VUs and graceful stop cover every attempt and backoff', () => {
    const c = k6Config({ ...base, retry: { attempts: 3, backoffMs: 100, maxBackoffMs: 1000, jitter: 0 } });
    expect(c.options.scenarios.node_1?.maxVUs).toBe(Math.ceil(2.5 * (3 * 60 + 2 * 1)) + 1);
    expect(c.options.scenarios.node_1?.gracefulStop).toBe('187s');
  });

  it('prompt lists go to files of their own, not inline in the config', () => {
    const c = k6Config({ ...base, mix: [{ ...base.mix[0]!, prompts: [{ prompt: 'x' }] }] }, (i) => `/tmp/p${i}.json`);
    expect(c.mix[0]).toMatchObject({ prompts: null, promptsPath: '/tmp/p0.json' });
  });

  it('stages longer than the plan are cut at its end', () => {
    const c = k6Config({ ...base, durationMs: 90_000, profile: { startRate: 2, stages: [{ duration: 60_000, target: 10 }, { duration: 60_000, target: 10 }] } });
    expect(c.options.scenarios.node_1?.stages).toEqual([
      { duration: '60000ms', target: 5000 },
      { duration: '30000ms', target: 5000 },
    ]);
  });
});
