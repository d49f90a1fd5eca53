/**
 * Where a draining host's instances go, as store reads and writes (libs/tenancy planDrain decides):
 * tenants that never held data lose their placements and are placed again by the scheduler, every
 * other instance is queued for a live move (a replicated tenant's member moves as that member),
 * and what no host can take comes back blocked with the reason. Used when a drain starts and again
 * by the drain runner for what is still on the host (a failed or refused move, a resumed drain).
 */
import { planDrain } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import type { DrainPlan, DrainPlanner, PlannedMove } from './drain-runner.js';
import { hostCandidates, versionRequest } from './host-candidates.js';
import type { StoreTx } from '../store/contract.js';
import { syncTenant } from './tenant-sync.js';

/** Plans the moves of what is on `hostId`, leaving out the tenants in `skip` (moving, queued, given up). */
export async function planHostDrain(
  tx: StoreTx,
  ctx: CoordinatorContext,
  hostId: string,
  skip: ReadonlySet<string>,
  now: number,
  principal: string,
): Promise<DrainPlan & { placedAgain: { tenantId: string; toHostId: string }[] }> {
  const onHost = (await tx.placements.list({ hostId })).filter((p) => !skip.has(p.tenantId));
  if (onHost.length === 0) return { queue: [], blocked: [], moved: [], placedAgain: [] };
  const instances = [];
  for (const p of onHost) {
    const tenant = await tx.tenants.get(p.tenantId);
    const all = await tx.placements.list({ tenantId: p.tenantId });
    instances.push({
      tenantId: p.tenantId,
      resources: tenant?.spec.resources ?? { cpuMillis: 0, memoryMib: 0, diskMib: 0 },
      nodes: 1,
      placement: tenant?.spec.placement ?? {},
      excludeHosts: all.map((x) => x.hostId),
      ...(tenant ? versionRequest(tenant) : {}),
      role: p.role,
      hasReplica: all.some((x) => x.role === 'REPLICA'),
      neverHeldData: !all.some((x) => x.realizedOnce),
      members: all.length,
    });
  }
  const plan = planDrain(hostId, await hostCandidates(tx, ctx.versions, ctx.slots), instances, ctx.placementPolicy);
  const queue: PlannedMove[] = [];
  const placedAgain: { tenantId: string; toHostId: string }[] = [];
  for (const move of plan.moves) {
    const inst = instances.find((i) => i.tenantId === move.tenantId);
    if (inst?.neverHeldData) {
      // Nothing to lose: drop the placements; the scheduler places the tenant on another host.
      for (const p of await tx.placements.list({ tenantId: move.tenantId })) await tx.placements.delete(move.tenantId, p.hostId);
      const tenant = await tx.tenants.get(move.tenantId);
      if (tenant) await tx.tenants.update({ ...tenant, status: 'NEW', statusReason: `moved off draining host ${hostId} before it ever ran`, updatedAt: now });
      await syncTenant(tx, move.tenantId, { now, health: ctx.health, principal });
      placedAgain.push({ tenantId: move.tenantId, toHostId: move.toHostId });
    } else {
      queue.push({ tenantId: move.tenantId, toHostId: move.toHostId, memberHostId: (inst?.members ?? 1) > 1 ? hostId : '' });
    }
  }
  const blocked = plan.blocked.map((b) => ({ tenantId: b.tenantId, reason: b.reason }));
  return { queue, blocked, moved: placedAgain.map((m) => m.tenantId), placedAgain };
}

/** The drain runner's view of the store. */
export class StoreDrainPlanner implements DrainPlanner {
  constructor(private readonly ctx: CoordinatorContext) {}

  async draining(): Promise<string[]> {
    return (await this.ctx.store.read.hosts.list()).filter((h) => h.draining).map((h) => h.id);
  }

  async plan(hostId: string, skip: ReadonlySet<string>, principal: string): Promise<DrainPlan> {
    // Most checks find nothing left: a read first keeps them out of the write transaction.
    const left = (await this.ctx.store.read.placements.list({ hostId })).filter((p) => !skip.has(p.tenantId));
    if (left.length === 0) return { queue: [], blocked: [], moved: [] };
    return await this.ctx.store.transaction((tx) => planHostDrain(tx, this.ctx, hostId, skip, this.ctx.clock(), principal));
  }
}
