/**
 * Properties of the scheduler over random fleets and batches: it never over-commits
 * memory or disk (nor cpu past the ratio), never co-locates a tenant's instances (hosts, zones),
 * places everything when a simple capacity bound says everything fits, is deterministic, and
 * answers a batch as a fresh search per request would.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FleetState } from './fleet-state.js';
import { placeOne, placeTenants } from './placement.js';
import type { HostCandidate, PlacementPolicy, PlacementRequest } from './placement-types.js';

const hostArb = (i: number): fc.Arbitrary<HostCandidate> =>
  fc
    .record({
      state: fc.constantFrom('READY', 'READY', 'READY', 'UNREACHABLE', 'DOWN'),
      cordoned: fc.constantFrom(false, false, false, true),
      draining: fc.constantFrom(false, false, false, true),
      cpu: fc.integer({ min: 1_000, max: 16_000 }),
      memory: fc.integer({ min: 512, max: 16_384 }),
      disk: fc.integer({ min: 8_192, max: 131_072 }),
      used: fc.double({ min: 0, max: 1, noNaN: true }),
      zone: fc.option(fc.constantFrom('z1', 'z2', 'z3'), { nil: undefined }),
      region: fc.constantFrom('eu', 'us'),
      maxInstances: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
      creating: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
      readySpares: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    })
    .map((h) => ({
      id: `h${String(i).padStart(2, '0')}`,
      state: h.state as HostCandidate['state'],
      cordoned: h.cordoned,
      draining: h.draining,
      capacity: { cpuMillis: h.cpu, memoryMib: h.memory, diskMib: h.disk },
      allocated: {
        cpuMillis: Math.floor(h.cpu * h.used),
        memoryMib: Math.floor(h.memory * h.used),
        diskMib: Math.floor(h.disk * h.used),
        instances: Math.floor(h.used * 3),
      },
      labels: { region: h.region, ...(h.zone === undefined ? {} : { zone: h.zone }) },
      ...(h.maxInstances === undefined ? {} : { maxInstances: h.maxInstances }),
      ...(h.creating === undefined ? {} : { creating: h.creating }),
      ...(h.readySpares === undefined ? {} : { readySpares: h.readySpares }),
    }));

const fleetArb = fc.integer({ min: 0, max: 9 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => hostArb(i))));

const requestsArb = (hostIds: readonly string[]): fc.Arbitrary<PlacementRequest[]> =>
  fc
    .array(
      fc.record({
        nodes: fc.integer({ min: 1, max: 3 }),
        cpu: fc.integer({ min: 0, max: 4_000 }),
        memory: fc.integer({ min: 0, max: 6_000 }),
        disk: fc.integer({ min: 0, max: 40_000 }),
        region: fc.option(fc.constantFrom('eu', 'us'), { nil: undefined }),
        exclude: fc.subarray([...hostIds], { maxLength: Math.min(2, hostIds.length) }),
      }),
      { maxLength: 25 },
    )
    .map((rs) =>
      rs.map((r, i) => ({
        tenantId: `t${i}`,
        nodes: r.nodes,
        resources: { cpuMillis: r.cpu, memoryMib: r.memory, diskMib: r.disk },
        placement: (r.region === undefined ? {} : { region: r.region }) as Record<string, string>,
        excludeHosts: r.exclude,
      })),
    );

const policyArb: fc.Arbitrary<Partial<PlacementPolicy>> = fc.record({
  strategy: fc.constantFrom('binpack' as const, 'spread' as const),
  cpuOvercommit: fc.constantFrom(1, 1.5, 4),
  maxCreatingPerHost: fc.constantFrom(0, 1, 2, 4),
});

const caseArb = fleetArb.chain((hosts) => fc.tuple(fc.constant(hosts), requestsArb(hosts.map((h) => h.id)), policyArb));

describe('placeTenants properties', () => {
  it('never over-commits and only uses eligible, matching hosts', () => {
    fc.assert(
      fc.property(caseArb, ([hosts, requests, policy]) => {
        const { placed } = placeTenants(hosts, requests, policy);
        const byId = new Map(hosts.map((h) => [h.id, h]));
        const added = new Map<string, { cpu: number; mem: number; disk: number; n: number }>();
        const requestOf = new Map(requests.map((r) => [r.tenantId, r]));
        for (const decision of placed) {
          const request = requestOf.get(decision.tenantId) as PlacementRequest;
          for (const id of decision.hostIds) {
            const host = byId.get(id) as HostCandidate;
            expect(host.state).toBe('READY');
            expect(host.cordoned || host.draining).toBe(false);
            for (const [k, v] of Object.entries(request.placement)) expect(host.labels[k]).toBe(v);
            const a = added.get(id) ?? { cpu: 0, mem: 0, disk: 0, n: 0 };
            a.cpu += request.resources.cpuMillis;
            a.mem += request.resources.memoryMib;
            a.disk += request.resources.diskMib;
            a.n += 1;
            added.set(id, a);
          }
        }
        for (const [id, a] of added) {
          const h = byId.get(id) as HostCandidate;
          expect(h.allocated.memoryMib + a.mem).toBeLessThanOrEqual(h.capacity.memoryMib);
          expect(h.allocated.diskMib + a.disk).toBeLessThanOrEqual(h.capacity.diskMib);
          expect(h.allocated.cpuMillis + a.cpu).toBeLessThanOrEqual(h.capacity.cpuMillis * (policy.cpuOvercommit ?? 1));
          if (h.maxInstances !== undefined) expect(h.allocated.instances + a.n).toBeLessThanOrEqual(h.maxInstances);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('never co-locates instances of one tenant, by host or by zone, nor uses its excluded hosts', () => {
    fc.assert(
      fc.property(caseArb, ([hosts, requests, policy]) => {
        const { placed, unplaced } = placeTenants(hosts, requests, policy);
        const byId = new Map(hosts.map((h) => [h.id, h]));
        const requestOf = new Map(requests.map((r) => [r.tenantId, r]));
        expect(placed.length + unplaced.length).toBe(requests.length);
        for (const decision of placed) {
          const request = requestOf.get(decision.tenantId) as PlacementRequest;
          expect(decision.hostIds).toHaveLength(request.nodes);
          expect(new Set(decision.hostIds).size).toBe(decision.hostIds.length);
          for (const id of decision.hostIds) expect(request.excludeHosts).not.toContain(id);
          const zoneOf = (id: string): string | undefined => byId.get(id)?.labels.zone;
          const zones = decision.hostIds.map(zoneOf).filter((z) => z !== undefined);
          expect(new Set(zones).size).toBe(zones.length);
          // Existing instances may share a zone (that was before us); new ones avoid all of theirs.
          const taken = new Set((request.excludeHosts ?? []).map(zoneOf).filter((z) => z !== undefined));
          for (const z of zones) expect(taken.has(z)).toBe(false);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('places everything when every host can take its share of the largest request', () => {
    // Bound: a host h with room for k_h copies of the largest request accepts at least k_h
    // instances of any request. A tenant of n nodes can only fail if every host it does not
    // use yet is full, i.e. the smallest (H - n + 1) hosts hold all instances so far. So when
    // the total instance count N <= sum of the smallest (H - m + 1) k_h (m = most nodes), all fit.
    const hostsArb = fc.array(
      fc.record({
        cpu: fc.integer({ min: 4_000, max: 32_000 }),
        memory: fc.integer({ min: 4_096, max: 65_536 }),
        disk: fc.integer({ min: 65_536, max: 1_048_576 }),
      }),
      { minLength: 1, maxLength: 8 },
    );
    const reqsArb = fc.array(
      fc.record({
        nodes: fc.integer({ min: 1, max: 3 }),
        cpu: fc.integer({ min: 1, max: 2_000 }),
        memory: fc.integer({ min: 1, max: 4_096 }),
        disk: fc.integer({ min: 1, max: 16_384 }),
      }),
      { maxLength: 40 },
    );
    fc.assert(
      fc.property(hostsArb, reqsArb, policyArb, (hostSpecs, reqSpecs, policy) => {
        const ratio = policy.cpuOvercommit ?? 1;
        const hosts: HostCandidate[] = hostSpecs.map((h, i) => ({
          id: `h${i}`,
          state: 'READY',
          cordoned: false,
          draining: false,
          capacity: { cpuMillis: h.cpu, memoryMib: h.memory, diskMib: h.disk },
          allocated: { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 },
          labels: {},
        }));
        const requests: PlacementRequest[] = reqSpecs.map((r, i) => ({
          tenantId: `t${i}`,
          nodes: r.nodes,
          resources: { cpuMillis: r.cpu, memoryMib: r.memory, diskMib: r.disk },
          placement: {},
        }));
        const max = (f: (r: (typeof reqSpecs)[number]) => number): number => Math.max(1, ...reqSpecs.map(f));
        const [mc, mm, md] = [max((r) => r.cpu), max((r) => r.memory), max((r) => r.disk)];
        const k = hostSpecs.map((h) => Math.min(Math.floor((h.cpu * ratio) / mc), Math.floor(h.memory / mm), Math.floor(h.disk / md))).sort((a, b) => a - b);
        const m = Math.max(1, ...reqSpecs.map((r) => r.nodes));
        const total = reqSpecs.reduce((sum, r) => sum + r.nodes, 0);
        const bound = m > hosts.length ? -1 : k.slice(0, hosts.length - m + 1).reduce((a, b) => a + b, 0);
        fc.pre(total <= bound);
        const { unplaced } = placeTenants(hosts, requests, policy);
        expect(unplaced).toEqual([]);
      }),
      { numRuns: 400 },
    );
  });

  it('answers every request of a batch as a fresh search (and explanation) would, shapes repeating', () => {
    // Few shapes, many tenants: a shape that found no host is answered again from memory while
    // nothing was allocated since; that must never change an answer.
    const shapeArb = fc.record({
      nodes: fc.integer({ min: 1, max: 2 }),
      memory: fc.constantFrom(512, 2_048, 8_192),
      region: fc.option(fc.constantFrom('eu', 'us'), { nil: undefined }),
      exclude: fc.constantFrom(false, false, false, true),
    });
    const batchArb = fleetArb.chain((hosts) =>
      fc.tuple(fc.constant(hosts), fc.array(shapeArb, { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { maxLength: 40 }), policyArb),
    );
    fc.assert(
      fc.property(batchArb, ([hosts, shapes, picks, policy]) => {
        const requests: PlacementRequest[] = picks.map((pick, i) => {
          const s = shapes[pick % shapes.length] as (typeof shapes)[number];
          return {
            tenantId: `t${i}`,
            nodes: s.nodes,
            resources: { cpuMillis: 1_000, memoryMib: s.memory, diskMib: 8_192 },
            placement: (s.region === undefined ? {} : { region: s.region }) as Record<string, string>,
            ...(s.exclude && hosts.length > 0 ? { excludeHosts: [(hosts[0] as HostCandidate).id] } : {}),
          };
        });
        // The reference: every request searched for (and explained) on its own, in order.
        const fleet = new FleetState(hosts, policy);
        const expected = requests.map((r) => {
          const result = placeOne(fleet, r, fleet.footprint(r.excludeHosts));
          return typeof result === 'string' ? { tenantId: r.tenantId, reason: result } : { tenantId: r.tenantId, hostIds: result.map((h) => fleet.hostId(h)) };
        });
        const { placed, unplaced } = placeTenants(hosts, requests, policy);
        expect([...placed, ...unplaced].sort((a, b) => Number(a.tenantId.slice(1)) - Number(b.tenantId.slice(1)))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic and independent of host order', () => {
    fc.assert(
      fc.property(caseArb, fc.integer(), ([hosts, requests, policy], seed) => {
        const first = placeTenants(hosts, requests, policy);
        expect(placeTenants(hosts, requests, policy)).toEqual(first);
        const shuffled = [...hosts].sort((a, b) => ((a.id.charCodeAt(2) * 31 + seed) % 7) - ((b.id.charCodeAt(2) * 31 + seed) % 7));
        expect(placeTenants(shuffled, requests, policy)).toEqual(first);
      }),
      { numRuns: 200 },
    );
  });
});
