/** The scheduler's view of the hosts (shared by placement, replacement and drain). */
import type { HostCandidate } from '@pgs/tenancy';
import type { HostRecord } from './model.js';
import type { HostAllocation, StoreTx } from './store/store.js';

/** Builds the scheduler's view of the hosts, with allocations summed from the placements. */
export function hostCandidates(tx: StoreTx): HostCandidate[] {
  return candidatesFrom(tx.listHosts(), tx.hostAllocations(), tx.hostsCreating());
}

/**
 * The candidates of `hosts` with the given allocations (copied: the caller may keep updating its
 * map), the instances each is still creating and, when known, its ready spares.
 */
export function candidatesFrom(
  hosts: readonly HostRecord[],
  allocations: ReadonlyMap<string, HostAllocation>,
  creating: ReadonlyMap<string, number>,
  readySpares: (hostId: string) => number | undefined = () => undefined,
): HostCandidate[] {
  return hosts.map((h) => {
    const spares = readySpares(h.id);
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
    };
  });
}
