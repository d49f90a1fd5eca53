/**
 * The failover view of a tenant's placements (libs/tenancy FailoverMember) and the synchronous
 * quorums its primary may be running with, built from the store and the health last reported.
 */
import { standbyName, syncConfigFor, type FailoverMember, type SyncQuorum } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { liveStandbys } from './desired-set.js';
import type { PlacementRecord, TenantRecord } from '../domain/model.js';
import type { StoreReads } from '../store/contract.js';
import { isHealthy } from './tenant-sync.js';

/** One placement as the failover decisions see it. */
export async function failoverMember(tx: StoreReads, ctx: CoordinatorContext, p: PlacementRecord): Promise<FailoverMember> {
  const health = ctx.health.get(p.tenantId, p.hostId);
  return {
    hostId: p.hostId,
    role: p.role,
    hostState: (await tx.hosts.get(p.hostId))?.state ?? 'DOWN',
    realized: p.realizedOnce && p.realization !== 'FAILED',
    // A replica must answer; a report without health (older agents) cannot vouch for one.
    healthy: isHealthy(p, ctx.health) && health !== undefined && health.up,
    lsn: health?.lsn ?? '',
    timeline: health?.timeline ?? 0,
    reportedAt: health?.checkedAt ?? 0,
  };
}

/** Every placement of a tenant as failover members. */
export async function failoverMembers(tx: StoreReads, ctx: CoordinatorContext, tenantId: string): Promise<FailoverMember[]> {
  const members: FailoverMember[] = [];
  for (const p of await tx.placements.list({ tenantId })) members.push(await failoverMember(tx, ctx, p));
  return members;
}

/**
 * The quorums the old primary may be running with: those sent and not yet superseded by a
 * confirmed one; when this process knows nothing (it restarted), the current desired one and the
 * one naming every replica, either of which the primary may hold (the stricter wins in the check).
 */
export async function quorumsInForce(tx: StoreReads, ctx: CoordinatorContext, tenant: TenantRecord, oldPrimaryHostId: string): Promise<SyncQuorum[]> {
  if (tenant.spec.syncReplicas === 0) return [];
  const known = ctx.quorums.inForce(tenant.id);
  if (known) return known;
  const replicas = (await tx.placements.list({ tenantId: tenant.id })).filter((p) => p.role === 'REPLICA' && p.hostId !== oldPrimaryHostId);
  const current = syncConfigFor(tenant.spec.syncReplicas, (await liveStandbys(tx, replicas, ctx.gone)).map(standbyName));
  const every = syncConfigFor(tenant.spec.syncReplicas, replicas.map((p) => standbyName(p.hostId)).sort());
  return [
    { k: current.k, standbys: current.names },
    { k: every.k, standbys: every.names },
  ];
}
