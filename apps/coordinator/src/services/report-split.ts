/**
 * Which instance reports change anything stored. An agent lists its instances in its Hello and
 * reports all of them every few seconds; almost always they are exactly what the store holds. A
 * report applied anyway costs a transaction that reads its tenant, placements, hosts, users and
 * route and derives status and route again, per instance. After a coordinator restart every host
 * says Hello at once; on a first start (or after the agents restarted) every host's first report
 * lists every instance it was just sent, and those reports of a whole fleet arrive together: applied
 * in full they re-derived every tenant while heartbeats waited unread. A report that would leave its
 * placement, its health verdict and its archive state as they are is answered from memory instead:
 * its health goes to the health cache and the repeated-report shortcut learns it.
 */
import { reportMayFlipHealth } from '@pgs/tenancy';
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
 * tenant's status and route were derived with (`cached`: the health cache's entry before it; with
 * none since start, libs/tenancy reportMayFlipHealth tells what the stored status was derived with).
 */
export function reportChangesStored(tenant: TenantRecord, placement: PlacementRecord, r: InstanceReportView, cached: InstanceHealthView | undefined): boolean {
  if (r.realization !== 'REALIZED' || r.state === 'DELETED' || r.recovery !== undefined || tenant.deleting) return true;
  if (placement.role === 'PRIMARY' && r.health?.archive !== undefined) return true;
  // The retry policy plays no part for a REALIZED report.
  if (changed(placement, placementAfter(placement, r, placement.updatedAt, { baseMs: 0, maxMs: 0 }))) return true;
  return reportMayFlipHealth({
    seen: cached === undefined ? undefined : healthyWith(placement, cached),
    reported: healthyWith({ ...placement, instanceState: r.state }, r.health ?? cached),
    status: tenant.status,
    statusReason: tenant.statusReason,
  });
}

/** Reported instances from which the host's placements are read at once rather than tenant by tenant. */
const HOST_READ_FROM = 16;

/** Reports split into those to apply and those that change nothing stored. */
export interface SplitReports {
  apply: InstanceReportView[];
  unchanged: InstanceReportView[];
}

/** Splits reports of `hostId`'s instances (reads only, each kind once for the batch). */
export async function splitReports(tx: StoreReads, hostId: string, reports: readonly InstanceReportView[], health: HealthCache): Promise<SplitReports> {
  const out: SplitReports = { apply: [], unchanged: [] };
  if (reports.length === 0) return out;
  const ids = [...new Set(reports.map((r) => r.tenantId))];
  // An instance reported twice in one batch is applied in order, each report over what the one before left.
  const twice = new Set(ids.length === reports.length ? [] : reports.map((r) => r.tenantId).filter((id, i, all) => all.indexOf(id) !== i));
  const tenants = new Map((await tx.tenants.getMany(ids)).map((t) => [t.id, t]));
  // A host's full report (most of its instances) reads the host's placements at once, a few reports their tenants'.
  const read = ids.length >= HOST_READ_FROM ? await tx.placements.list({ hostId }) : await tx.placements.listOfTenants([...tenants.keys()]);
  const placements = new Map(read.filter((p) => p.hostId === hostId).map((p) => [p.tenantId, p]));
  for (const r of reports) {
    const tenant = tenants.get(r.tenantId);
    const placement = placements.get(r.tenantId);
    if (!tenant || !placement || twice.has(r.tenantId) || reportChangesStored(tenant, placement, r, health.get(r.tenantId, hostId))) out.apply.push(r);
    else out.unchanged.push(r);
  }
  return out;
}
