/**
 * Names and rows of the backup work: a tenant's stanza (one per incarnation), backup and restore
 * ids that sort by time and say whose they are, and the recovery window from the stored facts.
 */
import { recoveryWindow, type RecoveryWindow } from '@pgs/tenancy';
import type { HealthCache } from '../live/health-cache.js';
import type { BackupRecord, StanzaRecord, TenantRecord } from '../domain/model.js';
import type { Store, StoreReads, StoreTx } from '../store/contract.js';

/**
 * The stanza of a tenant incarnation: "<tenant>-<created unix ms>". A deleted-and-recreated id
 * gets a new one, so it never reads (or expires) the old tenant's backups.
 */
export function stanzaName(tenant: Pick<TenantRecord, 'id' | 'createdAt'>): string {
  return `${tenant.id}-${tenant.createdAt}`;
}

/** The tenant's stanza row, created when missing (inside the caller's transaction). */
export async function ensureStanza(tx: StoreTx, tenant: Pick<TenantRecord, 'id' | 'createdAt'>, now: number): Promise<StanzaRecord> {
  const existing = await tx.backups.getStanza(tenant.id);
  if (existing) return existing;
  const stanza: StanzaRecord = { tenantId: tenant.id, stanza: stanzaName(tenant), archivedThrough: 0, lastArchivedWal: '', createdAt: now };
  await tx.backups.putStanza(stanza);
  return stanza;
}

/** Gives every tenant without a stanza one (a fleet that turned backups on, or tenants created before). */
export async function ensureStanzas(store: Store, now: number): Promise<number> {
  let made = 0;
  let after: string | undefined;
  for (;;) {
    const page = await store.read.tenants.list({}, { after, limit: 1000 });
    if (page.length === 0) return made;
    await store.transaction(async (tx) => {
      for (const t of page) {
        if (await tx.backups.getStanza(t.id)) continue;
        await ensureStanza(tx, t, now);
        made++;
      }
    });
    after = page[page.length - 1]?.id;
  }
}

/** "20261206-101500" in UTC. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
}

/** A backup id, e.g. "b-20261206-101500-acme-3". */
export async function newBackupId(tx: StoreReads, tenantId: string, now: number): Promise<string> {
  return `b-${stamp(now)}-${tenantId}-${(await tx.backups.list(tenantId)).length + 1}`;
}

/** A restore id, e.g. "r-20261206-101500-acme-restore-1-1". */
export async function newRestoreId(tx: StoreReads, targetTenantId: string, now: number): Promise<string> {
  return `r-${stamp(now)}-${targetTenantId}-${(await tx.restores.list(targetTenantId)).length + 1}`;
}

/** The command id of a RunBackup: the tenant and the backup, so an answer finds its row after a restart. */
export function backupCommandId(b: Pick<BackupRecord, 'tenantId' | 'id'>): string {
  return `backup:${b.tenantId}:${b.id}`;
}

/** The tenant and backup ids of a RunBackup command id, or undefined for any other command. */
export function parseBackupCommandId(commandId: string): { tenantId: string; backupId: string } | undefined {
  const m = /^backup:([^:]+):([^:]+)$/.exec(commandId);
  return m ? { tenantId: m[1]!, backupId: m[2]! } : undefined;
}

/**
 * The time through which the tenant's archive holds every commit: what its primary reported now,
 * else `stored` (the stanza row's; a new primary knows nothing until its first segment is archived).
 */
async function archivedThrough(tx: StoreReads, health: HealthCache, tenantId: string, stored: number): Promise<number> {
  const primary = (await tx.placements.list({ tenantId })).find((p) => p.role === 'PRIMARY');
  const reported = primary ? (health.get(tenantId, primary.hostId)?.archive?.archivedThrough ?? 0) : 0;
  return Math.max(stored, reported);
}

/** Of `backups`, those of `stanza` (every one when the tenant has no stanza row). */
function ofStanza(backups: BackupRecord[], stanza: StanzaRecord | undefined): BackupRecord[] {
  return stanza ? backups.filter((b) => b.stanza === stanza.stanza) : backups;
}

/**
 * The tenant's backups in the stanza it archives into now. A major upgrade begins a new stanza (a
 * stanza belongs to one database system): the old major's backups stay listed, but nothing is
 * recovered across the upgrade point, so neither the schedule nor the window counts them.
 */
export async function currentStanzaBackups(tx: StoreReads, tenantId: string): Promise<BackupRecord[]> {
  return ofStanza(await tx.backups.list(tenantId), await tx.backups.getStanza(tenantId));
}

/**
 * The tenant's recovery window from its stored backups and archive: `backups` is every backup of
 * the tenant, `current` those of the stanza it archives into now (the window's).
 */
export async function windowOf(
  tx: StoreReads,
  health: HealthCache,
  tenantId: string,
): Promise<{ backups: BackupRecord[]; current: BackupRecord[]; archivedThrough: number; window: RecoveryWindow | undefined }> {
  const backups = await tx.backups.list(tenantId);
  const stanza = await tx.backups.getStanza(tenantId);
  const current = ofStanza(backups, stanza);
  const through = await archivedThrough(tx, health, tenantId, stanza?.archivedThrough ?? 0);
  return { backups, current, archivedThrough: through, window: recoveryWindow(current, through) };
}
