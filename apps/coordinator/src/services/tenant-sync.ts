/**
 * Re-derives a tenant's status (libs/tenancy deriveTenantStatus) and its route from the stored
 * facts, and writes whatever changed inside the caller's transaction. Every path that changes a
 * fact (a report, a host state, a placement, a spec) ends here, so status and route never drift.
 * Many tenants are synced as one batch (a placement slice, a host's tenants): each kind of fact is
 * read once for all of them and each kind of write is one statement, so on a store across the
 * network a batch costs a handful of round trips instead of some fifteen per tenant.
 */
import { canTransition, deriveTenantStatus, type HostState, type PlacementView } from '@pgs/tenancy';
import type { HealthCache } from '../live/health-cache.js';
import type { HostRecord, NewEvent, PlacementRecord, RestoreRecord, RouteRecord, TenantRecord, UpgradeRecord, UserRecord } from '../domain/model.js';
import { targetWords } from './restore-progress.js';
import { routeFor } from '../domain/route-for.js';
import type { StoreTx } from '../store/contract.js';
import { groupBy } from './group-by.js';

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

/** What a sync may be told besides the facts. */
export interface SyncDeps {
  now: number;
  health: HealthCache;
  principal?: string;
  endFailover?: boolean;
  endMove?: boolean;
  switching?: boolean;
  wakeMove?: boolean;
}

/**
 * Re-derives and stores status and route of a tenant; returns the updated record. FAILING_OVER is
 * sticky: once a failover started, only the failover itself (`endFailover`), a stop or a deletion
 * ends it, so a report arriving mid-way never makes the routers connect to a half-promoted node.
 */
export async function syncTenant(tx: StoreTx, tenantId: string, deps: SyncDeps): Promise<TenantRecord | undefined> {
  return (await syncTenants(tx, [tenantId], deps)).get(tenantId);
}

/** The facts of a batch of tenants, each kind read once for all of them. */
interface Facts {
  tenants: TenantRecord[];
  placements: Map<string, PlacementRecord[]>;
  hosts: Map<string, HostRecord>;
  restores: Map<string, RestoreRecord[]>;
  upgrades: Map<string, UpgradeRecord>;
  users: Map<string, UserRecord[]>;
}

async function readFacts(tx: StoreTx, tenantIds: readonly string[]): Promise<Facts> {
  const tenants = await tx.tenants.getMany(tenantIds);
  const ids = tenants.map((t) => t.id);
  if (ids.length === 0) return { tenants, placements: new Map(), hosts: new Map(), restores: new Map(), upgrades: new Map(), users: new Map() };
  const placements = groupBy(await tx.placements.listOfTenants(ids), (p) => p.tenantId);
  const hostIds = [...new Set([...placements.values()].flat().map((p) => p.hostId))];
  const hosts = new Map((hostIds.length > 0 ? await tx.hosts.getMany(hostIds) : []).map((h) => [h.id, h]));
  // Restores matter only to a tenant being restored or a primary never realized (its restore may have failed there).
  const restoring = tenants
    .filter((t) => t.status === 'RESTORING' || (placements.get(t.id) ?? []).some((p) => p.role === 'PRIMARY' && !p.realizedOnce))
    .map((t) => t.id);
  const restores = groupBy(restoring.length > 0 ? await tx.restores.listOfTargets(restoring) : [], (r) => r.targetTenantId);
  const upgrades = new Map((await tx.upgrades.getMany(ids)).map((u) => [u.tenantId, u]));
  const users = groupBy(await tx.users.listOfTenants(ids), (u) => u.tenantId);
  return { tenants, placements, hosts, restores, upgrades, users };
}

/** Whether the tenant's last restore failed on the primary `p` (never realized): it is not sent again, a person decides. */
function restoreFailedOn(p: PlacementRecord, restores: readonly RestoreRecord[]): boolean {
  if (p.role !== 'PRIMARY' || p.realizedOnce) return false;
  const last = restores[restores.length - 1];
  return last !== undefined && last.state === 'FAILED' && last.hostId === p.hostId;
}

/** A tenant's status after the sync, and the status event when it changed. */
function derive(tenant: TenantRecord, facts: Facts, deps: SyncDeps): { updated: TenantRecord; event?: NewEvent } {
  const placements = facts.placements.get(tenant.id) ?? [];
  const restores = facts.restores.get(tenant.id) ?? [];
  const views: PlacementView[] = placements.map((p) => {
    const state: HostState = facts.hosts.get(p.hostId)?.state ?? 'DOWN';
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
      failures: restoreFailedOn(p, restores) ? undefined : p.failures,
      instanceState: p.instanceState,
    };
  });
  let derived = deriveTenantStatus({
    current: tenant.status,
    runState: tenant.spec.runState,
    deleting: tenant.deleting,
    placements: views,
    // The failover manager watches replicated tenants only: a single-node tenant's move copy is no heir.
    replicasTakeOver: tenant.spec.nodes > 1,
  });
  if (tenant.status === 'FAILING_OVER' && !deps.endFailover && !OVERRIDES_FAILOVER.has(derived.status)) {
    derived = { status: 'FAILING_OVER', reason: tenant.statusReason };
  }
  // RESTORING holds until the restore ends (its recovery result), so a restored tenant never flashes
  // ERROR or ACTIVE on the way; only a stop or a deletion overrides it.
  if (tenant.status === 'RESTORING' && !OVERRIDES_FAILOVER.has(derived.status)) {
    const restore = restores.find((r) => r.state === 'RUNNING');
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
  if ((derived.status === tenant.status && derived.reason === tenant.statusReason) || !canTransition(tenant.status, derived.status)) return { updated: tenant };
  const updated: TenantRecord = { ...tenant, status: derived.status, statusReason: derived.reason, updatedAt: deps.now };
  if (derived.status === tenant.status) return { updated };
  return {
    updated,
    event: {
      time: deps.now,
      principal: deps.principal ?? 'system:reconciler',
      action: 'tenant.status',
      tenantId: tenant.id,
      outcome: derived.status === 'ERROR' || derived.status === 'UNAVAILABLE' ? 'FAILURE' : 'SUCCESS',
      message: `${tenant.status} -> ${derived.status}${derived.reason ? `: ${derived.reason}` : ''}`,
      details: { from: tenant.status, to: derived.status },
    },
  };
}

/**
 * syncTenant for many tenants at once (each once, whatever `tenantIds` repeats): returns the
 * updated records of the tenants that exist. The writes are the same as one syncTenant per tenant;
 * they go as one status update, one event append and one route write for the whole batch.
 */
export async function syncTenants(tx: StoreTx, tenantIds: Iterable<string>, deps: SyncDeps): Promise<Map<string, TenantRecord>> {
  const facts = await readFacts(tx, [...new Set(tenantIds)]);
  const out = new Map<string, TenantRecord>();
  const changed: TenantRecord[] = [];
  const events: NewEvent[] = [];
  for (const tenant of facts.tenants) {
    const { updated, event } = derive(tenant, facts, deps);
    out.set(tenant.id, updated);
    if (updated !== tenant) changed.push(updated);
    if (event) events.push(event);
  }
  // The stored route is read only where it carries a hold over (a planned switch, a wake by a move).
  const holding = [...out.values()].filter((t) => t.status === 'FAILING_OVER' || t.status === 'MOVING').map((t) => t.id);
  const stored = new Map((holding.length > 0 ? await tx.routes.getMany(holding) : []).map((r) => [r.tenantId, r.state]));
  await tx.tenants.updateMany(changed);
  await tx.events.appendMany(events);
  const routes: Array<Omit<RouteRecord, 'revision'>> = [];
  for (const updated of out.values()) {
    const primary = (facts.placements.get(updated.id) ?? []).find((p) => p.role === 'PRIMARY');
    const host = primary ? facts.hosts.get(primary.hostId) : undefined;
    const state = stored.get(updated.id);
    // A planned switch stays SWITCHING (routers hold clients) until the failover code ends it.
    const switching = deps.switching ?? (updated.status === 'FAILING_OVER' && state === 'SWITCHING');
    // A wake by a move of the primary stays SUSPENDED (routers hold clients) until the move's switch.
    const wakeMove = deps.wakeMove ?? (updated.status === 'MOVING' && state === 'SUSPENDED');
    // A major upgrade's switch holds clients until its executor moves the route or gives up.
    const upgradeHold = facts.upgrades.get(updated.id)?.held === true;
    const users = facts.users.get(updated.id) ?? [];
    routes.push(routeFor(updated, primary, host, primary ? isHealthy(primary, deps.health) : false, users, switching, upgradeHold, wakeMove));
  }
  await tx.routes.putMany(routes);
  return out;
}
