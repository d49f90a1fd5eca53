import { describe, expect, it } from 'vitest';
import { ValidationError } from './errors.js';
import { placeTenants } from './placement.js';
import { aHost, aRequest, res } from './testing/builders.js';

describe('placeTenants', () => {
  it('bin-packs by default: the fullest host that still fits', () => {
    const hosts = [aHost('a'), aHost('b', { allocated: { cpuMillis: 0, memoryMib: 60_000, diskMib: 0, instances: 3 } }), aHost('c')];
    const { placed, unplaced } = placeTenants(hosts, [aRequest('t1'), aRequest('t2', { resources: res({ memoryMib: 8192 }) })]);
    expect(unplaced).toEqual([]);
    expect(placed).toEqual([
      { tenantId: 't1', hostIds: ['b'] },
      // b has 4512 MiB left after t1, too little for 8 GiB; a and c tie, id order picks a.
      { tenantId: 't2', hostIds: ['a'] },
    ]);
  });

  it('spreads: the host with the most free memory', () => {
    const hosts = [
      aHost('a', { allocated: { cpuMillis: 0, memoryMib: 1024, diskMib: 0, instances: 1 } }),
      aHost('b'),
      aHost('c', { capacity: { cpuMillis: 16_000, memoryMib: 32_768, diskMib: 1_048_576 } }),
    ];
    const { placed } = placeTenants(hosts, [aRequest('t1'), aRequest('t2'), aRequest('t3')], { strategy: 'spread' });
    expect(placed.map((p) => p.hostIds[0])).toEqual(['b', 'b', 'a']);
  });

  it('puts replicas of one tenant on different hosts, primary first', () => {
    const { placed } = placeTenants([aHost('a'), aHost('b'), aHost('c')], [aRequest('t', { nodes: 3 })]);
    expect(new Set(placed[0]?.hostIds).size).toBe(3);
    expect(placed[0]?.hostIds[0]).toBe('a');
  });

  it('puts replicas in different zones when hosts carry a zone label', () => {
    const hosts = [aHost('a1', { labels: { zone: 'a' } }), aHost('a2', { labels: { zone: 'a' } }), aHost('b1', { labels: { zone: 'b' } })];
    expect(placeTenants(hosts, [aRequest('t', { nodes: 2 })]).placed[0]?.hostIds).toEqual(['a1', 'b1']);
    const three = placeTenants(hosts, [aRequest('t', { nodes: 3 })]);
    expect(three.placed).toEqual([]);
    expect(three.unplaced[0]?.reason).toMatch(/^instance 3 of 3: no host fits .*: 2 already holding this tenant, 1 in a zone this tenant already uses$/);
  });

  it('honours a custom zone label', () => {
    const hosts = [aHost('a1', { labels: { rack: 'r1' } }), aHost('a2', { labels: { rack: 'r1' } })];
    expect(placeTenants(hosts, [aRequest('t', { nodes: 2 })]).placed).toHaveLength(1);
    expect(placeTenants(hosts, [aRequest('t', { nodes: 2 })], { zoneLabel: 'rack' }).placed).toHaveLength(0);
  });

  it('places a tenant whole or not at all, leaving no partial allocation behind', () => {
    const hosts = [aHost('a', { capacity: { cpuMillis: 16_000, memoryMib: 2048, diskMib: 1_048_576 } })];
    const { placed, unplaced } = placeTenants(hosts, [
      aRequest('pair', { nodes: 2, resources: res({ memoryMib: 2048 }) }),
      aRequest('solo', { resources: res({ memoryMib: 2048 }) }),
    ]);
    expect(unplaced.map((u) => u.tenantId)).toEqual(['pair']);
    expect(placed).toEqual([{ tenantId: 'solo', hostIds: ['a'] }]);
  });

  it('requires every placement label', () => {
    const hosts = [aHost('us', { labels: { region: 'us' } }), aHost('eu', { labels: { region: 'eu', disk: 'ssd' } })];
    expect(placeTenants(hosts, [aRequest('t', { placement: { region: 'eu' } })]).placed[0]?.hostIds).toEqual(['eu']);
    const none = placeTenants(hosts, [aRequest('t', { placement: { region: 'eu', disk: 'hdd' } })]);
    expect(none.unplaced[0]?.reason).toContain('2 not matching disk=hdd,region=eu');
  });

  it('excludes down, unreachable, cordoned and draining hosts, and says so', () => {
    const hosts = [
      aHost('d', { state: 'DOWN' }),
      aHost('u', { state: 'UNREACHABLE' }),
      aHost('c', { cordoned: true }),
      aHost('r', { draining: true, cordoned: true }),
    ];
    const { unplaced } = placeTenants(hosts, [aRequest('t')]);
    expect(unplaced).toEqual([
      { tenantId: 't', reason: 'no host fits (asked cpu 1, memory 1Gi, disk 8Gi) among 4 hosts: 1 down, 1 unreachable, 1 draining, 1 cordoned' },
    ]);
  });

  it('answers a backlog of one shape that fits nowhere with the reason each would get alone, and sees a placement in between', () => {
    const hosts = [aHost('a', { cordoned: true }), aHost('b', { capacity: { cpuMillis: 16_000, memoryMib: 3_072, diskMib: 1_048_576 } })];
    const big = (id: string) => aRequest(id, { resources: res({ memoryMib: 4_096 }) });
    const { placed, unplaced } = placeTenants(hosts, [big('t1'), big('t2'), aRequest('small'), big('t3')]);
    expect(placed).toEqual([{ tenantId: 'small', hostIds: ['b'] }]);
    const alone = 'no host fits (asked cpu 1, memory 4Gi, disk 8Gi) among 2 hosts: 1 cordoned, 1 short of memory';
    expect(unplaced).toEqual([
      { tenantId: 't1', reason: alone },
      { tenantId: 't2', reason: alone },
      // After "small" took memory on b the reason is worked out again (here the same words).
      { tenantId: 't3', reason: alone },
    ]);
    // A tenant that excludes hosts is explained with its own footprint.
    const excluding = placeTenants(hosts, [big('t1'), aRequest('t4', { excludeHosts: ['b'], resources: res({ memoryMib: 4_096 }) })]);
    expect(excluding.unplaced[1]?.reason).toBe('no host fits (asked cpu 1, memory 4Gi, disk 8Gi) among 2 hosts: 1 cordoned, 1 already holding this tenant');
  });

  it('never over-commits memory or disk, even at the edge', () => {
    const host = aHost('a', { capacity: { cpuMillis: 64_000, memoryMib: 4096, diskMib: 20_000 } });
    const r = placeTenants(
      [host],
      ['t1', 't2', 't3', 't4', 't5'].map((t) => aRequest(t)),
    );
    // 4 fit by memory (4 x 1 GiB) but disk stops it at 2 (2 x 8 GiB <= 20000 MiB < 3 x 8 GiB).
    expect(r.placed.map((p) => p.tenantId)).toEqual(['t1', 't2']);
    expect(r.unplaced[0]?.reason).toContain('1 short of disk');
  });

  it('over-commits cpu only up to the ratio', () => {
    const host = aHost('a', { capacity: { cpuMillis: 2000, memoryMib: 65_536, diskMib: 1_048_576 } });
    const requests = ['t1', 't2', 't3', 't4', 't5'].map((t) => aRequest(t));
    expect(placeTenants([host], requests).placed).toHaveLength(2);
    expect(placeTenants([host], requests, { cpuOvercommit: 2 }).placed).toHaveLength(4);
    expect(placeTenants([host], requests, { cpuOvercommit: 2 }).unplaced[0]?.reason).toContain('1 short of cpu');
  });

  it('respects an instance limit and existing allocations', () => {
    const host = aHost('a', { maxInstances: 3, allocated: { cpuMillis: 1000, memoryMib: 1024, diskMib: 8192, instances: 2 } });
    const r = placeTenants([host], [aRequest('t1'), aRequest('t2')]);
    expect(r.placed).toHaveLength(1);
    expect(r.unplaced[0]?.reason).toContain('1 at their instance limit');
  });

  it('avoids hosts (and their zones) the tenant already uses', () => {
    const hosts = [aHost('a', { labels: { zone: 'z1' } }), aHost('b', { labels: { zone: 'z1' } }), aHost('c', { labels: { zone: 'z2' } })];
    expect(placeTenants(hosts, [aRequest('t', { excludeHosts: ['a'] })]).placed[0]?.hostIds).toEqual(['c']);
    expect(placeTenants(hosts, [aRequest('t', { excludeHosts: ['gone'] })]).placed[0]?.hostIds).toEqual(['a']);
  });

  it('reports bad and duplicate requests instead of throwing', () => {
    const { placed, unplaced } = placeTenants(
      [aHost('a')],
      [aRequest('t'), aRequest('t'), aRequest('z', { nodes: 0 }), aRequest('n', { resources: res({ memoryMib: -1 }) }), aRequest('')],
    );
    expect(placed).toHaveLength(1);
    expect(unplaced).toEqual([
      { tenantId: 't', reason: 'duplicate request for this tenant in the same batch' },
      { tenantId: 'z', reason: 'invalid request: nodes must be a whole number, 1 or more (got 0)' },
      { tenantId: 'n', reason: 'invalid request: resources must be whole numbers, 0 or more' },
      { tenantId: '', reason: 'invalid request: empty tenant id' },
    ]);
  });

  it('says when there are no hosts at all', () => {
    expect(placeTenants([], [aRequest('t')]).unplaced[0]?.reason).toBe('no hosts in the fleet (asked cpu 1, memory 1Gi, disk 8Gi)');
  });

  it('spreads a burst of creates once a host is creating maxCreatingPerHost, bin-packing within the limit', () => {
    const hosts = [aHost('a'), aHost('b'), aHost('c')];
    const burst = Array.from({ length: 7 }, (_, i) => aRequest(`t${i}`));
    const hostOf = (r: ReturnType<typeof placeTenants>): string[] => r.placed.map((p) => p.hostIds[0] as string);
    // Without a limit bin-packing stacks the whole burst on one host.
    expect(new Set(hostOf(placeTenants(hosts, burst)))).toEqual(new Set(['a']));
    // Two each, fullest first; then every host is at the limit and the burst goes on in chunks of
    // two from the least busy level (all at 2: up to 4 each, fullest first).
    expect(hostOf(placeTenants(hosts, burst, { maxCreatingPerHost: 2 }))).toEqual(['a', 'a', 'b', 'b', 'c', 'c', 'a']);
    const backlog = Array.from({ length: 14 }, (_, i) => aRequest(`b${i}`));
    expect(hostOf(placeTenants(hosts, backlog, { maxCreatingPerHost: 2 }))).toEqual(['a', 'a', 'b', 'b', 'c', 'c', 'a', 'a', 'b', 'b', 'c', 'c', 'a', 'a']);
    // Spread spreads anyway (ties go to the last id); the limit changes nothing there.
    expect(hostOf(placeTenants(hosts, burst, { strategy: 'spread', maxCreatingPerHost: 2 }))).toEqual(
      hostOf(placeTenants(hosts, burst, { strategy: 'spread' })),
    );
  });

  it('counts the creations a host already has in flight, and only under a limit', () => {
    const full = { cpuMillis: 0, memoryMib: 60_000, diskMib: 0, instances: 3 };
    const hosts = [aHost('a'), aHost('b', { allocated: full, creating: 2 }), aHost('c', { creating: 5 })];
    // b is the fullest but busy creating; a is the next best fit below the limit.
    expect(placeTenants(hosts, [aRequest('t')], { maxCreatingPerHost: 2 }).placed[0]?.hostIds).toEqual(['a']);
    expect(placeTenants(hosts, [aRequest('t')]).placed[0]?.hostIds).toEqual(['b']);
    // Every host that fits is at the limit: the least busy level first (a creates 3, b 4).
    expect(
      placeTenants([aHost('a', { creating: 3 }), aHost('b', { allocated: full, creating: 4 })], [aRequest('t')], { maxCreatingPerHost: 1 }).placed[0]?.hostIds,
    ).toEqual(['a']);
    // Within a level (both below 6 with a limit of 3), bin-packing picks: the fullest, b.
    expect(
      placeTenants([aHost('a', { creating: 3 }), aHost('b', { allocated: full, creating: 4 })], [aRequest('t')], { maxCreatingPerHost: 3 }).placed[0]?.hostIds,
    ).toEqual(['b']);
    // A host that does not fit is never chosen, however idle.
    const tight = aHost('d', { capacity: { cpuMillis: 16_000, memoryMib: 512, diskMib: 1_048_576 } });
    expect(placeTenants([tight, aHost('e', { creating: 9 })], [aRequest('t')], { maxCreatingPerHost: 1 }).placed[0]?.hostIds).toEqual(['e']);
  });

  it('prefers hosts with a ready spare left, in the strategy order and whatever the limit, then goes on by the limit', () => {
    const full = { cpuMillis: 0, memoryMib: 60_000, diskMib: 0, instances: 3 };
    // a is the fullest but used its spares up (bin-packing sent it every create); b and c have some.
    const hosts = [aHost('a', { allocated: full, readySpares: 0 }), aHost('b', { readySpares: 3 }), aHost('c', { readySpares: 2 })];
    const burst = Array.from({ length: 7 }, (_, i) => aRequest(`t${i}`));
    const hostOf = (r: ReturnType<typeof placeTenants>): string[] => r.placed.map((p) => p.hostIds[0] as string);
    // b fills its spares (fuller than c after its first), then c; the two left go by the limit of 2:
    // a creates nothing yet, so a.
    expect(hostOf(placeTenants(hosts, burst, { maxCreatingPerHost: 2 }))).toEqual(['b', 'b', 'b', 'c', 'c', 'a', 'a']);
    // Spares count only with a limit: without one, plain bin-packing.
    expect(new Set(hostOf(placeTenants(hosts, burst.slice(0, 3))))).toEqual(new Set(['a']));
    // Creations already in flight use spares up too.
    expect(
      hostOf(
        placeTenants([aHost('a', { allocated: full, readySpares: 2, creating: 2 }), aHost('b', { readySpares: 1 })], [aRequest('t')], {
          maxCreatingPerHost: 8,
        }),
      ),
    ).toEqual(['b']);
  });

  it('refuses a bad policy and duplicate host ids', () => {
    expect(() => placeTenants([aHost('a')], [], { maxCreatingPerHost: -1 })).toThrow(/policy\.max_creating_per_host/);
    expect(() => placeTenants([aHost('a')], [], { cpuOvercommit: 0.5 })).toThrow(ValidationError);
    expect(() => placeTenants([aHost('a')], [], { strategy: 'random' as 'spread' })).toThrow(/policy\.strategy/);
    expect(() => placeTenants([aHost('a')], [], { zoneLabel: '' })).toThrow(/policy\.zone_label/);
    expect(() => placeTenants([aHost('a'), aHost('a')], [])).toThrow(/distinct host ids/);
  });

  it('does not depend on the order hosts are listed in', () => {
    const hosts = ['e', 'b', 'd', 'a', 'c'].map((id) => aHost(id));
    const requests = Array.from({ length: 40 }, (_, i) => aRequest(`t${i}`, { nodes: 1 + (i % 3), resources: res({ memoryMib: 1024 * (1 + (i % 5)) }) }));
    const forward = placeTenants(hosts, requests);
    expect(placeTenants([...hosts].reverse(), requests)).toEqual(forward);
  });
});
