/** The scheduler's view of the hosts (shared by placement, replacement and drain). */
import type { HostCandidate } from '@pgs/tenancy';
import type { HostRecord, TenantRecord } from '../domain/model.js';
import type { HostSlots } from '../live/host-slots.js';
import type { HostAllocation, StoreReads } from '../store/contract.js';
import type { VersionCatalog } from './versions.js';

/**
 * Builds the scheduler's view of the hosts, with allocations summed from the placements and, with
 * `versions`, the PostgreSQL majors each host reported (placement then only picks hosts that run
 * the tenant's major), with `slots` the most instances each host can hold.
 */
export async function hostCandidates(tx: StoreReads, versions?: VersionCatalog, slots?: HostSlots): Promise<HostCandidate[]> {
  return candidatesFrom(await tx.hosts.list(), await tx.placements.allocations(), await tx.placements.creating(), undefined, versions, (id) => slots?.get(id));
}

/**
 * The scheduler's view of one host (undefined when it is not registered), from that host's
 * placements alone: a move start checks only its target, and summing every placement of the fleet
 * for it cost O(tenants) per start.
 */
export async function hostCandidate(tx: StoreReads, hostId: string, versions?: VersionCatalog, slots?: HostSlots): Promise<HostCandidate | undefined> {
  const host = await tx.hosts.get(hostId);
  if (!host) return undefined;
  const allocated = await tx.placements.allocationOf(hostId);
  return candidatesFrom([host], new Map([[hostId, allocated]]), await tx.placements.creating(), undefined, versions, (id) => slots?.get(id))[0];
}

/** The PostgreSQL part of a tenant's placement request: its major, and whether it has replicas. */
export function versionRequest(tenant: Pick<TenantRecord, 'spec'>): { version: string; replicated: boolean } {
  return { version: tenant.spec.version, replicated: tenant.spec.nodes > 1 };
}

/**
 * The candidates of `hosts` with the given allocations (copied: the caller may keep updating its
 * map), the instances each is still creating and, when known, its ready spares and the most
 * instances it can hold (allocations count every placement, a suspended tenant's too, as each
 * keeps its port).
 */
export function candidatesFrom(
  hosts: readonly HostRecord[],
  allocations: ReadonlyMap<string, HostAllocation>,
  creating: ReadonlyMap<string, number>,
  readySpares: (hostId: string) => number | undefined = () => undefined,
  versions?: VersionCatalog,
  instanceSlots: (hostId: string) => number | undefined = () => undefined,
): HostCandidate[] {
  return hosts.map((h) => {
    const spares = readySpares(h.id);
    const slots = instanceSlots(h.id);
    return {
      id: h.id,
      state: h.state,
      cordoned: h.cordoned,
      draining: h.draining,
      capacity: h.capacity,
      allocated: { ...(allocations.get(h.id) ?? { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 }) },
      labels: h.labels,
      creating: creating.get(h.id) ?? 0,
      ...(spares === undefined ? {} : { readySpares: spares }),
      ...(slots === undefined ? {} : { maxInstances: slots }),
      ...(versions?.placementView(h.id) ?? {}),
    };
  });
}
