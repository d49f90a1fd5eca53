/**
 * Which instances of a Hello change anything stored. After a coordinator restart every host says
 * Hello at once, each listing the instances it runs; almost always they are exactly what the store
 * holds (the agents kept running). Applying them anyway re-derived and rewrote every tenant of the
 * host twice (once per report, once for the host's state) on a coordinator already starved by the
 * reconnect storm. A report that would leave its placement, its health verdict and its archive
 * state as they are is answered from memory instead: its health goes to the health cache and the
 * repeated-report shortcut learns it.
 */
import type { HealthCache, InstanceHealthView } from '../live/health-cache.js';
import type { PlacementRecord, TenantRecord } from '../domain/model.js';
import type { InstanceReportView } from '../transport/mappers/agent-mapper.js';
import type { StoreReads } from '../store/contract.js';
import { changed, placementAfter } from './instance-reports.js';

/** Whether an instance counts as healthy with `health` (the health cache's rule: no report yet = running is enough). */
function healthyWith(placement: PlacementRecord, health: InstanceHealthView | undefined): boolean {
  if (placement.instanceState !== 'RUNNING') return false;
  return health === undefined || (health.up && health.acceptingConnections);
}

/**
 * True when applying `r` would change something stored about its placement or its tenant: a
 * report that is not a plain REALIZED one (a failure counts against the retry backoff, a deletion,
 * a recovery result), a tenant being deleted, a primary reporting its archiving (its last-archived
 * time is derived from reports), any fact a report sets, or a flip of the health verdict the
 * tenant's status and route were derived with (`cached`: the health cache's entry before it).
 */
export function reportChangesStored(tenant: TenantRecord, placement: PlacementRecord, r: InstanceReportView, cached: InstanceHealthView | undefined): boolean {
  if (r.realization !== 'REALIZED' || r.state === 'DELETED' || r.recovery !== undefined || tenant.deleting) return true;
  if (placement.role === 'PRIMARY' && r.health?.archive !== undefined) return true;
  // The retry policy plays no part for a REALIZED report.
  if (changed(placement, placementAfter(placement, r, placement.updatedAt, { baseMs: 0, maxMs: 0 }))) return true;
  const after = r.health ?? cached;
  return healthyWith(placement, cached) !== healthyWith({ ...placement, instanceState: r.state }, after);
}

/** A Hello's reports split into those to apply and those that change nothing stored. */
export interface HelloReports {
  apply: InstanceReportView[];
  unchanged: InstanceReportView[];
}

/** Splits the reports of `hostId`'s Hello (reads only). */
export async function splitHelloReports(tx: StoreReads, hostId: string, reports: readonly InstanceReportView[], health: HealthCache): Promise<HelloReports> {
  const out: HelloReports = { apply: [], unchanged: [] };
  for (const r of reports) {
    const tenant = await tx.tenants.get(r.tenantId);
    const placement = tenant ? (await tx.placements.list({ tenantId: r.tenantId })).find((p) => p.hostId === hostId) : undefined;
    if (!tenant || !placement || reportChangesStored(tenant, placement, r, health.get(r.tenantId, hostId))) out.apply.push(r);
    else out.unchanged.push(r);
  }
  return out;
}
