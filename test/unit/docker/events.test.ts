import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDockerEvent, type ContainerEvent } from '../../../src/docker/events.js';

export function fixtureEvents(name: string): ContainerEvent[] {
  const lines = readFileSync(new URL(`../../fixtures/real/docker/${name}`, import.meta.url), 'utf8').split('\n').filter(Boolean);
  return lines.flatMap((l) => {
    const r = parseDockerEvent(l);
    if (!r.ok) throw new Error(r.error);
    return r.event ? [r.event] : [];
  });
}

describe('Docker events from a real engine', () => {
  it('parses every event of the whole captured session', () => {
    const lines = readFileSync(new URL('../../fixtures/real/docker/events-all-session.jsonl', import.meta.url), 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(34);
    const parsed = lines.map((l) => parseDockerEvent(l));
    expect(parsed.every((p) => p.ok)).toBe(true);
    // network events are not container events
    expect(parsed.filter((p) => p.ok && p.event === null).length).toBeGreaterThan(0);
  });

  it('a crash is die with exit 137 and no kill before it; the restart is a plain start', () => {
    const ev = fixtureEvents('events-crash-restart-on-failure.jsonl');
    expect(ev.map((e) => e.action)).toEqual(['create', 'start', 'die', 'start']);
    const die = ev[2] as ContainerEvent;
    expect(die.exitCode).toBe(137);
    expect(die.name).toBe('fx-crash');
    expect(die.at).toBeCloseTo(1795320737426.2, 0);
  });

  it('an OOM kill is oom then die 137', () => {
    const ev = fixtureEvents('events-oom.jsonl');
    expect(ev.map((e) => e.action)).toEqual(['create', 'start', 'oom', 'die']);
    expect(ev[3]?.exitCode).toBe(137);
  });

  it('docker kill shows kill with its signal', () => {
    const ev = fixtureEvents('events-docker-kill.jsonl');
    expect(ev.map((e) => [e.action, e.signal ?? e.exitCode])).toEqual([
      ['kill', '9'],
      ['die', 137],
    ]);
  });

  it('names what is wrong with a malformed event and keeps going', () => {
    const bad = [
      '{"Type":"container","Action":"die"',
      '{"Type":"container","Action":"die","Actor":{"ID":"x","Attributes":{}},"time":1}',
      '{"Type":"container","Action":"die","Actor":{"ID":"x","Attributes":{"exitCode":1}},"time":1,"timeNano":1}',
      '[]',
    ].map((l) => parseDockerEvent(l));
    expect(bad[0]).toMatchObject({ ok: false, error: expect.stringMatching(/^not JSON/) });
    expect(bad[1]).toMatchObject({ ok: false, error: expect.stringMatching(/^timeNano: /) });
    expect(bad[2]).toMatchObject({ ok: false, error: expect.stringMatching(/^Actor\.Attributes\.exitCode: /) });
    expect(bad[3]).toMatchObject({ ok: false, error: expect.stringMatching(/^\(root\)/) });
  });

  it('strips the detail from actions like exec_start and health_status', () => {
    const r = parseDockerEvent({ Type: 'container', Action: 'health_status: unhealthy', Actor: { ID: 'x', Attributes: {} }, time: 1, timeNano: 1e9 });
    expect(r).toMatchObject({ ok: true, event: { action: 'other', rawAction: 'health_status: unhealthy', at: 1000 } });
  });
});
