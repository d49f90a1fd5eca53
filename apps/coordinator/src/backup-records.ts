/**
 * Names and rows of the backup work: a tenant's stanza (one per incarnation), backup and restore
 * ids that sort by time and say whose they are, and the recovery window from the stored facts.
 */
import { recoveryWindow, type RecoveryWindow } from '@pgs/tenancy';
import type { HealthCache } from './health-cache.js';
import type { BackupRecord, StanzaRecord, TenantRecord } from './model.js';
import type { Store, StoreTx } from './store/store.js';

/**
 * The stanza of a tenant incarnation: "<tenant>-<created unix ms>". A deleted-and-recreated id
 * gets a new one, so it never reads (or expires) the old tenant's backups.
 */
export function stanzaName(tenant: Pick<TenantRecord, 'id' | 'createdAt'>): string {
  return `${tenant.id}-${tenant.createdAt}`;
}

/** The tenant's stanza row, created when missing (inside the caller's transaction). */
export function ensureStanza(tx: StoreTx, tenant: Pick<TenantRecord, 'id' | 'createdAt'>, now: number): StanzaRecord {
  const existing = tx.getStanza(tenant.id);
  if (existing) return existing;
  const stanza: StanzaRecord = { tenantId: tenant.id, stanza: stanzaName(tenant), lastArchivedAt: 0, lastArchivedWal: '', createdAt: now };
  tx.putStanza(stanza);
  return stanza;
}

/** Gives every tenant without a stanza one (a fleet that turned backups on, or tenants created before). */
export function ensureStanzas(store: Store, now: number): number {
  let made = 0;
  let after: string | undefined;
  for (;;) {
    const page = store.listTenants({}, { after, limit: 1000 });
    if (page.length === 0) return made;
    store.write((tx) => {
      for (const t of page) {
        if (tx.getStanza(t.id)) continue;
        ensureStanza(tx, t, now);
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
export function newBackupId(tx: StoreTx, tenantId: string, now: number): string {
  return `b-${stamp(now)}-${tenantId}-${tx.listBackups(tenantId).length + 1}`;
}

/** A restore id, e.g. "r-20261206-101500-acme-restore-1-1". */
export function newRestoreId(tx: StoreTx, targetTenantId: string, now: number): string {
  return `r-${stamp(now)}-${targetTenantId}-${tx.listRestores(targetTenantId).length + 1}`;
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

/** The newest archived WAL time known: what the primary reported now, else what the store kept. */
export function lastArchivedAt(tx: StoreTx, health: HealthCache, tenantId: string): number {
  const stored = tx.getStanza(tenantId)?.lastArchivedAt ?? 0;
  const primary = tx.listPlacements({ tenantId }).find((p) => p.role === 'PRIMARY');
  const reported = primary ? (health.get(tenantId, primary.hostId)?.archive?.lastArchivedAt ?? 0) : 0;
  return Math.max(stored, reported);
}

/** The tenant's recovery window from its stored backups and archive. */
export function windowOf(tx: StoreTx, health: HealthCache, tenantId: string): { backups: BackupRecord[]; archivedAt: number; window: RecoveryWindow | undefined } {
  const backups = tx.listBackups(tenantId);
  const archivedAt = lastArchivedAt(tx, health, tenantId);
  return { backups, archivedAt, window: recoveryWindow(backups, archivedAt) };
}
