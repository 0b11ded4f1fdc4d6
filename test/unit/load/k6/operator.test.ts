// The k6-operator manifest: a ConfigMap k6-operator mounts at /test in each runner (the bundle,
// a config naming its prompt files there, the prompts) and a TestRun with the runners' count and
// arguments that send each runner's JSON output to its log. Checked as Kubernetes reads it (YAML).
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CONFIGMAP_LIMIT_BYTES, k6OperatorManifest } from '../../../../src/load/k6/operator.js';
import { testMix, testWorkload } from '../../../helpers/workload.js';

const workload = testWorkload({
  targets: [
    { node: 'gpu-a', endpoint: 'http://vllm-a.inference.svc:8000' },
    { node: 'gpu-b', endpoint: 'http://vllm-b.inference.svc:8000' },
  ],
  durationMs: 3_600_000,
  profile: { startRate: 40, stages: [] },
  mix: [testMix({ name: 'chat', prompts: [{ prompt: 'hello' }, { messages: [{ role: 'user', content: 'hi' }], maxTokens: 7 }] }), testMix({ name: 'plain', weight: 2 })],
  defaultModel: 'llama',
});

describe('k6-operator manifest', () => {
  it('a ConfigMap with the bundle, config and prompts, and a TestRun of N runners reading them from /test', () => {
    const { yaml, configMapBytes } = k6OperatorManifest(workload, 'export default function () {}', { name: 'nightly', namespace: 'load', parallelism: 6, image: 'registry.local/k6-sse:0.49' });
    const docs = parseAllDocuments(yaml).map((d) => d.toJS() as Record<string, any>);
    expect(docs.map((d) => `${d.apiVersion} ${d.kind} ${d.metadata.namespace}/${d.metadata.name}`)).toEqual(['v1 ConfigMap load/nightly-scenario', 'k6.io/v1alpha1 TestRun load/nightly']);
    const [cm, tr] = docs as [Record<string, any>, Record<string, any>];
    expect(Object.keys(cm.data).sort()).toEqual(['config.json', 'prompts-0.json', 'scenario.js']);
    expect(cm.data['scenario.js']).toBe('export default function () {}');
    const config = JSON.parse(cm.data['config.json']);
    expect(config.mix[0].promptsPath).toBe('/test/prompts-0.json');
    expect(config.mix[1].promptsPath).toBeUndefined();
    expect(Object.values(config.targets).map((t: any) => t.endpoint)).toEqual(['http://vllm-a.inference.svc:8000', 'http://vllm-b.inference.svc:8000']);
    expect(JSON.parse(cm.data['prompts-0.json'])).toEqual([{ prompt: 'hello' }, { messages: [{ role: 'user', content: 'hi' }], maxTokens: 7 }]);
    expect(configMapBytes).toBeGreaterThan(cm.data['config.json'].length);
    expect(tr.spec).toEqual({
      parallelism: 6,
      script: { configMap: { name: 'nightly-scenario', file: 'scenario.js' } },
      arguments: '--no-usage-report --no-summary --out json=- -e GAUNTLET_CONFIG=/test/config.json',
      runner: { image: 'registry.local/k6-sse:0.49' },
    });
    expect(tr.metadata.labels['app.kubernetes.io/managed-by']).toBe('gauntlet');
    // no image: k6-operator's default
    expect(parseAllDocuments(k6OperatorManifest(workload, 'x', { name: 'n', namespace: 'default', parallelism: 1, image: null }).yaml)[1]?.toJS().spec.runner).toBeUndefined();
  });

  it('refuses names Kubernetes would refuse, and more than a ConfigMap holds', () => {
    const o = { name: 'ok', namespace: 'default', parallelism: 2, image: null };
    expect(() => k6OperatorManifest(workload, 'x', { ...o, name: 'Nightly_Run' })).toThrow(/lowercase letters/);
    expect(() => k6OperatorManifest(workload, 'x', { ...o, namespace: 'a b' })).toThrow(/namespace/);
    expect(() => k6OperatorManifest(workload, 'x', { ...o, parallelism: 0 })).toThrow(/parallelism/);
    const big = { ...workload, mix: [testMix({ prompts: Array.from({ length: 2000 }, (_, i) => ({ prompt: `${i} ${'x'.repeat(600)}` })) })] };
    expect(() => k6OperatorManifest(big, 'x', o)).toThrow(new RegExp(`more than one ConfigMap holds`));
    expect(CONFIGMAP_LIMIT_BYTES).toBe(1_048_576);
  });
});
