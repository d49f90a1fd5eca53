import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planDrain, type DrainingInstance } from './drain.js';
import { ValidationError } from './errors.js';
import { aHost, aRequest, res } from './testing/builders.js';

/** An instance on the draining host. */
function onHost(tenantId: string, over: Partial<DrainingInstance> = {}): DrainingInstance {
  return { ...aRequest(tenantId), role: 'PRIMARY', hasReplica: false, ...over };
}

describe('planDrain', () => {
  const fleet = [aHost('old', { draining: true, cordoned: true }), aHost('a'), aHost('b')];

  it('moves every instance, least client impact first: replicas, switchovers, lone primaries', () => {
    const { moves, blocked } = planDrain('old', fleet, [
      onHost('lone'),
      onHost('paired', { hasReplica: true, excludeHosts: ['a'] }),
      onHost('copy', { role: 'REPLICA', excludeHosts: ['b'] }),
      onHost('alone2'),
    ]);
    expect(blocked).toEqual([]);
    expect(moves).toEqual([
      { tenantId: 'copy', toHostId: 'a', role: 'REPLICA', switchover: false },
      { tenantId: 'paired', toHostId: 'b', role: 'PRIMARY', switchover: true },
      { tenantId: 'alone2', toHostId: 'a', role: 'PRIMARY', switchover: false },
      { tenantId: 'lone', toHostId: 'a', role: 'PRIMARY', switchover: false },
    ]);
  });

  it('never targets the drained host, even when it is not flagged draining', () => {
    const { moves } = planDrain('old', [aHost('old'), aHost('a')], [onHost('t')]);
    expect(moves).toEqual([{ tenantId: 't', toHostId: 'a', role: 'PRIMARY', switchover: false }]);
  });

  it("keeps the tenant's other instances' zones out, but frees the drained host's zone", () => {
    const hosts = [
      aHost('old', { draining: true, labels: { zone: 'z1' } }),
      aHost('z1b', { labels: { zone: 'z1' } }),
      aHost('z2a', { labels: { zone: 'z2' } }),
      aHost('z2b', { labels: { zone: 'z2' } }),
    ];
    // Its replica lives in z2, so the primary must stay in z1: the only other z1 host.
    const { moves } = planDrain('old', hosts, [onHost('t', { hasReplica: true, excludeHosts: ['old', 'z2a'] })]);
    expect(moves.map((m) => m.toHostId)).toEqual(['z1b']);
  });

  it('blocks what no host can take, with the reason', () => {
    const small = [aHost('old', { draining: true }), aHost('a', { capacity: { cpuMillis: 16_000, memoryMib: 2048, diskMib: 1_048_576 } })];
    const { moves, blocked } = planDrain('old', small, [onHost('big', { resources: res({ memoryMib: 4096 }) }), onHost('ok')]);
    expect(moves.map((m) => m.tenantId)).toEqual(['ok']);
    expect(blocked).toEqual([{ tenantId: 'big', reason: expect.stringContaining('1 short of memory') }]);
  });

  it('plans the largest tenants first so they are not starved by small ones', () => {
    // With spread, arrival order would put the small tenant on the big host and strand the big one.
    const hosts = [
      aHost('old', { draining: true }),
      aHost('roomy', { capacity: { cpuMillis: 16_000, memoryMib: 3072, diskMib: 1_048_576 } }),
      aHost('tight', { capacity: { cpuMillis: 16_000, memoryMib: 1024, diskMib: 1_048_576 } }),
    ];
    const plan = planDrain('old', hosts, [onHost('small'), onHost('large', { resources: res({ memoryMib: 3072 }) })], { strategy: 'spread' });
    expect(plan.blocked).toEqual([]);
    expect(Object.fromEntries(plan.moves.map((m) => [m.tenantId, m.toHostId]))).toEqual({ large: 'roomy', small: 'tight' });
  });

  it('blocks duplicates and bad entries, and refuses an unknown host', () => {
    const { blocked } = planDrain('old', fleet, [onHost('t'), onHost('t'), onHost('bad', { resources: res({ cpuMillis: -1 }) })]);
    expect(blocked.map((b) => b.reason)).toEqual(['invalid request: resources must be whole numbers, 0 or more', 'listed twice on the draining host']);
    expect(() => planDrain('nope', fleet, [])).toThrow(ValidationError);
  });

  it('never over-commits a target and accounts for every tenant exactly once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1024, max: 8192 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.record({ memory: fc.integer({ min: 256, max: 4096 }), role: fc.constantFrom('PRIMARY' as const, 'REPLICA' as const) }), { maxLength: 20 }),
        (capacities, tenants) => {
          const hosts = [
            aHost('old', { draining: true }),
            ...capacities.map((memoryMib, i) => aHost(`h${i}`, { capacity: { cpuMillis: 64_000, memoryMib, diskMib: 1_048_576 } })),
          ];
          const instances = tenants.map((t, i) => onHost(`t${i}`, { role: t.role, resources: res({ memoryMib: t.memory, diskMib: 0 }) }));
          const { moves, blocked } = planDrain('old', hosts, instances);
          expect([...moves.map((m) => m.tenantId), ...blocked.map((b) => b.tenantId)].sort()).toEqual(instances.map((t) => t.tenantId).sort());
          const used = new Map<string, number>();
          for (const move of moves) {
            expect(move.toHostId).not.toBe('old');
            const memory = instances.find((t) => t.tenantId === move.tenantId)?.resources.memoryMib ?? 0;
            used.set(move.toHostId, (used.get(move.toHostId) ?? 0) + memory);
          }
          for (const [id, mem] of used) expect(mem).toBeLessThanOrEqual(hosts.find((h) => h.id === id)?.capacity.memoryMib ?? 0);
        },
      ),
    );
  });
});
