// The generator monitor samples each k6 process's CPU under its own node, and with several also
// their sum under _gauntlet: each alone may use a small share of the machine while together they
// use all of it. (This process stands in for the k6 processes: its CPU is what is read.)
import { describe, expect, it } from 'vitest';
import { GENERATOR_NODE } from '../../../src/analysis/generator.js';
import { GeneratorMonitor, type GeneratorSample } from '../../../src/load/generator.js';

describe('GeneratorMonitor', () => {
  it('one sample per k6 process, and their sum when there are several', async () => {
    const samples: GeneratorSample[] = [];
    const m = new GeneratorMonitor((x) => samples.push(x), () => Date.now(), () => [
      { name: 'k6-1', pid: process.pid },
      { name: 'k6-2', pid: process.pid },
    ], 40);
    m.start();
    // bounded: until both processes and the sum have been sampled at least once (at most ~5 s)
    for (let i = 0; i < 100 && !samples.some((s) => s.node === GENERATOR_NODE && s.metric === 'k6_cpu_share'); i++) {
      const until = Date.now() + 30;
      while (Date.now() < until) Math.sqrt(i); // a little CPU to read
      await new Promise((r) => setTimeout(r, 20));
    }
    m.stop();
    const nodes = new Set(samples.filter((s) => s.metric === 'k6_cpu_cores').map((s) => s.node));
    expect(nodes).toEqual(new Set([`${GENERATOR_NODE}:k6-1`, `${GENERATOR_NODE}:k6-2`, GENERATOR_NODE]));
    // the sum is the two (the same process read twice): twice either one in the same sample
    const at = samples.find((s) => s.node === GENERATOR_NODE && s.metric === 'k6_cpu_cores')?.at;
    const one = samples.find((s) => s.node === `${GENERATOR_NODE}:k6-1` && s.metric === 'k6_cpu_cores' && s.at === at)?.value as number;
    const two = samples.find((s) => s.node === `${GENERATOR_NODE}:k6-2` && s.metric === 'k6_cpu_cores' && s.at === at)?.value as number;
    const sum = samples.find((s) => s.node === GENERATOR_NODE && s.metric === 'k6_cpu_cores' && s.at === at)?.value as number;
    expect(sum).toBeCloseTo(one + two, 9);
  });
});
