/**
 * A restore whose new primary's host went DOWN before the restored instance ever ran is placed
 * again on another host: nothing was restored there yet, and the agent restores only into an
 * instance that has no data, so the restore simply starts over elsewhere. (A restarted coordinator
 * needs nothing more: the Restore row and the placement are in the store, and the agent gets the
 * restore source again with its desired set.)
 */
import { placeTenants } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { hostCandidates, versionRequest } from './host-candidates.js';
import { newPlacement } from '../domain/model.js';
import { syncTenant } from './tenant-sync.js';

const PRINCIPAL = 'system:scheduler';

/** Re-places restores stuck on a DOWN host; returns the tenants whose desired sets changed. */
export async function replaceLostRestores(ctx: CoordinatorContext): Promise<string[]> {
  const changed: string[] = [];
  for (const r of await ctx.store.read.restores.listRunning()) {
    const primary = (await ctx.store.read.placements.list({ tenantId: r.targetTenantId })).find((p) => p.role === 'PRIMARY');
    if (!primary || primary.realizedOnce || (await ctx.store.read.hosts.get(primary.hostId))?.state !== 'DOWN') continue;
    const now = ctx.clock();
    const moved = await ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(r.targetTenantId);
      const current = await tx.restores.get(r.id);
      if (!tenant || tenant.deleting || current?.state !== 'RUNNING') return undefined;
      const fresh = await tx.placements.list({ tenantId: tenant.id });
      if (fresh.some((p) => p.realizedOnce)) return undefined;
      const excludeHosts = [...new Set([...fresh.map((p) => p.hostId), ...current.oldHosts])];
      const { placed } = placeTenants(
        await hostCandidates(tx, ctx.versions, ctx.slots),
        [
          {
            tenantId: tenant.id,
            resources: tenant.spec.resources,
            nodes: tenant.spec.nodes,
            placement: tenant.spec.placement,
            excludeHosts,
            ...versionRequest(tenant),
          },
        ],
        ctx.placementPolicy,
      );
      const hostIds = placed[0]?.hostIds;
      if (!hostIds || hostIds.length === 0) return undefined;
      for (const p of fresh) await tx.placements.delete(tenant.id, p.hostId);
      for (const [i, hostId] of hostIds.entries())
        await tx.placements.insert(
          newPlacement({ tenantId: tenant.id, hostId, role: i === 0 ? 'PRIMARY' : 'REPLICA', address: (await tx.hosts.get(hostId))?.address ?? '', now }),
        );
      await tx.restores.update({ ...current, hostId: hostIds[0] as string, reason: `restoring on ${hostIds[0]} (${primary.hostId} went down first)` });
      await tx.tenants.update({ ...tenant, instanceRevision: tenant.instanceRevision + 1, updatedAt: now });
      await tx.events.append({
        time: now,
        principal: PRINCIPAL,
        action: 'restore.replaced',
        tenantId: tenant.id,
        hostId: hostIds[0] as string,
        outcome: 'SUCCESS',
        message: `restore ${r.id} moved from ${primary.hostId} (down before the restored instance ran) to ${hostIds[0]}`,
        details: { restore: r.id, lost_host: primary.hostId },
      });
      await syncTenant(tx, tenant.id, { now, health: ctx.health, principal: PRINCIPAL });
      tx.record({ kind: 'desired', tenantId: tenant.id });
      return fresh.map((p) => p.hostId);
    });
    if (moved) {
      for (const h of moved) ctx.health.delete(r.targetTenantId, h);
      changed.push(r.targetTenantId);
    }
  }
  return changed;
}
