// A seeded, synthetic fleet and tenant batch for the placement benchmark: the same
// seed always gives the same input, so runs compare like with like.
import type { HostCandidate, PlacementRequest } from '@pgs/tenancy';

/** mulberry32: a tiny, fast, seeded PRNG; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks from weighted choices with the given random source. */
function weighted<T>(random: () => number, choices: readonly (readonly [T, number])[]): T {
  const total = choices.reduce((sum, [, w]) => sum + w, 0);
  let x = random() * total;
  for (const [value, w] of choices) {
    x -= w;
    if (x < 0) return value;
  }
  return (choices[choices.length - 1] as readonly [T, number])[0];
}

/** Shape of one benchmark scenario. */
export interface FleetShape {
  hosts: number;
  tenants: number;
  /** Share of tenants with one replica (nodes = 2). */
  replicaShare: number;
  /** Share of tenants constrained to region=eu (half the hosts carry it). */
  euShare: number;
  host: { cpuMillis: number; memoryMib: number; diskMib: number };
  /** Zones the hosts are spread over (label 'zone'); 0 = no zone labels. */
  zones: number;
}

/** The issue's scenario: 100,000 tenants (20% with one replica) onto 1,000 hosts of 96 cores, 384 GiB, 8 TiB. */
export const ISSUE_SHAPE: FleetShape = {
  hosts: 1_000,
  tenants: 100_000,
  replicaShare: 0.2,
  euShare: 0.1,
  host: { cpuMillis: 96_000, memoryMib: 384 * 1024, diskMib: 8 * 1024 * 1024 },
  zones: 3,
};

/** Builds the hosts and requests of a shape from a seed. */
export function buildFleet(shape: FleetShape, seed: number): { hosts: HostCandidate[]; requests: PlacementRequest[] } {
  const random = seededRandom(seed);
  const hosts: HostCandidate[] = Array.from({ length: shape.hosts }, (_, i) => ({
    id: `host-${String(i).padStart(5, '0')}`,
    state: 'READY',
    cordoned: false,
    draining: false,
    capacity: { ...shape.host },
    allocated: { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 },
    labels: {
      region: i % 2 === 0 ? 'eu' : 'us',
      ...(shape.zones > 0 ? { zone: `zone-${i % shape.zones}` } : {}),
    },
  }));
  const eu: Record<string, string> = { region: 'eu' };
  const anywhere: Record<string, string> = {};
  const requests: PlacementRequest[] = Array.from({ length: shape.tenants }, (_, i) => ({
    tenantId: `tenant-${i}`,
    nodes: random() < shape.replicaShare ? 2 : 1,
    resources: {
      cpuMillis: weighted(random, [
        [1_000, 70],
        [2_000, 20],
        [4_000, 10],
      ]),
      memoryMib: weighted(random, [
        [512, 10],
        [1_024, 40],
        [2_048, 30],
        [4_096, 20],
      ]),
      diskMib: weighted(random, [
        [8_192, 50],
        [16_384, 30],
        [32_768, 20],
      ]),
    },
    placement: random() < shape.euShare ? eu : anywhere,
  }));
  return { hosts, requests };
}
