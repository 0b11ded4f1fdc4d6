import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { containerMemory, cpuCores, parsePrometheusText } from '../../../src/detect/telemetry.js';

const fixture = readFileSync(new URL('../../fixtures/metrics/vllm.prom', import.meta.url), 'utf8');

describe('parsePrometheusText', () => {
  it("reads vLLM's gauges, sums a metric over its label sets, and counts the malformed lines", () => {
    const { values, malformed } = parsePrometheusText(fixture);
    expect(values.get('vllm:num_requests_running')).toBe(3);
    expect(values.get('vllm:num_requests_waiting')).toBe(12);
    expect(values.get('vllm:gpu_cache_usage_perc')).toBeCloseTo(0.4125, 9);
    expect(values.get('DCGM_FI_DEV_FB_USED')).toBe(71234 + 71100);
    expect(values.get('process_start_time_seconds')).toBe(1.7e9);
    expect(values.get('vllm:time_to_first_token_seconds_count')).toBe(1532);
    expect(values.has('nan_metric')).toBe(false);
    expect(malformed).toBe(2); // the garbage line and the non-number; NaN is legal and skipped
  });

  it('an empty or comment-only body has no values and nothing malformed', () => {
    expect(parsePrometheusText('# HELP x\n\n').values.size).toBe(0);
    expect(parsePrometheusText('').malformed).toBe(0);
  });
});

describe('Docker stats', () => {
  it('memory is usage minus reclaimable file cache (cgroup v1 and v2 names)', () => {
    expect(containerMemory({ memory_stats: { usage: 100 << 20, limit: 768 << 20, stats: { total_inactive_file: 20 << 20 } } })).toEqual({ bytes: 80 << 20, limit: 768 << 20 });
    expect(containerMemory({ memory_stats: { usage: 100 << 20, limit: 0, stats: { inactive_file: 30 << 20 } } })).toEqual({ bytes: 70 << 20, limit: null });
    expect(containerMemory({ memory_stats: {} })).toBeNull();
  });

  it('CPU in cores from two samples; none when the system counter did not move', () => {
    const a = { cpu_stats: { cpu_usage: { total_usage: 1e9 }, system_cpu_usage: 100e9, online_cpus: 2 } };
    const b = { cpu_stats: { cpu_usage: { total_usage: 1.5e9 }, system_cpu_usage: 102e9, online_cpus: 2 } };
    expect(cpuCores(a, b)).toBeCloseTo(0.5, 9);
    expect(cpuCores(a, a)).toBeNull();
    expect(cpuCores({}, b)).toBeNull();
  });
});
