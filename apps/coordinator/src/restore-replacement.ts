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
import { newPlacement } from './model.js';
import { syncTenant } from './tenant-sync.js';

const PRINCIPAL = 'system:scheduler';

/** Re-places restores stuck on a DOWN host; returns the tenants whose desired sets changed. */
export function replaceLostRestores(ctx: CoordinatorContext): string[] {
  const changed: string[] = [];
  for (const r of ctx.store.listRunningRestores()) {
    const primary = ctx.store.listPlacements({ tenantId: r.targetTenantId }).find((p) => p.role === 'PRIMARY');
    if (!primary || primary.realizedOnce || ctx.store.getHost(primary.hostId)?.state !== 'DOWN') continue;
    const now = ctx.clock();
    const moved = ctx.store.write((tx) => {
      const tenant = tx.getTenant(r.targetTenantId);
      const current = tx.getRestore(r.id);
      if (!tenant || tenant.deleting || current?.state !== 'RUNNING') return undefined;
      const fresh = tx.listPlacements({ tenantId: tenant.id });
      if (fresh.some((p) => p.realizedOnce)) return undefined;
      const excludeHosts = [...new Set([...fresh.map((p) => p.hostId), ...current.oldHosts])];
      const { placed } = placeTenants(hostCandidates(tx, ctx.versions), [{ tenantId: tenant.id, resources: tenant.spec.resources, nodes: tenant.spec.nodes, placement: tenant.spec.placement, excludeHosts, ...versionRequest(tenant) }], ctx.placementPolicy);
      const hostIds = placed[0]?.hostIds;
      if (!hostIds || hostIds.length === 0) return undefined;
      for (const p of fresh) tx.deletePlacement(tenant.id, p.hostId);
      hostIds.forEach((hostId, i) => tx.insertPlacement(newPlacement({ tenantId: tenant.id, hostId, role: i === 0 ? 'PRIMARY' : 'REPLICA', address: tx.getHost(hostId)?.address ?? '', now })));
      tx.updateRestore({ ...current, hostId: hostIds[0] as string, reason: `restoring on ${hostIds[0]} (${primary.hostId} went down first)` });
      tx.updateTenant({ ...tenant, instanceRevision: tenant.instanceRevision + 1, updatedAt: now });
      tx.appendEvent({
        time: now,
        principal: PRINCIPAL,
        action: 'restore.replaced',
        tenantId: tenant.id,
        hostId: hostIds[0] as string,
        outcome: 'SUCCESS',
        message: `restore ${r.id} moved from ${primary.hostId} (down before the restored instance ran) to ${hostIds[0]}`,
        details: { restore: r.id, lost_host: primary.hostId },
      });
      syncTenant(tx, tenant.id, { now, health: ctx.health, principal: PRINCIPAL });
      return fresh.map((p) => p.hostId);
    });
    if (moved) {
      for (const h of moved) ctx.health.delete(r.targetTenantId, h);
      changed.push(r.targetTenantId);
    }
  }
  return changed;
}
