/**
 * Re-derives a tenant's status (libs/tenancy deriveTenantStatus) and its route from the stored
 * facts, and writes whatever changed inside the caller's transaction. Every path that changes a
 * fact (a report, a host state, a placement, a spec) ends here, so status and route never drift.
 */
import { canTransition, deriveTenantStatus, type HostState, type PlacementView } from '@pgs/tenancy';
import type { HealthCache } from '../live/health-cache.js';
import type { PlacementRecord, RestoreRecord, TenantRecord } from '../domain/model.js';
import { restoreFailedHere, runningRestore, targetWords } from './restore-progress.js';
import { routeFor } from '../domain/route-for.js';
import type { StoreTx } from '../store/contract.js';

/** Whether an instance counts as healthy: running, and (when health was reported) accepting connections. */
export function isHealthy(placement: PlacementRecord, health: HealthCache): boolean {
  if (placement.instanceState !== 'RUNNING') return false;
  const h = health.get(placement.tenantId, placement.hostId);
  return h === undefined || (h.up && h.acceptingConnections);
}

/** The progress of a restore, in words, for the tenant's status reason. */
function restoringReason(restore: RestoreRecord, primary: PlacementRecord | undefined): string {
  const what = `restore ${restore.id} of ${restore.sourceTenantId} to ${targetWords(restore)}`;
  if (!primary) return `${what}: waiting for a host`;
  if (primary.realization === 'FAILED') return `${what}: restoring on ${primary.hostId} failed, retrying: ${primary.reason}`;
  if (primary.realization === 'PENDING' || primary.instanceState !== 'RUNNING') return `${what}: restoring on ${primary.hostId}`;
  return `${what}: recovering WAL on ${primary.hostId}`;
}

/** Statuses that end a failover in progress whatever the failover itself is doing. */
const OVERRIDES_FAILOVER = new Set<TenantRecord['status']>(['DELETING', 'STOPPING', 'STOPPED']);

/**
 * Re-derives and stores status and route of a tenant; returns the updated record. FAILING_OVER is
 * sticky: once a failover started, only the failover itself (`endFailover`), a stop or a deletion
 * ends it, so a report arriving mid-way never makes the routers connect to a half-promoted node.
 */
export async function syncTenant(
  tx: StoreTx,
  tenantId: string,
  deps: { now: number; health: HealthCache; principal?: string; endFailover?: boolean; endMove?: boolean; switching?: boolean; wakeMove?: boolean },
): Promise<TenantRecord | undefined> {
  const tenant = await tx.tenants.get(tenantId);
  if (!tenant) return undefined;
  const placements = await tx.placements.list({ tenantId });
  const hostState = new Map<string, HostState>();
  for (const p of placements) hostState.set(p.hostId, (await tx.hosts.get(p.hostId))?.state ?? 'DOWN');
  const failedRestores = new Set<string>();
  for (const p of placements) if (await restoreFailedHere(tx, p)) failedRestores.add(p.hostId);
  const views: PlacementView[] = placements.map((p) => {
    const state = hostState.get(p.hostId) ?? 'DOWN';
    // A replica lost with its host is not "pending": the tenant serves without it (degraded) until
    // its host returns or the replica is re-created elsewhere.
    if (p.role === 'REPLICA' && state === 'DOWN')
      return { hostId: p.hostId, role: p.role, realization: 'REALIZED', reason: p.reason, hostState: state, healthy: false };
    return {
      hostId: p.hostId,
      role: p.role,
      // A report for an older instance revision means the newest shape is not applied yet.
      realization: p.realization === 'REALIZED' && p.realizedRevision < tenant.instanceRevision ? 'PENDING' : p.realization,
      reason: p.reason,
      hostState: state,
      healthy: isHealthy(p, deps.health),
      // A primary whose restore failed is never sent again (it would come back empty): a person decides.
      failures: failedRestores.has(p.hostId) ? undefined : p.failures,
      instanceState: p.instanceState,
    };
  });
  let derived = deriveTenantStatus({ current: tenant.status, runState: tenant.spec.runState, deleting: tenant.deleting, placements: views });
  if (tenant.status === 'FAILING_OVER' && !deps.endFailover && !OVERRIDES_FAILOVER.has(derived.status)) {
    derived = { status: 'FAILING_OVER', reason: tenant.statusReason };
  }
  // RESTORING holds until the restore ends (its recovery result), so a restored tenant never flashes
  // ERROR or ACTIVE on the way; only a stop or a deletion overrides it.
  if (tenant.status === 'RESTORING' && !OVERRIDES_FAILOVER.has(derived.status)) {
    const restore = await runningRestore(tx, tenantId);
    if (restore)
      derived = {
        status: 'RESTORING',
        reason: restoringReason(
          restore,
          placements.find((p) => p.role === 'PRIMARY'),
        ),
      };
  }
  // MOVING holds until the move ends, like RESTORING: the extra copy being built reads as a pending
  // placement, which must not make the tenant look IN_PROGRESS or in ERROR while it serves. A lost
  // primary, a stop or a deletion still override it.
  if (
    tenant.status === 'MOVING' &&
    !deps.endMove &&
    !OVERRIDES_FAILOVER.has(derived.status) &&
    derived.status !== 'FAILING_OVER' &&
    derived.status !== 'UNAVAILABLE'
  ) {
    derived = { status: 'MOVING', reason: tenant.statusReason };
  }
  // A suspension keeps the reason it was given (when and why), which the status alone does not tell.
  if (derived.status === 'SUSPENDED' && tenant.status === 'SUSPENDED') derived = { status: 'SUSPENDED', reason: tenant.statusReason };
  let updated = tenant;
  if ((derived.status !== tenant.status || derived.reason !== tenant.statusReason) && canTransition(tenant.status, derived.status)) {
    updated = { ...tenant, status: derived.status, statusReason: derived.reason, updatedAt: deps.now };
    await tx.tenants.update(updated);
    if (derived.status !== tenant.status) {
      await tx.events.append({
        time: deps.now,
        principal: deps.principal ?? 'system:reconciler',
        action: 'tenant.status',
        tenantId,
        outcome: derived.status === 'ERROR' || derived.status === 'UNAVAILABLE' ? 'FAILURE' : 'SUCCESS',
        message: `${tenant.status} -> ${derived.status}${derived.reason ? `: ${derived.reason}` : ''}`,
        details: { from: tenant.status, to: derived.status },
      });
    }
  }
  const primary = placements.find((p) => p.role === 'PRIMARY');
  const host = primary ? await tx.hosts.get(primary.hostId) : undefined;
  // The stored route is read only where it carries a hold over (a planned switch, a wake by a move).
  const stored = updated.status === 'FAILING_OVER' || updated.status === 'MOVING' ? (await tx.routes.get(tenantId))?.state : undefined;
  // A planned switch stays SWITCHING (routers hold clients) until the failover code ends it.
  const switching = deps.switching ?? (updated.status === 'FAILING_OVER' && stored === 'SWITCHING');
  // A wake by a move of the primary stays SUSPENDED (routers hold clients) until the move's switch.
  const wakeMove = deps.wakeMove ?? (updated.status === 'MOVING' && stored === 'SUSPENDED');
  // A major upgrade's switch holds clients until its executor moves the route or gives up.
  const upgradeHold = (await tx.upgrades.get(tenantId))?.held === true;
  await tx.routes.put(
    routeFor(updated, primary, host, primary ? isHealthy(primary, deps.health) : false, await tx.users.list(tenantId), switching, upgradeHold, wakeMove),
  );
  return updated;
}
