import { describe, expect, it } from 'vitest';
import { aHost, res } from './testing/builders.js';
import { decideWake, type WakeFacts } from './wake-decision.js';
import type { WakeHost, WakeMember } from './wake-room.js';

const ask = res();
const roomy = (id: string): WakeHost => ({ id, state: 'READY', capacity: res({ memoryMib: 4_096 }), allocated: res({ cpuMillis: 0, memoryMib: 0 }) });
const full = (id: string): WakeHost => ({ id, state: 'READY', capacity: res({ memoryMib: 4_096 }), allocated: res({ cpuMillis: 1_000, memoryMib: 4_096 }) });
const member = (role: WakeMember['role'], host: WakeHost | undefined, hostId = host?.id ?? 'gone'): WakeMember => ({ role, hostId, host });

function facts(over: Partial<WakeFacts> = {}): WakeFacts {
  return {
    tenantId: 't1',
    resources: ask,
    placement: {},
    version: '',
    members: [member('PRIMARY', roomy('h1'))],
    candidates: [aHost('h1'), aHost('h2'), aHost('h3')],
    connected: new Set(['h1', 'h2', 'h3']),
    ...over,
  };
}

describe('decideWake', () => {
  it('wakes in place when every member fits on its host', () => {
    expect(decideWake(facts())).toEqual({ kind: 'in_place' });
    expect(decideWake(facts({ members: [member('PRIMARY', roomy('h1')), member('REPLICA', roomy('h2'))] }))).toEqual({ kind: 'in_place' });
  });

  it('moves the primary to a host with room when its host gave the room away, and says why', () => {
    const d = decideWake(
      facts({ members: [member('PRIMARY', full('h1'))], candidates: [aHost('h1'), aHost('h2', { allocated: { ...res(), instances: 1 } })] }),
    );
    expect(d).toEqual({
      kind: 'move',
      fromHostId: 'h1',
      role: 'PRIMARY',
      toHostId: 'h2',
      reason: 'its host h1 has no room left for it: short of memory (needs 1Gi, 0Mi free) and cpu (needs 1, 0 free)',
    });
  });

  it("picks the target by the scheduler's rules: labels, room, connected agents, zones apart from the other members", () => {
    const labelled = facts({
      members: [member('PRIMARY', full('h1'))],
      placement: { disk: 'ssd' },
      candidates: [aHost('h1'), aHost('h2'), aHost('h3', { labels: { disk: 'ssd' } })],
    });
    expect(decideWake(labelled)).toMatchObject({ kind: 'move', toHostId: 'h3' });
    const tight = facts({ members: [member('PRIMARY', full('h1'))], candidates: [aHost('h2', { capacity: res({ memoryMib: 512 }) }), aHost('h3')] });
    expect(decideWake(tight)).toMatchObject({ kind: 'move', toHostId: 'h3' });
    const offline = facts({ members: [member('PRIMARY', full('h1'))], connected: new Set(['h1', 'h3']) });
    expect(decideWake(offline)).toMatchObject({ kind: 'move', toHostId: 'h3' });
    const zoned = facts({
      members: [member('PRIMARY', full('h1')), member('REPLICA', roomy('h2'))],
      candidates: [
        aHost('h1', { labels: { zone: 'a' } }),
        aHost('h2', { labels: { zone: 'b' } }),
        aHost('h3', { labels: { zone: 'b' } }),
        aHost('h4', { labels: { zone: 'c' } }),
      ],
      connected: new Set(['h1', 'h2', 'h3', 'h4']),
    });
    expect(decideWake(zoned)).toMatchObject({ kind: 'move', fromHostId: 'h1', role: 'PRIMARY', toHostId: 'h4' });
  });

  it('moves a replica whose host gave the room away, while the primary wakes where it is', () => {
    const d = decideWake(facts({ members: [member('PRIMARY', roomy('h1')), member('REPLICA', full('h2'))] }));
    expect(d).toMatchObject({ kind: 'move', fromHostId: 'h2', role: 'REPLICA', toHostId: 'h3' });
    if (d.kind === 'move') expect(d.reason).toMatch(/^the replica on h2 cannot wake there: the host h2 has no room left for it: short of memory/);
  });

  it('refuses with the reason when no other host can take it', () => {
    const d = decideWake(facts({ members: [member('PRIMARY', full('h1'))], candidates: [aHost('h1'), aHost('h2', { capacity: res({ memoryMib: 512 }) })] }));
    expect(d.kind).toBe('refuse');
    if (d.kind === 'refuse') {
      expect(d.reason).toMatch(/^its host h1 has no room left for it: short of memory \(needs 1Gi, 0Mi free\).*, and no other host can take it \(/);
      expect(d.reason).toMatch(/: free capacity on h1 or add a host$/);
    }
    const alone = decideWake(facts({ members: [member('PRIMARY', full('h1'))], connected: new Set(['h1']) }));
    expect(alone).toMatchObject({ kind: 'refuse' });
    if (alone.kind === 'refuse') expect(alone.reason).toContain('(no other host is connected)');
  });

  it('moves one member at a time: two full hosts refuse the wake', () => {
    const d = decideWake(facts({ members: [member('PRIMARY', full('h1')), member('REPLICA', full('h2'))] }));
    expect(d).toMatchObject({ kind: 'refuse' });
    if (d.kind === 'refuse') expect(d.reason).toMatch(/^its host h1 has no room.*; the hosts h1 and h2 are all full and a wake moves one member at a time/);
  });

  it('refuses a primary whose host is gone or not ready: there is nothing to copy from', () => {
    expect(decideWake(facts({ members: [member('PRIMARY', { ...roomy('h1'), state: 'DOWN' })] }))).toEqual({ kind: 'refuse', reason: 'its host h1 is DOWN' });
    expect(decideWake(facts({ members: [member('PRIMARY', undefined, 'h1')] }))).toEqual({ kind: 'refuse', reason: 'its host is no longer registered' });
    expect(decideWake(facts({ members: [member('REPLICA', roomy('h2'))] }))).toEqual({ kind: 'refuse', reason: 'it has no placement' });
  });

  it('wakes degraded when a replica host is down or gone, however full it is', () => {
    expect(decideWake(facts({ members: [member('PRIMARY', roomy('h1')), member('REPLICA', { ...full('h2'), state: 'DOWN' })] }))).toEqual({
      kind: 'in_place',
    });
    expect(decideWake(facts({ members: [member('PRIMARY', roomy('h1')), member('REPLICA', undefined, 'h3')] }))).toEqual({ kind: 'in_place' });
  });

  it('counts cpu over-commit as the scheduler does', () => {
    const busyCpu: WakeHost = { ...roomy('h1'), allocated: res({ cpuMillis: 1_000, memoryMib: 0 }) };
    expect(decideWake(facts({ members: [member('PRIMARY', busyCpu)] }), { cpuOvercommit: 1 })).toMatchObject({ kind: 'move' });
    expect(decideWake(facts({ members: [member('PRIMARY', busyCpu)] }), { cpuOvercommit: 2 })).toEqual({ kind: 'in_place' });
  });
});
