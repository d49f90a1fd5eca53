/** Where a tenant runs, seen from outside: its placements (via pgsctl) and its postmaster (via /proc). */
import type { Fleet } from './fleet.js';
import type { Login } from './pg-clients.js';
import type { PlacementJson } from './views.js';

/** The owner login of a tenant created by the suite (role and database named like the tenant). */
export function ownerLogin(tenantId: string, password: string, form: 'plain' | 'user.tenant' | 'options' = 'plain'): Login {
  if (form === 'user.tenant') return { user: `${tenantId}.${tenantId}`, password, database: tenantId };
  if (form === 'options') return { user: tenantId, password, database: tenantId, options: `-c pgs.tenant=${tenantId}` };
  return { user: tenantId, password, database: tenantId };
}

/** The tenant's primary placement; throws when it has none. */
export async function primaryOf(fleet: Fleet, tenantId: string): Promise<PlacementJson & { hostIndex: number }> {
  const { tenant } = await fleet.tenant(tenantId);
  const primary = tenant.placements.find((p) => p.role === 'PRIMARY') ?? tenant.placements[0];
  if (primary === undefined) throw new Error(`tenant ${tenantId} has no placement: ${JSON.stringify(tenant)}`);
  const hostIndex = fleet.hosts.findIndex((h) => h.id === primary.hostId);
  if (hostIndex < 0) throw new Error(`tenant ${tenantId} is placed on unknown host ${primary.hostId}`);
  return { ...primary, hostIndex };
}

/** The live postmaster of a tenant on host i (found by its data dir), if any. */
export function tenantPostmaster(fleet: Fleet, hostIndex: number, tenantId: string): { pid: number; dataDir: string } | undefined {
  return fleet.postmasters(hostIndex).find((p) => p.dataDir.split('/').includes(tenantId));
}

/** Every live postmaster of a tenant on any host of the fleet. */
export function tenantPostmasters(fleet: Fleet, tenantId: string): Array<{ hostIndex: number; pid: number }> {
  return fleet.hosts.flatMap((_, i) => {
    const p = tenantPostmaster(fleet, i, tenantId);
    return p ? [{ hostIndex: i, pid: p.pid }] : [];
  });
}
