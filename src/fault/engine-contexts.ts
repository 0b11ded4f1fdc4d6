// A fault's context on its node's engine: the engine's Docker client and its host (this machine
// for a local socket, the engine's agent otherwise). Made once per engine and run; `close()`
// removes the agents started.
import { defaultEngineSpec, engineClient, engineIsLocal, engineKey, engineLabel, type EngineSpec } from '../docker/engines.js';
import type { Docker } from '../docker/engine.js';
import { AgentHost } from './host-access.js';
import type { FaultContext } from './types.js';

export class EngineContexts {
  private readonly made = new Map<string, { docker: Docker; agent: AgentHost | null }>();
  private defaultAgent: AgentHost | null = null;

  constructor(
    /** The default engine's context (DOCKER_HOST's, this machine's host). */
    private readonly base: FaultContext,
    private readonly connect: (spec: EngineSpec) => Docker = engineClient,
  ) {}

  /** The context on the engine `spec` names (null: the default engine's). */
  for(spec: EngineSpec | null | undefined): FaultContext {
    const base = this.base;
    if (!spec || sameEngine(spec, null)) {
      // DOCKER_HOST may itself name another machine: then its host work goes through an agent too
      if (engineIsLocal(null) || !base.docker || base.host || base.processes) return { ...base, engines: this };
      this.defaultAgent ??= new AgentHost(base.docker, engineLabel(null), base.log);
      return { ...base, engines: this, host: this.defaultAgent };
    }
    const key = engineKey(spec);
    let m = this.made.get(key);
    if (!m) {
      const docker = this.connect(spec);
      m = { docker, agent: engineIsLocal(spec) ? null : new AgentHost(docker, engineLabel(spec), base.log) };
      this.made.set(key, m);
    }
    // caps are the default host's: a remote host's are probed through its agent
    const { caps: _caps, processes: _processes, ...rest } = base;
    return { ...rest, docker: m.docker, engine: spec, engines: this, ...(m.agent ? { host: m.agent } : {}) };
  }

  /** The Docker client of an engine (made on first use). */
  docker(spec: EngineSpec | null | undefined): Docker | null {
    return this.for(spec).docker;
  }

  /** Removes every agent container started for these engines. */
  async close(): Promise<void> {
    await Promise.all([...this.made.values()].map((m) => m.agent?.close()));
    await this.defaultAgent?.close();
  }
}

/** Same engine: the same spec, where the default (null) is DOCKER_HOST's (its spec when it is another machine's). */
export function sameEngine(a: EngineSpec | null | undefined, b: EngineSpec | null | undefined): boolean {
  const d = defaultEngineSpec();
  const key = (s: EngineSpec | null | undefined): string => (s ? engineKey(s) : d ? engineKey(d) : '');
  return key(a) === key(b);
}

/** What the ledger records of a target's engine: its spec (DOCKER_HOST's when that is another machine), or null for a socket here. */
export function ledgerEngine(spec: EngineSpec | null | undefined): string | null {
  const s = spec ?? defaultEngineSpec();
  return s ? engineKey(s) : null;
}

/**
 * The context for work on `spec`'s engine, through the context's registry. A context with no
 * registry (a caller that knows one engine) serves its own engine only.
 */
export function contextFor(ctx: FaultContext, spec: EngineSpec | null | undefined): FaultContext {
  if (sameEngine(ctx.engine, spec)) return ctx;
  if (!ctx.engines) throw new Error(`no context for engine ${spec ? `${spec.name} (${spec.host})` : 'default'}: the caller knows only ${ctx.engine ? ctx.engine.name : 'the default engine'}`);
  return ctx.engines.for(spec);
}
