/** The fleet summary (GetFleetStatus, REST /v1/fleet): counts, capacity, and problems worst first. */
import type { CoordinatorContext } from './context.js';
import { hostCandidates } from './host-candidates.js';

/** Waiting tenants listed by name in the problems; the rest are counted in one line. */
export const MAX_WAITING_LINES = 20;

/** The summary, in domain numbers. */
export interface FleetStatus {
  hostsByState: Record<string, number>;
  tenantsByStatus: Record<string, number>;
  routersConnected: number;
  agentsConnected: number;
  routeRevision: number;
  problems: string[];
  allocated: { cpuMillis: number; memoryMib: number; diskMib: number; instances: number };
  capacity: { cpuMillis: number; memoryMib: number; diskMib: number };
}

/** Computes the fleet summary from the store and the live streams. */
export function fleetStatus(ctx: CoordinatorContext, routersConnected: number): FleetStatus {
  const store = ctx.store;
  const hosts = store.listHosts();
  const tenants = store.listTenants();
  const hostsByState: Record<string, number> = {};
  const tenantsByStatus: Record<string, number> = {};
  for (const h of hosts) hostsByState[h.state] = (hostsByState[h.state] ?? 0) + 1;
  for (const t of tenants) tenantsByStatus[t.status] = (tenantsByStatus[t.status] ?? 0) + 1;
  const allocated = { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 };
  const capacity = { cpuMillis: 0, memoryMib: 0, diskMib: 0 };
  for (const c of hostCandidates(store)) {
    allocated.cpuMillis += c.allocated.cpuMillis;
    allocated.memoryMib += c.allocated.memoryMib;
    allocated.diskMib += c.allocated.diskMib;
    allocated.instances += c.allocated.instances;
    capacity.cpuMillis += c.capacity.cpuMillis;
    capacity.memoryMib += c.capacity.memoryMib;
    capacity.diskMib += c.capacity.diskMib;
  }
  const problems: string[] = [];
  for (const h of hosts.filter((x) => x.state === 'DOWN')) problems.push(`host ${h.id} DOWN since ${new Date(h.stateChangedAt).toISOString()}`);
  for (const t of tenants.filter((x) => x.status === 'UNAVAILABLE')) problems.push(`tenant ${t.id} UNAVAILABLE: ${t.statusReason}`);
  for (const t of tenants.filter((x) => x.status === 'ERROR')) problems.push(`tenant ${t.id} ERROR: ${t.statusReason}`);
  for (const h of hosts.filter((x) => x.state === 'UNREACHABLE')) problems.push(`host ${h.id} UNREACHABLE since ${new Date(h.stateChangedAt).toISOString()}`);
  // Capped: a backlog of 100,000 would otherwise make this reply megabytes long.
  const waiting = tenants.filter((x) => x.status === 'NEW' && x.statusReason.startsWith('waiting for a host'));
  for (const t of waiting.slice(0, MAX_WAITING_LINES)) problems.push(`tenant ${t.id} NEW: ${t.statusReason}`);
  if (waiting.length > MAX_WAITING_LINES) problems.push(`${waiting.length - MAX_WAITING_LINES} more tenants NEW waiting for a host`);
  return { hostsByState, tenantsByStatus, routersConnected, agentsConnected: ctx.hub.size, routeRevision: store.routeRevision(), problems, allocated, capacity };
}
