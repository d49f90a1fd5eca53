/**
 * Backup operations shared by the gRPC and REST APIs: take one now, list, show, delete (never
 * below the retention window unless forced), and the overview GetTenant shows. Decisions are
 * libs/tenancy's; each write is one transaction; commands go to the primary's agent after commit.
 */
import {
  backupProblems,
  defaultBackupType,
  deleteImpact,
  describeWindow,
  effectiveBackupPolicy,
  validateTenantId,
  type BackupType,
  type EffectivePolicy,
  type RecoveryWindow,
} from '@pgs/tenancy';
import { windowOf } from './backup-records.js';
import type { BackupSettings } from './backup-repository.js';
import { runningPrimary, type BackupScheduler } from './backup-scheduler.js';
import type { CoordinatorContext } from './context.js';
import { NotFoundError, notFound, PreconditionError } from '../domain/errors.js';
import type { ArchiveHealth } from '../live/health-cache.js';
import { idempotent } from './idempotency.js';
import { toExpireBackupCommand } from '../transport/mappers/agent-mapper.js';
import type { BackupRecord, TenantRecord } from '../domain/model.js';
import type { StoreReads } from '../store/contract.js';

/** Backups at a glance (GetTenant). */
export interface BackupOverviewView {
  policy: EffectivePolicy;
  window: RecoveryWindow | undefined;
  lastGood: BackupRecord | undefined;
  running: BackupRecord | undefined;
  archive: ArchiveHealth | undefined;
  problems: string[];
}

/** The refusal when the fleet has no repository. */
export function noRepository(): PreconditionError {
  return new PreconditionError('BACKUPS_NOT_CONFIGURED', 'no backup repository is configured; start the coordinator with --backup-repo');
}

/** The settings, or the refusal. */
export function requireBackups(ctx: CoordinatorContext): BackupSettings {
  if (!ctx.backup) throw noRepository();
  return ctx.backup;
}

/** The primary's archive status as last reported. */
export async function primaryArchive(tx: StoreReads, ctx: CoordinatorContext, tenantId: string): Promise<ArchiveHealth | undefined> {
  const primary = (await tx.placements.list({ tenantId })).find((p) => p.role === 'PRIMARY');
  return primary ? ctx.health.get(tenantId, primary.hostId)?.archive : undefined;
}

const newestFirst = (a: BackupRecord, b: BackupRecord): number => b.startedAt - a.startedAt || (a.id < b.id ? 1 : -1);

/** Backup operations. */
export class BackupService {
  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly scheduler: BackupScheduler,
  ) {}

  private async mustGet(tx: StoreReads, id: string): Promise<TenantRecord> {
    const tenant = await tx.tenants.get(validateTenantId(id, 'tenant_id'));
    if (!tenant) throw notFound.tenant(id);
    return tenant;
  }

  private async mustGetBackup(tx: StoreReads, tenantId: string, id: string): Promise<BackupRecord> {
    const b = await tx.backups.get(tenantId, id);
    if (!b) throw new NotFoundError('BACKUP_NOT_FOUND', `backup "${id}" does not exist in tenant "${tenantId}"`);
    return b;
  }

  /** Takes a backup now (type unspecified: full without a restorable full, else diff). */
  async create(tenantId: string, type: BackupType | undefined, idempotencyKey: string, principal: string): Promise<BackupRecord> {
    requireBackups(this.ctx);
    const now = this.ctx.clock();
    const { result, replayed } = await this.ctx.store.transaction(async (tx) =>
      idempotent(tx, 'CreateBackup', idempotencyKey, { tenantId, type: type ?? '' }, now, async () => {
        const tenant = await this.mustGet(tx, tenantId);
        if (tenant.deleting) throw new PreconditionError('TENANT_DELETING', `tenant "${tenant.id}" is being deleted`);
        const primary = await runningPrimary(tx, tenant.id);
        if (!primary || !this.ctx.hub.isConnected(primary.hostId)) {
          throw new PreconditionError(
            'NO_RUNNING_PRIMARY',
            `tenant "${tenant.id}" has no running primary to back up (status ${tenant.status}); start it or wait until it is ACTIVE`,
          );
        }
        // Backup.trigger "operator:<name>": the caller as the audit log names it.
        const trigger = principal.startsWith('operator:') ? principal : `operator:${principal}`;
        return this.scheduler.record(tx, tenant, primary, type ?? defaultBackupType(await tx.backups.list(tenant.id)), trigger, now, principal);
      }),
    );
    if (!replayed) await this.scheduler.send(result);
    return (await this.ctx.store.read.backups.get(result.tenantId, result.id)) ?? result;
  }

  /** The tenant's backups, newest first (failed and expired ones only with `all`), and its window. */
  async list(tenantId: string, all: boolean): Promise<{ backups: BackupRecord[]; window: RecoveryWindow | undefined }> {
    requireBackups(this.ctx);
    const tx = this.ctx.store;
    const tenant = await this.mustGet(tx.read, tenantId);
    const { backups, window } = await windowOf(tx.read, this.ctx.health, tenant.id);
    const shown = all ? backups : backups.filter((b) => b.status === 'SUCCEEDED' || b.status === 'RUNNING');
    return { backups: [...shown].sort(newestFirst), window };
  }

  /** One backup. */
  async get(tenantId: string, backupId: string): Promise<BackupRecord> {
    requireBackups(this.ctx);
    const tenant = await this.mustGet(this.ctx.store.read, tenantId);
    return this.mustGetBackup(this.ctx.store.read, tenant.id, backupId);
  }

  /**
   * Deletes a backup (and the backups that depend on it) from the repository: refused when the
   * recovery window would then cover less than the retention, unless `force`. The rows are EXPIRED
   * at once; ExpireBackup goes to the primary's agent.
   */
  async delete(tenantId: string, backupId: string, force: boolean, principal: string): Promise<BackupRecord> {
    const settings = requireBackups(this.ctx);
    const now = this.ctx.clock();
    const out = await this.ctx.store.transaction(async (tx) => {
      const tenant = await this.mustGet(tx, tenantId);
      const b = await this.mustGetBackup(tx, tenant.id, backupId);
      if (b.status === 'RUNNING') throw new PreconditionError('BACKUP_RUNNING', `backup "${b.id}" is still running; delete it once it finished`);
      if (b.status !== 'SUCCEEDED') return { backup: b, label: '', hostId: '' };
      const policy = effectiveBackupPolicy(tenant.spec.backup, settings.policy);
      const { current, archivedThrough } = await windowOf(tx, this.ctx.health, tenant.id);
      // The expire runs on the tenant's primary, whose pgBackRest config names the stanza it archives into now.
      if (!current.some((x) => x.id === b.id))
        throw new PreconditionError(
          'BACKUP_BEFORE_UPGRADE',
          `backup "${b.id}" is in stanza ${b.stanza} of the major the tenant ran before its upgrade; it is not deleted through the tenant's new instance (remove it with pgbackrest expire on that stanza)`,
        );
      const impact = deleteImpact(current, b.id, archivedThrough, policy.retentionSeconds * 1000, now);
      if (impact.shrinksBelowRetention && !force) {
        const after = impact.after ? `it would start at ${describeWindow(impact.after).split(' to ')[0]}` : 'no restorable backup would be left';
        throw new PreconditionError(
          'BACKUP_INSIDE_RETENTION',
          `deleting backup "${b.id}" shrinks the recovery window below the retention of ${Math.round(policy.retentionSeconds / 86_400)} day(s): ${after}; pass force to delete it anyway`,
        );
      }
      const removed = impact.removed
        .map((id) => current.find((x) => x.id === id))
        .filter((x): x is BackupRecord => x !== undefined && x.status === 'SUCCEEDED');
      for (const x of removed)
        await tx.backups.update({ ...x, status: 'EXPIRED', reason: x.id === b.id ? `deleted by ${principal}` : `deleted with ${b.id} (it depended on it)` });
      await tx.events.append({
        time: now,
        principal,
        action: 'backup.deleted',
        tenantId: tenant.id,
        outcome: 'SUCCESS',
        message: `backup ${b.id} (${b.label}) deleted${removed.length > 1 ? ` with ${removed.length - 1} dependent backup(s)` : ''}${impact.shrinksBelowRetention ? '; the recovery window is now shorter than the retention (forced)' : ''}`,
        details: { backup: b.id, force: String(force), removed: removed.map((x) => x.id).join(',') },
      });
      const primary = (await tx.placements.list({ tenantId: tenant.id })).find((p) => p.role === 'PRIMARY');
      return { backup: (await tx.backups.get(tenant.id, b.id)) ?? b, label: b.label, hostId: primary?.hostId ?? '' };
    });
    if (out.label !== '') await this.sendExpire(out.backup, out.label, out.hostId);
    return out.backup;
  }

  /** Asks the primary's agent to remove the backup from the repository. */
  private async sendExpire(b: BackupRecord, label: string, hostId: string): Promise<void> {
    const message = toExpireBackupCommand(`expire:${b.tenantId}:${b.id}`, b.tenantId, b.stanza, label);
    if (hostId === '' || !this.ctx.hub.send(hostId, message, 'expire backup')) {
      this.ctx.log.warn(
        { tenantId: b.tenantId, backupId: b.id, hostId },
        'cannot reach the primary to expire a backup; the repository keeps it until the retention removes it',
      );
      await this.ctx.store.transaction((tx) =>
        tx.events.append({
          time: this.ctx.clock(),
          principal: 'system:backups',
          action: 'backup.expire_unsent',
          tenantId: b.tenantId,
          outcome: 'FAILURE',
          message: `backup ${b.id} is marked deleted but no agent could remove it from the repository now; the retention will`,
        }),
      );
    }
  }

  /** The overview of GetTenant; undefined when backups are off. */
  async overview(tenant: TenantRecord): Promise<BackupOverviewView | undefined> {
    const settings = this.ctx.backup;
    if (!settings) return undefined;
    const tx = this.ctx.store;
    const policy = effectiveBackupPolicy(tenant.spec.backup, settings.policy);
    const { backups, window } = await windowOf(tx.read, this.ctx.health, tenant.id);
    const good = backups.filter((b) => b.status === 'SUCCEEDED');
    const archive = await primaryArchive(tx.read, this.ctx, tenant.id);
    const view = archive
      ? {
          failedCount: archive.failedCount,
          lastArchivedAt: archive.lastArchivedAt,
          lastFailedAt: archive.lastFailedAt,
          lagSeconds: archive.lagSeconds,
          pendingSegments: archive.pendingSegments,
        }
      : undefined;
    return {
      policy,
      window,
      lastGood: good.sort(newestFirst)[0],
      running: backups.find((b) => b.status === 'RUNNING'),
      archive,
      problems: backupProblems({ policy, backups, archive: view, since: tenant.createdAt, now: this.ctx.clock() }),
    };
  }
}
