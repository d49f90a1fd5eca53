/**
 * Applying what an agent reports about its instances: realization, instance state, address and
 * port, health. Writes only what changed (reports repeat every few seconds), advances users and
 * databases once the primary realized the revision that carried them, finishes deletions, and
 * re-derives the tenant. Instances the coordinator has no placement for are left alone and
 * reported once: nothing deletes data on a guess.
 */
import type { HealthCache } from '../live/health-cache.js';
import type { InstanceReportView } from '../transport/mappers/agent-mapper.js';
import type { NewEvent, PlacementRecord } from '../domain/model.js';
import type { RetiringInstances } from '../live/retiring-instances.js';
import { applyRecovery, noteArchive, oldInstanceRemoved } from './restore-progress.js';
import type { StoreTx } from '../store/contract.js';
import { syncTenants } from './tenant-sync.js';

/** Retry backoff of failed realizations. */
export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
}

/** The delay before retry number `failures` (1-based): base * 2^(n-1), capped. */
export function retryDelay(failures: number, policy: RetryPolicy): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

/** What applying reports found, for the caller to act on after commit. */
export interface ReportOutcome {
  /** Tenant ids reported that have no placement on this host. */
  orphans: string[];
  /** Placements removed (deleted instances), to forget their health. */
  removed: { tenantId: string; hostId: string }[];
}

/** Whether `b` differs from `a` in anything a report sets. */
export function changed(a: PlacementRecord, b: PlacementRecord): boolean {
  return (
    a.realization !== b.realization ||
    a.reason !== b.reason ||
    a.instanceState !== b.instanceState ||
    a.address !== b.address ||
    a.port !== b.port ||
    a.realizedRevision !== b.realizedRevision ||
    a.realizedOnce !== b.realizedOnce ||
    a.failures !== b.failures ||
    a.nextRetryAt !== b.nextRetryAt
  );
}

/** Records a report about the other instance of the tenant's upgrade; false when it is not that. */
async function noteUpgradeInstance(tx: StoreTx, hostId: string, r: InstanceReportView, deps: { now: number; health: HealthCache }): Promise<boolean> {
  const upgrade = await tx.upgrades.get(r.tenantId);
  if (!upgrade || upgrade.other.hostId !== hostId) return false;
  if (r.health) deps.health.set(r.tenantId, hostId, r.health);
  const o = upgrade.other;
  const next = {
    ...o,
    state: r.state,
    address: r.address || o.address,
    port: r.port > 0 ? r.port : o.port,
    realizedRevision: r.realization === 'REALIZED' ? Math.max(o.realizedRevision, r.specRevision) : o.realizedRevision,
    failedReason: r.realization === 'FAILED' ? r.reason || 'the agent could not create it' : '',
  };
  if (JSON.stringify(next) !== JSON.stringify(o)) await tx.upgrades.put({ ...upgrade, other: next, updatedAt: deps.now });
  return true;
}

/** The placement as a report of its instance leaves it (written only when `changed`). */
export function placementAfter(placement: PlacementRecord, r: InstanceReportView, now: number, retry: RetryPolicy): PlacementRecord {
  const next: PlacementRecord = { ...placement, reason: r.reason, instanceState: r.state, updatedAt: now };
  next.realization = r.realization;
  if (r.address) next.address = r.address;
  if (r.port > 0) next.port = r.port;
  if (r.realization === 'REALIZED') {
    next.realizedRevision = Math.max(placement.realizedRevision, r.specRevision);
    next.realizedOnce = true;
    next.failures = 0;
    next.nextRetryAt = 0;
  } else if (r.realization === 'FAILED' && (placement.realization !== 'FAILED' || placement.nextRetryAt === 0)) {
    // A new failure, or the first one after a retry was sent: back off further.
    next.failures = placement.failures + 1;
    next.nextRetryAt = now + retryDelay(next.failures, retry);
  }
  // A created instance holds data from its first start, whatever it reports later.
  if (r.state === 'RUNNING') next.realizedOnce = true;
  return next;
}

/** Applies one batch of instance reports from `hostId` inside `tx`. */
export async function applyInstanceReports(
  tx: StoreTx,
  hostId: string,
  reports: readonly InstanceReportView[],
  deps: { now: number; health: HealthCache; retry: RetryPolicy; retiring?: RetiringInstances },
): Promise<ReportOutcome> {
  const outcome: ReportOutcome = { orphans: [], removed: [] };
  const principal = `host:${hostId}`;
  // The reported tenants and their placements in two reads for the whole batch, and one re-derive
  // of them all at the end: a report of a placement slice is hundreds of instances, and on a store
  // across the network each read is a round trip. A tenant reported twice in one batch is read
  // again the second time (the first report may have changed it).
  const ids = [...new Set(reports.map((r) => r.tenantId))];
  const tenantsRead = new Map((await tx.tenants.getMany(ids)).map((t) => [t.id, t]));
  const placementsRead = new Map<string, PlacementRecord[]>();
  for (const p of await tx.placements.listOfTenants([...tenantsRead.keys()])) placementsRead.set(p.tenantId, [...(placementsRead.get(p.tenantId) ?? []), p]);
  const seen = new Set<string>();
  const toSync = new Set<string>();
  // The common writes of the batch (placement updates, their events, users and databases made
  // real) go together at the end, or before a tenant reported again is read again.
  const updates: PlacementRecord[] = [];
  const events: NewEvent[] = [];
  const advance = new Map<string, number>();
  const flush = async (): Promise<void> => {
    await tx.placements.updateMany(updates.splice(0));
    await tx.events.appendMany(events.splice(0));
    const revisions = [...advance];
    advance.clear();
    await advanceObjects(tx, revisions);
  };
  for (const r of reports) {
    const again = seen.has(r.tenantId);
    seen.add(r.tenantId);
    if (again) await flush();
    const tenant = again ? await tx.tenants.get(r.tenantId) : tenantsRead.get(r.tenantId);
    const all = !tenant ? [] : again ? await tx.placements.list({ tenantId: r.tenantId }) : (placementsRead.get(r.tenantId) ?? []);
    const placement = all.find((p) => p.hostId === hostId);
    if (!tenant || !placement) {
      // The instance an in-place restore replaced, deleted as asked: not an orphan.
      if (tenant && r.state === 'DELETED' && (await oldInstanceRemoved(tx, tenant.id, hostId, deps.now))) continue;
      // The instance a live move left behind, deleted as asked.
      if (r.state === 'DELETED' && deps.retiring?.confirm(r.tenantId, hostId)) {
        await tx.events.append({
          time: deps.now,
          principal,
          action: 'move.old_removed',
          tenantId: r.tenantId,
          hostId,
          message: 'the instance a move left behind was deleted',
        });
        continue;
      }
      // The other instance of a major upgrade: its state lives in the upgrade's row.
      if (tenant && (await noteUpgradeInstance(tx, hostId, r, deps))) continue;
      outcome.orphans.push(r.tenantId);
      continue;
    }
    if (r.health) {
      const previous = deps.health.get(r.tenantId, hostId);
      deps.health.set(r.tenantId, hostId, r.health);
      if (placement.role === 'PRIMARY') await noteArchive(tx, tenant.id, hostId, previous?.archive, r.health.archive, deps.now);
    }
    if (r.recovery) {
      for (const old of await applyRecovery(tx, tenant, placement, r.recovery, deps.now)) tx.record({ kind: 'desired', tenantId: tenant.id, hostId: old });
    }
    if (tenant.deleting && r.state === 'DELETED') {
      await tx.placements.delete(tenant.id, hostId);
      outcome.removed.push({ tenantId: tenant.id, hostId });
      await tx.events.append({ time: deps.now, principal, action: 'placement.deleted', tenantId: tenant.id, hostId, message: 'instance and its data deleted' });
      tx.record({ kind: 'room' });
      if ((await tx.placements.list({ tenantId: tenant.id })).length === 0) await finishDeletion(tx, tenant.id, deps.now, principal);
      continue;
    }
    const next = placementAfter(placement, r, deps.now, deps.retry);
    if (!changed(placement, next)) {
      // Health alone changed: status may still flip (e.g. stopped accepting connections).
      toSync.add(tenant.id);
      continue;
    }
    updates.push(next);
    if (next.realization !== placement.realization) {
      events.push({
        time: deps.now,
        principal,
        action: `placement.${next.realization.toLowerCase()}`,
        tenantId: tenant.id,
        hostId,
        outcome: next.realization === 'FAILED' ? 'FAILURE' : 'SUCCESS',
        message: next.realization === 'FAILED' ? `realization failed: ${r.reason}` : `instance ${next.realization.toLowerCase()} at revision ${r.specRevision}`,
        details: { state: r.state, revision: String(r.specRevision), port: String(next.port) },
      });
      // A realized or failed creation no longer counts against its host's creations in flight.
      tx.record({ kind: 'room' });
    }
    if (next.role === 'PRIMARY' && next.realization === 'REALIZED') advance.set(tenant.id, next.realizedRevision);
    // Replicas follow their primary: its address, and its state (a stopped replica starts once its
    // primary runs, or failed to start; see desired-set runStateOf).
    if (next.role === 'PRIMARY' && (next.port !== placement.port || next.address !== placement.address || next.instanceState !== placement.instanceState)) {
      if (all.some((p) => p.role === 'REPLICA')) tx.record({ kind: 'desired', tenantId: tenant.id });
    }
    toSync.add(tenant.id);
  }
  await flush();
  await syncTenants(tx, toSync, { now: deps.now, health: deps.health, principal });
  return outcome;
}

/** Per tenant, the users and databases asked for at or before its realized revision are now real (or gone). */
async function advanceObjects(tx: StoreTx, revisions: ReadonlyArray<[tenantId: string, revision: number]>): Promise<void> {
  if (revisions.length === 0) return;
  const at = new Map(revisions);
  const ids = [...at.keys()];
  for (const u of await tx.users.listOfTenants(ids)) {
    if (u.revision > (at.get(u.tenantId) ?? 0)) continue;
    if (u.status === 'DELETING') await tx.users.delete(u.tenantId, u.name);
    else if (u.status !== 'ACTIVE') await tx.users.update({ ...u, status: 'ACTIVE', statusReason: '' });
  }
  for (const d of await tx.databases.listOfTenants(ids)) {
    if (d.revision > (at.get(d.tenantId) ?? 0)) continue;
    if (d.status === 'DELETING') await tx.databases.delete(d.tenantId, d.name);
    else if (d.status !== 'ACTIVE') await tx.databases.update({ ...d, status: 'ACTIVE', statusReason: '' });
  }
}

/** The last placement of a deleting tenant is gone: remove the tenant and its route. */
export async function finishDeletion(tx: StoreTx, tenantId: string, now: number, principal: string): Promise<void> {
  await tx.tenants.delete(tenantId);
  await tx.routes.delete(tenantId);
  await tx.events.append({ time: now, principal, action: 'tenant.deleted', tenantId, message: 'tenant deleted' });
  tx.record({ kind: 'room' });
}
