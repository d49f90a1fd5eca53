/**
 * Re-creating a replica lost with its host: once the host has been DOWN for
 * --replica-replace-delay, the replica's placement moves to another host (never one the tenant
 * already uses, nor its zone) and the new replica is cloned from the primary, so the tenant returns
 * to its N nodes. The old instance is not deleted: if its host comes back, the agent reports it as an
 * instance the coordinator has no placement for, which is left alone (nothing deletes data on a guess).
 */
import { placeTenants } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { hostCandidates, versionRequest } from './host-candidates.js';
import { newPlacement, type PlacementRecord } from '../domain/model.js';
import { ensureReplicationSecret } from './replication-secrets.js';
import { syncTenant } from './tenant-sync.js';

const PRINCIPAL = 'system:scheduler';

/** Replaces due replicas; returns the tenants whose desired sets changed. */
export async function replaceLostReplicas(ctx: CoordinatorContext, busy: (tenantId: string) => boolean): Promise<string[]> {
  const now = ctx.clock();
  const due = (await ctx.store.read.hosts.list()).filter((h) => h.state === 'DOWN' && now - h.stateChangedAt >= ctx.failover.replicaReplaceDelayMs);
  if (due.length === 0) return [];
  const changed: string[] = [];
  // The due hosts' placements only (indexed by host), not every placement on every tick.
  const lostReplicas: PlacementRecord[] = [];
  for (const h of due) for (const p of await ctx.store.read.placements.list({ hostId: h.id })) if (p.role === 'REPLICA') lostReplicas.push(p);
  for (const lost of lostReplicas) {
    if (busy(lost.tenantId)) continue;
    const done = await ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(lost.tenantId);
      // A suspended tenant's new replica would clone from a stopped primary: it is replaced once woken.
      if (!tenant || tenant.deleting || tenant.status === 'FAILING_OVER' || tenant.status === 'SUSPENDED') return false;
      const others = (await tx.placements.list({ tenantId: tenant.id })).map((p) => p.hostId);
      const { placed, unplaced } = placeTenants(
        await hostCandidates(tx, ctx.versions, ctx.slots),
        [
          {
            tenantId: tenant.id,
            resources: tenant.spec.resources,
            nodes: 1,
            placement: tenant.spec.placement,
            excludeHosts: others,
            ...versionRequest(tenant),
          },
        ],
        ctx.placementPolicy,
      );
      const hostId = placed[0]?.hostIds[0];
      if (hostId === undefined) {
        ctx.log.debug({ tenantId: tenant.id, reason: unplaced[0]?.reason }, 'no host for a replacement replica yet');
        return false;
      }
      await ensureReplicationSecret(tx, ctx.keys, tenant.id, now);
      await tx.placements.delete(tenant.id, lost.hostId);
      await tx.placements.insert(newPlacement({ tenantId: tenant.id, hostId, role: 'REPLICA', address: (await tx.hosts.get(hostId))?.address ?? '', now }));
      // The primary's slots and synchronous_standby_names change with it.
      await tx.tenants.update({ ...tenant, instanceRevision: tenant.instanceRevision + 1, updatedAt: now });
      await tx.events.append({
        time: now,
        principal: PRINCIPAL,
        action: 'replica.replaced',
        tenantId: tenant.id,
        hostId,
        message: `replica on ${lost.hostId} (down for ${now - ((await tx.hosts.get(lost.hostId))?.stateChangedAt ?? now)} ms) re-created on ${hostId}`,
        details: { lost_host: lost.hostId, new_host: hostId },
      });
      await syncTenant(tx, tenant.id, { now, health: ctx.health, principal: PRINCIPAL });
      tx.record({ kind: 'desired', tenantId: tenant.id });
      return true;
    });
    if (done) {
      ctx.health.delete(lost.tenantId, lost.hostId);
      changed.push(lost.tenantId);
    }
  }
  return changed;
}
