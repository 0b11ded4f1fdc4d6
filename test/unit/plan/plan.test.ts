import { describe, expect, it } from 'vitest';
import { faultKinds } from '../../../faults/index.js';
import { isGauntletError } from '../../../src/errors.js';
import { loadPlanFile, parsePlanText } from '../../../src/plan/load.js';
import { faultSchedule } from '../../../src/run/runner.js';

const fixture = (name: string): string => new URL(`../../fixtures/plans/${name}`, import.meta.url).pathname;

function planError(name: string): { code: string; message: string } {
  try {
    loadPlanFile(fixture(name));
  } catch (err) {
    if (isGauntletError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error(`${name} was accepted`);
}

describe('valid plans', () => {
  it('the demo plan parses with defaults filled in, and names every fault kind', () => {
    const plan = loadPlanFile(new URL('../../../scenarios/demo.yaml', import.meta.url).pathname);
    expect(plan.duration).toBe(170_000);
    expect(plan.targets.map((t) => t.label)).toEqual(['node-a', 'node-b']);
    expect(plan.load).toMatchObject({ engine: 'builtin', rate: 8, arrival: 'poisson', stream: true, timeout: 20_000 });
    expect(plan.faults[0]?.params).toEqual({ mode: 'crash', stop_timeout: 10_000 });
    expect(plan.faults[1]?.params).toEqual({ duration: 6000 }); // "6s", parsed by the plug-in's schema
    expect([...new Set(plan.faults.map((f) => f.kind))].sort()).toEqual(faultKinds());
    expect(plan.probes.fast_interval).toBe(100);
    expect(plan.mtbf_target).toBe(1000 * 3_600_000);
  });

  it('the certification plan parses', () => {
    const plan = loadPlanFile(new URL('../../../scenarios/certify-72h.yaml', import.meta.url).pathname);
    expect(plan.duration).toBe(72 * 3_600_000);
    expect(plan.probes.interval).toBe(10_000);
  });

  it('the nightly soak plan parses: 6 h, a crash of each node', () => {
    const plan = loadPlanFile(new URL('../../../scenarios/nightly.yaml', import.meta.url).pathname);
    expect(plan.duration).toBe(6 * 3_600_000);
    expect(plan.faults.map((f) => `${f.kind}:${f.target}`)).toEqual(['node-kill:node-a', 'node-kill:node-b']);
  });

  it('expands every/start into occurrences inside the duration', () => {
    const plan = parsePlanText(`
name: p
duration: 100s
targets: [{ name: a, container: c }]
load: { rate: 1 }
faults:
  - { kind: node-kill, target: a, every: 30s }
  - { kind: node-kill, target: a, every: 40s, start: 5s }
  - { kind: node-kill, target: a, at: 50s }
`);
    expect(faultSchedule(plan).map((o) => o.offsetMs / 1000)).toEqual([5, 30, 45, 50, 60, 85, 90]);
  });
});

describe('bad plans are refused before anything runs, naming line, field, value and expectation', () => {
  it('a duration that is not one', () => {
    const e = planError('bad-duration.yaml');
    expect(e.code).toBe('GAUNTLET_PLAN_INVALID');
    expect(e.message).toContain('bad-duration.yaml:2: duration: got "10 minutes"; expected duration as a duration like "500ms", "90s", "3m" or "72h"');
  });

  it('an unknown key, at its own line, with the keys that would do', () => {
    expect(planError('unknown-key.yaml').message).toContain('unknown-key.yaml:8: load.burst_factor: unknown key; expected one of engine, script, rate,');
  });

  it('a misspelt key: did you mean, at every level', () => {
    const e = (text: string): string => {
      try {
        parsePlanText(text, 'p.yaml');
      } catch (err) {
        if (isGauntletError(err)) return err.message;
      }
      throw new Error('accepted');
    };
    const m = e('name: p\nduration: 30s\ntargets:\n  - name: a\n    endpont: http://127.0.0.1:1\nload:\n  rat: 2\nprobs: {}\n');
    expect(m).toContain('p.yaml:5: targets[0].endpont: unknown key; did you mean "endpoint"?');
    expect(m).toContain('p.yaml:7: load.rat: unknown key; did you mean "rate"?');
    expect(m).toContain('p.yaml:8: probs: unknown key; did you mean "probes"?');
    expect(e('name: p\nduration: 30s\ntargets: [{ name: a, container: c }]\nload: { rate: 1 }\nfaults: [{ kind: node-kil, target: a, at: 1s }]\n')).toContain(
      'p.yaml:5: faults[0].kind: got "node-kil"; did you mean "node-kill"?',
    );
  });

  it('problems across fields are listed with the schema problems, in one go, in file order', () => {
    let message = '';
    try {
      parsePlanText('name: p\nduration: 10 minutes\ntargets: [{ name: a, container: c }]\nload: { rate: -1 }\nfaults:\n  - { kind: node-kill, target: b, at: 1s }\n', 'p.yaml');
    } catch (err) {
      message = (err as Error).message;
    }
    const lines = message.split('\n').slice(1);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain('p.yaml:2: duration: got "10 minutes"');
    expect(lines[1]).toContain('p.yaml:4: load.rate: got -1');
    expect(lines[2]).toContain('p.yaml:6: faults[0].target: got "b"; expected one of the plan\'s targets (a)');
  });

  it('a certification longer than a week is a plan (1000 h MTBF at 90 % takes 2303 node-hours); over a year is a typo', () => {
    const plan = (d: string): string => `name: p\nduration: ${d}\ntargets: [{ name: a, endpoint: "http://127.0.0.1:1" }]\nload: { rate: 1 }\n`;
    expect(parsePlanText(plan('300h')).duration).toBe(300 * 3_600_000);
    expect(() => parsePlanText(plan('9000h'), 'p.yaml')).toThrow(/p\.yaml:2: duration: got "9000h"; expected duration between 1s and 8760h/);
  });

  it('a fault aimed at a target the plan does not have', () => {
    expect(planError('fault-target-missing.yaml').message).toContain('fault-target-missing.yaml:10: faults[0].target: got "node-c"; expected one of the plan\'s targets (node-a)');
  });

  it('a Docker fault against a bare endpoint', () => {
    expect(planError('fault-on-bare-endpoint.yaml').message).toContain('faults[0].target: node-kill needs a container target, but "ext" is a bare endpoint');
  });

  it('an unknown fault kind lists the known ones', () => {
    expect(planError('fault-unknown-kind.yaml').message).toContain(`faults[0].kind: got "meteor-strike"; expected one of ${faultKinds().join(', ')}`);
    expect(faultKinds()).toEqual(expect.arrayContaining(['node-kill', 'hang', 'oom', 'packet-loss', 'gpu-worker-kill']));
  });

  it("fault params are checked against the plug-in's schema", () => {
    expect(planError('fault-bad-params.yaml').message).toMatch(/fault-bad-params\.yaml:13: faults\[0\]\.params\.mode: got "vaporize"; expected one of "crash"\|"stop"\|"restart"/);
  });

  it('a fault after the end', () => {
    const m = planError('fault-after-end.yaml').message;
    expect(m).toContain('fault-after-end.yaml:11: faults[0].at: fault at 90s never happens: the plan lasts 60s');
    expect(m).toContain('faults[1].start: fault at 70s never happens');
  });

  it('at together with every', () => {
    expect(planError('fault-at-and-every.yaml').message).toContain('fault-at-and-every.yaml:11: faults[0].at: expected exactly one of at or every');
  });

  it('YAML syntax errors', () => {
    const e = planError('not-yaml.yaml');
    expect(e.code).toBe('GAUNTLET_PLAN_YAML');
    expect(e.message).toMatch(/not-yaml\.yaml is not valid YAML/);
  });

  it('lists every problem at once', () => {
    const m = planError('many-problems.yaml').message;
    expect(m).toContain('name: got "has spaces"; expected a name of letters');
    expect(m).toContain('duration: got "-5s"');
    expect(m).toContain('targets: got []; expected at least one target');
    expect(m).toContain('load.rate: got 0');
    expect(m).toContain('load.arrival: got "bursty"; expected one of "constant"|"poisson"');
    expect(m).toContain('confidence: got 1.5');
  });

  it('duplicate target names and a target with nothing to reach', () => {
    const m = planError('duplicate-targets.yaml').message;
    expect(m).toContain('duplicate-targets.yaml:8: targets[2].endpoint: expected container, label or endpoint (a bare endpoint needs endpoint)');
  });

  it('duplicate names once the targets are well-formed', () => {
    expect(() =>
      parsePlanText(`
name: p
duration: 10s
targets: [{ name: a, endpoint: "http://127.0.0.1:1" }, { name: a, endpoint: "http://127.0.0.1:2" }]
load: { rate: 1 }
`),
    ).toThrow(/targets\[1\]\.name: got "a"; target names must be unique/);
  });

  it('a missing file', () => {
    const e = planError('no-such-plan.yaml');
    expect(e.code).toBe('GAUNTLET_PLAN_UNREADABLE');
    expect(e.message).toMatch(/ENOENT/);
  });
});

describe('the load section (P2 workload model)', () => {
  const base = (load: string): string => `name: p\nduration: 60s\ntargets: [{ name: a, endpoint: "http://127.0.0.1:1" }]\nload:\n${load}\n`;
  /** The message a plan with this load section is refused with ('accepted' when it is not). */
  const loadRefusal = (load: string): string => {
    try {
      parsePlanText(base(load));
    } catch (err) {
      return (err as Error).message;
    }
    return 'accepted';
  };

  it('accepts stages, gamma arrivals, a cap, retries and a weighted mix with length distributions', () => {
    const plan = parsePlanText(
      base(`  stages: [{ duration: 10s, target: 5 }, { duration: 0s, target: 20 }, { duration: 30s, target: 20 }]
  arrival: gamma
  burstiness: 0.5
  max_in_flight: 64
  retry: { attempts: 3, backoff: 100ms }
  mix:
    - { name: short, weight: 3, prompt_tokens: { uniform: [16, 64] }, max_tokens: 32 }
    - { name: long, weight: 1, api: completions, stream: false, prompt_tokens: { lognormal: { median: 1000, sigma: 0.5 } }, max_tokens: { normal: { mean: 200, stddev: 50 } }, timeout: 2m }`),
    );
    expect(plan.load.stages?.[1]).toEqual({ duration: 0, target: 20 });
    expect(plan.load.retry).toEqual({ attempts: 3, backoff: 100, max_backoff: 10_000, jitter: 0.2 });
    expect(plan.load.mix?.[0]).toMatchObject({ name: 'short', weight: 3, prompt_tokens: { uniform: [16, 64] }, max_tokens: { fixed: 32 } });
    expect(plan.load.mix?.[1]?.timeout).toBe(120_000);
  });

  it('refuses rate with stages, burstiness without gamma, mix with single-kind fields, bad distributions', () => {
    expect(loadRefusal('  rate: 5\n  stages: [{ duration: 10s, target: 5 }]')).toContain('load.rate: expected exactly one of rate or stages');
    expect(loadRefusal('  rate: 5\n  burstiness: 2')).toContain('load.burstiness: got 2; burstiness is only used with arrival: gamma');
    expect(loadRefusal('  rate: 5\n  max_tokens: 10\n  mix: [{ weight: 1 }]')).toContain('load.max_tokens: with mix, give max_tokens inside each mix entry');
    expect(loadRefusal('  rate: 5\n  prompt_tokens: { uniform: [100, 10] }')).toContain('expected uniform: [low, high] with low ≤ high');
    expect(loadRefusal('  rate: 5\n  script: x.ts')).toContain('load.script: got "x.ts"; script is only used with engine: k6');
    for (const p of ['0', '2.5', 'many', '300']) expect(loadRefusal(`  rate: 5\n  parallelism: ${p}`)).toContain('expected auto or a whole number of load generators from 1 to 256');
  });

  it('k6 hosts: local or ssh://, instances per host, a k6 path without shell characters', () => {
    const l = parsePlanText(base('  rate: 5\n  engine: k6\n  k6_hosts: [{ host: local }, { host: "ssh://g@loadgen-1:2222", instances: 3, k6: /opt/k6/bin/k6 }]')).load;
    expect(l.k6_hosts).toEqual([
      { host: 'local', instances: 1, k6: 'k6' },
      { host: 'ssh://g@loadgen-1:2222', instances: 3, k6: '/opt/k6/bin/k6' },
    ]);
    expect(loadRefusal('  rate: 5\n  engine: k6\n  k6_hosts: [{ host: loadgen-1 }]')).toContain('expected local or ssh://[user@]host[:port]');
    expect(loadRefusal('  rate: 5\n  engine: k6\n  k6_hosts: [{ host: "ssh://h", k6: "k6; rm -rf /" }]')).toContain('expected a path or command name without spaces or shell characters');
    expect(loadRefusal('  rate: 5\n  k6_hosts: [{ host: local }]')).toContain('k6_hosts is only used with engine: k6');
    expect(loadRefusal('  rate: 5\n  engine: k6\n  parallelism: 3\n  k6_hosts: [{ host: local }]')).toContain('with k6_hosts, the instances are counted per host (1 in all): leave parallelism out');
  });

  it('k6 on Kubernetes: k6_operator with its defaults; refused beside k6_hosts, with auto, for builtin, or with targets the cluster cannot reach', () => {
    const l = parsePlanText(base('  rate: 5\n  engine: k6\n  parallelism: 4\n  k6_operator: { namespace: load-test, image: "registry.local/k6-sse:0.49", sse: true }')).load;
    expect(l.k6_operator).toEqual({ namespace: 'load-test', kubectl: 'kubectl', image: 'registry.local/k6-sse:0.49', sse: true, start_timeout: 600_000 });
    expect(loadRefusal('  rate: 5\n  k6_operator: {}')).toContain('k6_operator is only used with engine: k6');
    expect(loadRefusal('  rate: 5\n  engine: k6\n  k6_hosts: [{ host: local }]\n  k6_operator: {}')).toContain('expected k6_hosts or k6_operator, not both');
    expect(loadRefusal('  rate: 5\n  engine: k6\n  parallelism: auto\n  k6_operator: {}')).toContain("with k6_operator, parallelism is the number of runners: give a number");
    expect(loadRefusal('  rate: 5\n  engine: k6\n  k6_operator: { namespace: "Load Test" }')).toContain("expected a namespace: lowercase letters, digits and '-'");
    expect(loadRefusal('  rate: 5\n  engine: k6\n  k6_operator: { kubectl: "kubectl --token x" }')).toContain('expected a path or command name without spaces or shell characters');
    const noEndpoint = 'name: p\nduration: 60s\ntargets: [{ name: a, container: vllm-a }]\nload:\n  rate: 5\n  engine: k6\n  k6_operator: {}\n';
    expect(() => parsePlanText(noEndpoint)).toThrow(/targets\[0\]\.endpoint: with load\.k6_operator, give each target an endpoint the cluster can reach/);
  });

  it('load generators: 1 by default, a number, or auto', () => {
    expect(parsePlanText(base('  rate: 5')).load.parallelism).toBe(1);
    expect(parsePlanText(base('  rate: 5\n  parallelism: 4')).load.parallelism).toBe(4);
    expect(parsePlanText(base('  rate: 5\n  engine: k6\n  parallelism: auto')).load.parallelism).toBe('auto');
  });
});

describe('Docker engines (targets on several engines)', () => {
  const plan = (engines: string, targets = '[{ name: a, container: c1 }, { name: b, container: c2, engine: rack-b }]'): string =>
    `name: p\nduration: 60s\nengines: ${engines}\ntargets: ${targets}\nload: { rate: 1, model: m }\n`;
  const refusal = (text: string): string => {
    try {
      parsePlanText(text);
    } catch (err) {
      return (err as Error).message;
    }
    return 'accepted';
  };

  it('accepts an engine over TCP with TLS, over SSH, and on a local socket; targets name theirs', () => {
    const p = parsePlanText(plan('[{ name: rack-b, host: "tcp://10.0.0.5:2376", tls: { ca: ca.pem, cert: cert.pem, key: key.pem } }, { name: rack-c, host: "ssh://ops@10.0.0.6" }, { name: lab, host: "unix:///run/lab/docker.sock" }]'));
    expect(p.engines.map((e) => e.name)).toEqual(['rack-b', 'rack-c', 'lab']);
    expect(p.targets.map((t) => t.engine)).toEqual([undefined, 'rack-b']);
    expect(parsePlanText(plan('[{ name: rack-b, host: "tcp://127.0.0.1:2375" }]')).engines[0]?.host).toBe('tcp://127.0.0.1:2375');
  });

  it('refuses what cannot be reached safely or does not exist, naming it', () => {
    expect(refusal(plan('[{ name: rack-b, host: "tcp://10.0.0.5:2375" }]'))).toContain('engines[0].tls: got nothing; an engine on tcp://10.0.0.5 without TLS gives root on that host to anyone who can reach the port');
    expect(refusal(plan('[{ name: rack-b, host: "10.0.0.5:2376" }]'))).toContain('engines[0].host: got "10.0.0.5:2376"; expected unix:///path, tcp://host:port or ssh://user@host[:port]');
    expect(refusal(plan('[{ name: rack-b, host: "tcp://10.0.0.5" }]'))).toContain('expected a port (tcp://host:2376)');
    expect(refusal(plan('[{ name: rack-b, host: "ssh://10.0.0.5" }]'))).toContain('expected ssh://user@host[:port]');
    expect(refusal(plan('[{ name: rack-b, host: "ssh://ops@h", tls: { ca: a, cert: b, key: c } }]'))).toContain('tls is for tcp:// engines; ssh:// is encrypted by SSH');
    expect(refusal(plan('[{ name: rack-c, host: "ssh://ops@h" }]'))).toContain('targets[1].engine: got "rack-b"; expected one of the plan\'s engines (rack-c)');
    expect(refusal(plan('[{ name: rack-b, host: "ssh://ops@h" }, { name: rack-b, host: "ssh://ops@i" }]'))).toContain('engine names must be unique');
    expect(refusal(plan('[{ name: rack-b, host: "ssh://ops@h" }]', '[{ name: a, endpoint: "http://127.0.0.1:1", engine: rack-b }]'))).toContain('engine is for container targets');
  });
});
