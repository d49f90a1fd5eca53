/** The fleet summary (GetFleetStatus, REST /v1/fleet): counts, capacity, and problems worst first. */
import { instanceTlsProblem } from '../domain/instance-tls.js';
import type { TenantBackupHealth } from './backup-scheduler.js';
import type { CoordinatorContext } from './context.js';
import { hostCandidates } from './host-candidates.js';
import type { TenantRecord } from '../domain/model.js';
import type { TenantFilter } from '../store/contract.js';

/** Tenants of one kind (unavailable, in error, waiting) named in the problems; the rest are counted in one line. */
export const MAX_NAMED_TENANTS = 20;

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

/** Tenants whose backups or archiving lag behind their policy (as the backup walk last saw them), capped. */
function backupProblemLines(backups: ReadonlyMap<string, TenantBackupHealth> | undefined): string[] {
  if (!backups) return [];
  const lines: string[] = [];
  let more = 0;
  for (const [tenantId, h] of backups) {
    if (h.problems.length === 0) continue;
    if (lines.length < MAX_NAMED_TENANTS) lines.push(`tenant ${tenantId} backups: ${h.problems.join('; ')}`);
    else more++;
  }
  return more > 0 ? [...lines, `${more} more tenants with backup problems`] : lines;
}

/** Computes the fleet summary from the store and the live streams. */
export async function fleetStatus(ctx: CoordinatorContext, routersConnected: number, backups?: ReadonlyMap<string, TenantBackupHealth>): Promise<FleetStatus> {
  const store = ctx.store;
  const hosts = await store.read.hosts.list();
  const hostsByState: Record<string, number> = {};
  for (const h of hosts) hostsByState[h.state] = (hostsByState[h.state] ?? 0) + 1;
  // Counted and listed by the database (a page of each kind), never by reading every tenant.
  const tenantsByStatus = await store.read.tenants.countByStatus();
  const named = async (filter: TenantFilter, line: (t: TenantRecord) => string, rest: (n: number) => string): Promise<string[]> => {
    const shown = (await store.read.tenants.list(filter, { limit: MAX_NAMED_TENANTS })).map(line);
    const total = shown.length < MAX_NAMED_TENANTS ? shown.length : await store.read.tenants.count(filter);
    return total > shown.length ? [...shown, rest(total - shown.length)] : shown;
  };
  const allocated = { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 };
  const capacity = { cpuMillis: 0, memoryMib: 0, diskMib: 0 };
  for (const c of await hostCandidates(store.read)) {
    allocated.cpuMillis += c.allocated.cpuMillis;
    allocated.memoryMib += c.allocated.memoryMib;
    allocated.diskMib += c.allocated.diskMib;
    allocated.instances += c.allocated.instances;
    capacity.cpuMillis += c.capacity.cpuMillis;
    capacity.memoryMib += c.capacity.memoryMib;
    capacity.diskMib += c.capacity.diskMib;
  }
  const problems: string[] = [];
  const tlsOff = instanceTlsProblem(ctx.instanceTls);
  if (tlsOff) problems.push(tlsOff);
  for (const h of hosts.filter((x) => x.state === 'DOWN')) problems.push(`host ${h.id} DOWN since ${new Date(h.stateChangedAt).toISOString()}`);
  problems.push(
    ...(await named(
      { status: 'UNAVAILABLE' },
      (t) => `tenant ${t.id} UNAVAILABLE: ${t.statusReason}`,
      (n) => `${n} more tenants UNAVAILABLE`,
    )),
  );
  problems.push(
    ...(await named(
      { status: 'ERROR' },
      (t) => `tenant ${t.id} ERROR: ${t.statusReason}`,
      (n) => `${n} more tenants in ERROR`,
    )),
  );
  for (const h of hosts.filter((x) => x.state === 'UNREACHABLE')) problems.push(`host ${h.id} UNREACHABLE since ${new Date(h.stateChangedAt).toISOString()}`);
  // Capped: a backlog of 100,000 would otherwise make this reply megabytes long.
  problems.push(
    ...(await named(
      { status: 'NEW', reasonPrefix: 'waiting for a host' },
      (t) => `tenant ${t.id} NEW: ${t.statusReason}`,
      (n) => `${n} more tenants NEW waiting for a host`,
    )),
  );
  problems.push(...backupProblemLines(backups));
  return {
    hostsByState,
    tenantsByStatus,
    routersConnected,
    agentsConnected: ctx.hub.size,
    routeRevision: await store.read.routes.revision(),
    problems,
    allocated,
    capacity,
  };
}
