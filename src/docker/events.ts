// Docker engine events, parsed at the edge with zod. Only container events matter to the
// detector; what they mean here was checked on a real engine (test/fixtures/real/docker):
// a crash is `die` with no `kill` before it, an OOM kill is `oom` then `die` exitCode 137,
// and an automatic restart is a plain `start` (there is no `restart` event).
import { z } from 'zod';

const RawEvent = z.object({
  Type: z.string(),
  Action: z.string(),
  Actor: z.object({ ID: z.string(), Attributes: z.record(z.string(), z.string()).optional().default({}) }),
  time: z.number(),
  timeNano: z.number(),
});

export type ContainerAction = 'create' | 'start' | 'die' | 'kill' | 'oom' | 'stop' | 'pause' | 'unpause' | 'destroy' | 'restart' | 'other';

export interface ContainerEvent {
  containerId: string;
  /** The action, with any ": detail" suffix (exec_start: …, health_status: …) removed. */
  action: ContainerAction;
  rawAction: string;
  /** Epoch ms with sub-ms precision, from timeNano. */
  at: number;
  name: string | undefined;
  exitCode: number | undefined;
  signal: string | undefined;
  attributes: Record<string, string>;
}

const KNOWN = new Set<ContainerAction>(['create', 'start', 'die', 'kill', 'oom', 'stop', 'pause', 'unpause', 'destroy', 'restart']);

export type ParsedEvent = { ok: true; event: ContainerEvent | null } | { ok: false; error: string };

/** Parses one event object (or JSON line). Non-container events give `event: null`. */
export function parseDockerEvent(input: unknown): ParsedEvent {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (err) {
      return { ok: false, error: `not JSON (${(err as Error).message}): ${input.slice(0, 120)}` };
    }
  }
  const r = RawEvent.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    return { ok: false, error: `${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}: ${JSON.stringify(value).slice(0, 160)}` };
  }
  const e = r.data;
  if (e.Type !== 'container') return { ok: true, event: null };
  const base = e.Action.split(':')[0]?.trim() ?? '';
  const attrs = e.Actor.Attributes;
  const exit = attrs.exitCode === undefined ? undefined : Number(attrs.exitCode);
  return {
    ok: true,
    event: {
      containerId: e.Actor.ID,
      action: KNOWN.has(base as ContainerAction) ? (base as ContainerAction) : 'other',
      rawAction: e.Action,
      // timeNano exceeds 2^53; the error (< 1 µs) is far below what matters here.
      at: e.timeNano / 1e6,
      name: attrs.name,
      exitCode: exit !== undefined && Number.isFinite(exit) ? exit : undefined,
      signal: attrs.signal,
      attributes: attrs,
    },
  };
}
