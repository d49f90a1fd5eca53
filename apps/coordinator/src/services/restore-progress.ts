/**
 * What agents' reports mean for backups and restores, applied inside the report's transaction:
 * a restored instance's recovery result finishes its restore (SUCCEEDED with the recovery point,
 * or FAILED with the agent's words and the tenant in ERROR), the primary's archive status advances
 * the stored last-archived time and a growing failure count becomes an event, and the deletion of
 * an instance an in-place restore replaced completes that restore's clean-up.
 */
import { lsnDistance, rfc3339, tryParseLsn } from '@pgs/tenancy';
import type { ArchiveHealth } from '../live/health-cache.js';
import type { RecoveryView } from '../transport/mappers/agent-mapper.js';
import type { PlacementRecord, RestoreRecord, TenantRecord } from '../domain/model.js';
import type { StoreReads, StoreTx } from '../store/contract.js';

/** The stored archived-through time moves at most this often (the exact one is in the health cache). */
const ARCHIVE_PERSIST_MS = 60_000;

/** The running restore of a tenant, if any. */
export async function runningRestore(tx: StoreReads, tenantId: string): Promise<RestoreRecord | undefined> {
  return (await tx.restores.list(tenantId)).find((r) => r.state === 'RUNNING');
}

/** The restore's target in words. */
export function targetWords(r: Pick<RestoreRecord, 'toTime' | 'toBackupId' | 'latest'>): string {
  if (r.toBackupId !== '') return `backup ${r.toBackupId}`;
  if (r.toTime > 0) return rfc3339(r.toTime);
  return 'the latest archived WAL';
}

/** WAL the lost primary had written past the recovery point (0 when unknown or nothing). */
function missingWal(oldLsn: string, recovered: string): number {
  return tryParseLsn(oldLsn) !== undefined && tryParseLsn(recovered) !== undefined ? lsnDistance(recovered, oldLsn) : 0;
}

/**
 * Applies a recovery result of the primary `placement`; returns the old hosts to tell (an in-place
 * restore's replaced instances are removed once the restored one serves).
 */
export async function applyRecovery(tx: StoreTx, tenant: TenantRecord, placement: PlacementRecord, recovery: RecoveryView, now: number): Promise<string[]> {
  const r = await tx.restores.get(recovery.restoreId);
  if (!r || r.state !== 'RUNNING' || r.targetTenantId !== tenant.id || placement.role !== 'PRIMARY') return [];
  const principal = `host:${placement.hostId}`;
  if (!recovery.ok) {
    const why = recovery.message || recovery.errorCode || 'recovery failed';
    await tx.restores.update({ ...r, state: 'FAILED', phase: 'done', reason: why, finishedAt: now, hostId: placement.hostId });
    await tx.tenants.update({ ...tenant, status: 'ERROR', statusReason: `restore ${r.id} failed: ${why}`, updatedAt: now });
    await tx.events.append({
      time: now,
      principal,
      action: 'restore.failed',
      tenantId: tenant.id,
      hostId: placement.hostId,
      outcome: 'FAILURE',
      message: `restore ${r.id} failed: ${why}`,
      details: { restore: r.id, errorCode: recovery.errorCode },
    });
    return [];
  }
  const missing = r.kind === 'recreate' ? missingWal(r.oldLsn, recovery.lsn) : 0;
  const removeOld = r.kind === 'in_place' && r.oldHosts.length > 0;
  const point = `${recovery.lsn || 'unknown LSN'}${recovery.commitTime > 0 ? ` (last commit ${rfc3339(recovery.commitTime)})` : ''}`;
  await tx.restores.update({
    ...r,
    state: 'SUCCEEDED',
    phase: removeOld ? 'removing_old' : 'done',
    reason: `serving on ${placement.hostId}; recovered to ${point}${missing > 0 ? `; ${missing} bytes of WAL written by the lost primary were not in the repository` : ''}`,
    finishedAt: now,
    hostId: placement.hostId,
    recoveredLsn: recovery.lsn,
    recoveredTime: recovery.commitTime,
    timeline: recovery.timeline,
    missingWalBytes: missing,
  });
  await tx.events.append({
    time: now,
    principal,
    action: 'restore.succeeded',
    tenantId: tenant.id,
    hostId: placement.hostId,
    message: `restore ${r.id} of ${r.sourceTenantId} to ${targetWords(r)} recovered to ${point} on timeline ${recovery.timeline}`,
    details: { restore: r.id, lsn: recovery.lsn, timeline: String(recovery.timeline), missingWalBytes: String(missing) },
  });
  return removeOld ? r.oldHosts : [];
}

/** An instance replaced by an in-place restore was deleted on `hostId`: true when it was one. */
export async function oldInstanceRemoved(tx: StoreTx, tenantId: string, hostId: string, now: number): Promise<boolean> {
  const r = (await tx.restores.list(tenantId)).find((x) => x.phase === 'removing_old' && x.oldHosts.includes(hostId));
  if (!r) return false;
  const oldHosts = r.oldHosts.filter((h) => h !== hostId);
  await tx.restores.update({ ...r, oldHosts, phase: oldHosts.length === 0 ? 'done' : r.phase });
  await tx.events.append({
    time: now,
    principal: `host:${hostId}`,
    action: 'restore.old_removed',
    tenantId,
    hostId,
    message: `the instance replaced by restore ${r.id} was deleted on ${hostId}`,
    details: { restore: r.id },
  });
  return true;
}

/** Tenants whose replaced instances `hostId` must delete (in its desired set as removals). */
export async function oldInstancesOn(tx: StoreReads, hostId: string): Promise<string[]> {
  return (await tx.restores.listActive()).filter((r) => r.phase === 'removing_old' && r.oldHosts.includes(hostId)).map((r) => r.targetTenantId);
}

/** Notes a primary's archive report: the stored last-archived time advances; a growing failure count is an event. */
export async function noteArchive(
  tx: StoreTx,
  tenantId: string,
  hostId: string,
  previous: ArchiveHealth | undefined,
  next: ArchiveHealth | undefined,
  now: number,
): Promise<void> {
  if (!next) return;
  if (previous && next.failedCount > previous.failedCount) {
    await tx.events.append({
      time: now,
      principal: `host:${hostId}`,
      action: 'backup.archive_failed',
      tenantId,
      hostId,
      outcome: 'FAILURE',
      message: `WAL archiving failed ${next.failedCount - previous.failedCount} more time(s) (${next.failedCount} in all, last ${next.lastFailedWal || 'unknown segment'})`,
      details: { failedCount: String(next.failedCount), lastFailedWal: next.lastFailedWal },
    });
  }
  const stanza = await tx.backups.getStanza(tenantId);
  if (stanza && next.archivedThrough - stanza.archivedThrough >= ARCHIVE_PERSIST_MS) {
    await tx.backups.putStanza({ ...stanza, archivedThrough: next.archivedThrough, lastArchivedWal: next.lastArchivedWal });
  }
}

/**
 * A primary that was to be restored and whose restore failed before it ever ran is not sent again:
 * without its restore source the agent would create it EMPTY, and a tenant restored from a backup
 * (or re-created from one) must never come back empty. An operator restores again or deletes it.
 */
export async function restoreFailedHere(tx: StoreReads, placement: PlacementRecord): Promise<boolean> {
  if (placement.role !== 'PRIMARY' || placement.realizedOnce) return false;
  const restores = await tx.restores.list(placement.tenantId);
  const last = restores[restores.length - 1];
  return last !== undefined && last.state === 'FAILED' && last.hostId === placement.hostId;
}
