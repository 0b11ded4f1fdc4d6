// A plan's k6 load as a k6-operator TestRun for Kubernetes (`gauntlet k6-operator`): a ConfigMap
// holding the bundled scenario, its config and the prompt files, which k6-operator mounts at /test
// in every runner, and a TestRun with `parallelism: N` — the operator gives runner i its execution
// segment, starts them paused and resumes them together (its starter job), as Gauntlet does with
// local and SSH instances. Each runner writes its k6 JSON output to its stdout (its pod's log).
// Pure: the manifest from the workload and the bundle.
import { stringify } from 'yaml';
import type { Workload } from '../workload.js';
import { k6Config } from './config.js';

export interface OperatorOptions {
  /** The TestRun's name (its runner jobs are <name>-1 … <name>-N). */
  name: string;
  namespace: string;
  parallelism: number;
  /** A k6 image built with xk6-sse (else k6-operator's default grafana/k6, which lacks it: ttft is then time to first byte). */
  image: string | null;
}

/** Where k6-operator mounts the script's ConfigMap in each runner. */
export const OPERATOR_MOUNT = '/test';

/** Kubernetes' limit on one ConfigMap (the object as a whole). */
export const CONFIGMAP_LIMIT_BYTES = 1_048_576;

/** A name Kubernetes takes for the TestRun, with room for its jobs' suffixes. */
export const OPERATOR_NAME = /^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$/;

/** A Kubernetes namespace (a DNS label: at most 63 characters). */
export const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function k6OperatorManifest(w: Workload, bundle: string, o: OperatorOptions): { yaml: string; configMapBytes: number } {
  if (!OPERATOR_NAME.test(o.name)) throw new RangeError(`name ${JSON.stringify(o.name)}: expected lowercase letters, digits and '-', at most 42 characters, starting and ending with a letter or digit`);
  if (!NAMESPACE_NAME.test(o.namespace)) throw new RangeError(`namespace ${JSON.stringify(o.namespace)}: expected lowercase letters, digits and '-', at most 63 characters`);
  if (!(Number.isInteger(o.parallelism) && o.parallelism >= 1 && o.parallelism <= 1000)) throw new RangeError(`parallelism must be a whole number from 1 to 1000, got ${o.parallelism}`);
  const data: Record<string, string> = {
    'scenario.js': bundle,
    'config.json': JSON.stringify(k6Config(w, (i) => `${OPERATOR_MOUNT}/prompts-${i}.json`)),
  };
  w.mix.forEach((m, i) => {
    if (m.prompts) data[`prompts-${i}.json`] = JSON.stringify(m.prompts);
  });
  const configMapBytes = Object.entries(data).reduce((a, [k, v]) => a + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (configMapBytes > CONFIGMAP_LIMIT_BYTES - 4096) {
    throw new RangeError(`the scenario, its config and prompts come to ${configMapBytes} bytes: more than one ConfigMap holds (1 MiB). Use fewer prompts, or put the files on a volume (k6-operator's script.volumeClaim)`);
  }
  const labels = { 'app.kubernetes.io/managed-by': 'gauntlet', 'gauntlet.load': o.name };
  const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${o.name}-scenario`, namespace: o.namespace, labels }, data };
  const testRun = {
    apiVersion: 'k6.io/v1alpha1',
    kind: 'TestRun',
    metadata: { name: o.name, namespace: o.namespace, labels },
    spec: {
      parallelism: o.parallelism,
      script: { configMap: { name: `${o.name}-scenario`, file: 'scenario.js' } },
      // each runner's JSON output on its stdout: `kubectl logs job/<name>-<i>` reads it back
      arguments: `--no-usage-report --no-summary --out json=- -e GAUNTLET_CONFIG=${OPERATOR_MOUNT}/config.json`,
      ...(o.image ? { runner: { image: o.image } } : {}),
    },
  };
  return { yaml: `${stringify(configMap, { lineWidth: 0 })}---\n${stringify(testRun, { lineWidth: 0 })}`, configMapBytes };
}
