/** The scheduler's view of the hosts (shared by placement, replacement and drain). */
import type { HostCandidate } from '@pgs/tenancy';
import type { StoreTx } from './store/store.js';

/** Builds the scheduler's view of the hosts, with allocations summed from the placements. */
export function hostCandidates(tx: StoreTx): HostCandidate[] {
  const hosts = tx.listHosts();
  const placements = tx.listPlacements();
  const allocated = new Map(hosts.map((h) => [h.id, { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 }]));
  const tenants = new Map(tx.listTenants().map((t) => [t.id, t]));
  for (const p of placements) {
    const a = allocated.get(p.hostId);
    const t = tenants.get(p.tenantId);
    if (!a || !t) continue;
    a.cpuMillis += t.spec.resources.cpuMillis;
    a.memoryMib += t.spec.resources.memoryMib;
    a.diskMib += t.spec.resources.diskMib;
    a.instances += 1;
  }
  return hosts.map((h) => ({
    id: h.id,
    state: h.state,
    cordoned: h.cordoned,
    draining: h.draining,
    capacity: h.capacity,
    allocated: allocated.get(h.id) ?? { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 },
    labels: h.labels,
  }));
}
