/**
 * Restores (RestoreTenant, GetRestore, RecreateTenant from_backup): the target is validated against
 * the source's recovery window (libs/tenancy), then one transaction writes the Restore row (RUNNING,
 * phase "recovering"), the target tenant in RESTORING and its primary placement on a host the
 * scheduler picks; the agent then creates that instance from the backup (InstanceSpec.restore) and
 * reports its recovery, which restore-progress.ts applies. Three kinds:
 *   new       a new tenant (same spec with external access off, the source's users with their SCRAM
 *             verifiers and its databases, its own stanza);
 *   in_place  the tenant's own data replaced: the restored instance is built on another host as the
 *             new primary; the old instances are left alone until it serves, then deleted;
 *   recreate  a tenant whose hosts are DOWN comes back from its own stanza on another host (a new
 *             timeline); the restore says how much WAL the lost primary had that the repository lacks.
 */
import { placeTenants, validateRestoreTarget, validateTenantId, ValidationError, PgsError, type ResolvedTarget, type RestoreTarget } from '@pgs/tenancy';
import { ensureStanza, newRestoreId, windowOf } from './backup-records.js';
import { requireBackups } from './backup-service.js';
import type { CoordinatorContext } from './context.js';
import { AlreadyExistsError, NotFoundError, notFound, PreconditionError } from './errors.js';
import { hostCandidates, versionRequest } from './host-candidates.js';
import { idempotent } from './idempotency.js';
import { newPlacement, type RestoreRecord, type TenantRecord } from './model.js';
import { ensureReplicationSecret } from './replication-secrets.js';
import { runningRestore } from './restore-progress.js';
import type { StoreTx } from './store/store.js';
import { syncTenant } from './tenant-sync.js';

/** What RestoreTenant asks. */
export interface RestoreRequest {
  id: string;
  target: RestoreTarget;
  asTenantId: string;
  inPlace: boolean;
  idempotencyKey: string;
}

/** A restore and the tenant it restores into. */
export interface RestoreOutcome {
  tenant: TenantRecord;
  restore: RestoreRecord;
}

/** Target errors a caller can fix by choosing another target: FAILED_PRECONDITION, not a malformed request. */
const TARGET_STATE_CODES = new Set(['RESTORE_TARGET_OUTSIDE_WINDOW', 'NO_RESTORABLE_BACKUP', 'BACKUP_NOT_RESTORABLE']);

function checkedTarget(tx: StoreTx, ctx: CoordinatorContext, tenantId: string, target: RestoreTarget): ResolvedTarget {
  const { backups, archivedAt } = windowOf(tx, ctx.health, tenantId);
  try {
    return validateRestoreTarget(target, backups, archivedAt);
  } catch (err) {
    if (err instanceof PgsError && TARGET_STATE_CODES.has(err.code)) throw new PreconditionError(err.code, err.message);
    if (err instanceof PgsError && err.code === 'BACKUP_NOT_FOUND') throw new NotFoundError(err.code, err.message);
    throw err;
  }
}

/** Restore operations. */
export class RestoreService {
  constructor(private readonly ctx: CoordinatorContext) {}

  private mustGet(tx: StoreTx, id: string, field = 'id'): TenantRecord {
    const tenant = tx.getTenant(validateTenantId(id, field));
    if (!tenant) throw notFound.tenant(id);
    return tenant;
  }

  /** The restore of `restoreId` into `tenantId`. */
  get(tenantId: string, restoreId: string): RestoreRecord {
    requireBackups(this.ctx);
    const r = this.ctx.store.getRestore(restoreId);
    if (!r || r.targetTenantId !== validateTenantId(tenantId, 'tenant_id')) throw new NotFoundError('RESTORE_NOT_FOUND', `restore "${restoreId}" of tenant "${tenantId}" does not exist`);
    return r;
  }

  /** RestoreTenant: into a new tenant (default) or in place. */
  restore(req: RestoreRequest, principal: string): RestoreOutcome {
    requireBackups(this.ctx);
    const now = this.ctx.clock();
    const { result } = this.ctx.store.write((tx) =>
      idempotent(tx, 'RestoreTenant', req.idempotencyKey, { ...req }, now, () => {
        const source = this.mustGet(tx, req.id);
        if (source.deleting) throw new PreconditionError('TENANT_DELETING', `tenant "${source.id}" is being deleted`);
        if (req.inPlace && req.asTenantId !== '' && req.asTenantId !== source.id) {
          throw new ValidationError('as_tenant_id', req.asTenantId, `empty or the source's own id ("${source.id}") with in_place`);
        }
        const target = checkedTarget(tx, this.ctx, source.id, req.target);
        const stanza = tx.getStanza(source.id);
        if (!stanza) throw new PreconditionError('NO_RESTORABLE_BACKUP', `tenant "${source.id}" has never been backed up`);
        return req.inPlace || req.asTenantId === source.id
          ? this.inPlace(tx, source, stanza.stanza, target, principal, now)
          : this.intoNew(tx, source, stanza.stanza, target, req.asTenantId, principal, now);
      }),
    );
    this.ctx.hub.touchTenant(result.tenant.id);
    return { tenant: this.ctx.store.getTenant(result.tenant.id) ?? result.tenant, restore: this.ctx.store.getRestore(result.restore.id) ?? result.restore };
  }

  /** "<id>-restore-<n>": the first n whose id is free. */
  private generatedId(tx: StoreTx, sourceId: string): string {
    for (let n = 1; n < 1000; n++) {
      const id = `${sourceId}-restore-${n}`;
      if (!tx.getTenant(id)) return validateTenantId(id, 'as_tenant_id');
    }
    throw new PreconditionError('RESTORE_ID_EXHAUSTED', `tenant "${sourceId}" has 999 restores; name the new tenant with as_tenant_id`);
  }

  private intoNew(tx: StoreTx, source: TenantRecord, sourceStanza: string, target: ResolvedTarget, asTenantId: string, principal: string, now: number): RestoreOutcome {
    const id = asTenantId === '' ? this.generatedId(tx, source.id) : validateTenantId(asTenantId, 'as_tenant_id');
    const existing = tx.getTenant(id);
    if (existing) {
      if (runningRestore(tx, id)) throw new PreconditionError('RESTORE_RUNNING', `a restore into "${id}" is running; wait for it (GetRestore) before another`);
      throw new AlreadyExistsError('TENANT_EXISTS', `tenant "${id}" already exists; restore into a new id, or in place with in_place`);
    }
    const tenant: TenantRecord = {
      id,
      // External access off: the copy must not take clients until an operator opens it.
      spec: { ...structuredClone(source.spec), externalAccess: false, runState: 'RUNNING' },
      revision: 1,
      instanceRevision: 1,
      status: 'RESTORING',
      statusReason: 'waiting for a host to restore on',
      deleting: false,
      createdAt: now,
      updatedAt: now,
    };
    tx.insertTenant(tenant);
    ensureStanza(tx, tenant, now);
    // The restored data holds the roles already; the agent re-applies them (same verifiers), so
    // "<user>.<new tenant>" logs in with the old password.
    for (const u of tx.listUsers(source.id)) if (u.status !== 'DELETING') tx.insertUser({ ...u, tenantId: id, status: 'NEW', statusReason: '', revision: 1, createdAt: now });
    for (const d of tx.listDatabases(source.id)) if (d.status !== 'DELETING') tx.insertDatabase({ ...d, tenantId: id, status: 'NEW', statusReason: '', revision: 1, createdAt: now });
    const restore = this.begin(tx, { kind: 'new', source, target: tenant, sourceStanza, resolved: target, oldHosts: [], oldLsn: '', principal, now });
    tx.appendEvent({ time: now, principal, action: 'tenant.create', tenantId: id, message: `tenant created by restore ${restore.id} of ${source.id}`, details: { restore: restore.id, source: source.id } });
    return { tenant, restore: this.place(tx, tenant, restore, [], now) };
  }

  private inPlace(tx: StoreTx, tenant: TenantRecord, sourceStanza: string, target: ResolvedTarget, principal: string, now: number): RestoreOutcome {
    if (runningRestore(tx, tenant.id)) throw new PreconditionError('RESTORE_RUNNING', `a restore into "${tenant.id}" is running; wait for it (GetRestore) before another`);
    const old = tx.listPlacements({ tenantId: tenant.id });
    const oldHosts = old.map((p) => p.hostId);
    const restore = this.begin(tx, { kind: 'in_place', source: tenant, target: tenant, sourceStanza, resolved: target, oldHosts, oldLsn: '', principal, now });
    this.replaceData(tx, tenant, restore, now);
    return { tenant, restore: this.place(tx, tenant, restore, oldHosts, now) };
  }

  /** RecreateTenant with from_backup: a tenant whose hosts are DOWN comes back from its own stanza on another host. */
  recreate(tenantId: string, toTime: number, principal: string): RestoreOutcome {
    requireBackups(this.ctx);
    const now = this.ctx.clock();
    const out = this.ctx.store.write((tx) => {
      const tenant = this.mustGet(tx, tenantId);
      if (tenant.deleting) throw new PreconditionError('TENANT_DELETING', `tenant "${tenant.id}" is being deleted`);
      if (runningRestore(tx, tenant.id)) throw new PreconditionError('RESTORE_RUNNING', `a restore into "${tenant.id}" is running; wait for it (GetRestore)`);
      const lost = tx.listPlacements({ tenantId: tenant.id });
      const live = lost.filter((p) => tx.getHost(p.hostId)?.state !== 'DOWN');
      // UNAVAILABLE: its hosts are down; ERROR: its instance failed (its data may be gone). A serving
      // tenant's data is replaced only by RestoreTenant in_place.
      if (tenant.status !== 'UNAVAILABLE' && tenant.status !== 'ERROR' && live.length > 0) {
        throw new PreconditionError('TENANT_NOT_UNAVAILABLE', `tenant "${tenant.id}" is ${tenant.status} on ${live.map((p) => p.hostId).join(', ')}; only a tenant whose hosts are down (or in ERROR) is re-created from its backup; RestoreTenant in_place replaces live data`);
      }
      const stanza = tx.getStanza(tenant.id);
      if (!stanza || !tx.listBackups(tenant.id).some((b) => b.status === 'SUCCEEDED')) {
        throw new PreconditionError('NO_RESTORABLE_BACKUP', `tenant "${tenant.id}" has no restorable backup; only accept_data_loss can re-create it (EMPTY)`);
      }
      const resolved = checkedTarget(tx, this.ctx, tenant.id, toTime > 0 ? { kind: 'time', time: toTime } : { kind: 'latest' });
      const oldPrimary = lost.find((p) => p.role === 'PRIMARY');
      const oldLsn = oldPrimary ? (this.ctx.health.get(tenant.id, oldPrimary.hostId)?.lsn ?? '') : '';
      const oldHosts = lost.map((p) => p.hostId);
      const restore = this.begin(tx, { kind: 'recreate', source: tenant, target: tenant, sourceStanza: stanza.stanza, resolved, oldHosts, oldLsn, principal, now });
      this.replaceData(tx, tenant, restore, now);
      tx.appendEvent({
        time: now,
        principal,
        action: 'tenant.recreate',
        tenantId: tenant.id,
        outcome: 'SUCCESS',
        message: `re-created from its backup (restore ${restore.id}); the instances on ${oldHosts.join(', ') || 'no host'} are abandoned`,
        details: { from_backup: 'true', restore: restore.id, abandoned_hosts: oldHosts.join(','), old_lsn: oldLsn },
      });
      return { tenant, restore: this.place(tx, tenant, restore, oldHosts, now) };
    });
    for (const h of out.restore.oldHosts) this.ctx.health.delete(tenantId, h);
    this.ctx.hub.touchTenant(tenantId);
    return { tenant: this.ctx.store.getTenant(tenantId) ?? out.tenant, restore: this.ctx.store.getRestore(out.restore.id) ?? out.restore };
  }

  /** Writes the Restore row (RUNNING, recovering) and its audit event. */
  private begin(
    tx: StoreTx,
    p: { kind: RestoreRecord['kind']; source: TenantRecord; target: TenantRecord; sourceStanza: string; resolved: ResolvedTarget; oldHosts: string[]; oldLsn: string; principal: string; now: number },
  ): RestoreRecord {
    const r: RestoreRecord = {
      id: newRestoreId(tx, p.target.id, p.now),
      kind: p.kind,
      sourceTenantId: p.source.id,
      targetTenantId: p.target.id,
      state: 'RUNNING',
      phase: 'recovering',
      reason: 'waiting for a host',
      sourceStanza: p.sourceStanza,
      toTime: p.resolved.kind === 'time' ? p.resolved.time : 0,
      toBackupId: p.resolved.kind === 'backup' ? p.resolved.backupId : '',
      backupLabel: p.resolved.kind === 'backup' ? p.resolved.label : '',
      latest: p.resolved.kind === 'latest',
      hostId: '',
      oldHosts: p.oldHosts,
      oldLsn: p.oldLsn,
      startedAt: p.now,
      finishedAt: 0,
      recoveredLsn: '',
      recoveredTime: 0,
      missingWalBytes: 0,
      timeline: 0,
      createdBy: p.principal,
    };
    tx.insertRestore(r);
    tx.appendEvent({
      time: p.now,
      principal: p.principal,
      action: 'restore.started',
      tenantId: p.target.id,
      message: `restore ${r.id} (${p.kind}) of ${p.source.id} started`,
      details: { restore: r.id, kind: p.kind, source: p.source.id, stanza: p.sourceStanza },
    });
    return r;
  }

  /**
   * The tenant's placements are dropped from the store (their instances are not told: the data
   * stays where it is until the restored instance serves), every role and database is created
   * again on the restored instance, and the tenant is RESTORING.
   */
  private replaceData(tx: StoreTx, tenant: TenantRecord, restore: RestoreRecord, now: number): void {
    for (const p of tx.listPlacements({ tenantId: tenant.id })) tx.deletePlacement(tenant.id, p.hostId);
    for (const u of tx.listUsers(tenant.id)) if (u.status !== 'DELETING') tx.updateUser({ ...u, status: 'NEW' });
    for (const d of tx.listDatabases(tenant.id)) if (d.status !== 'DELETING') tx.updateDatabase({ ...d, status: 'NEW' });
    tx.updateTenant({ ...tenant, status: 'RESTORING', statusReason: `restore ${restore.id}: waiting for a host`, instanceRevision: tenant.instanceRevision + 1, updatedAt: now });
  }

  /** Places the restored tenant (never on `excluded` hosts, which hold the data it replaces) and notes its primary's host. */
  private place(tx: StoreTx, tenant: TenantRecord, restore: RestoreRecord, excluded: string[], now: number): RestoreRecord {
    const current = tx.getTenant(tenant.id) ?? tenant;
    const { placed, unplaced } = placeTenants(
      hostCandidates(tx, this.ctx.versions),
      [{ tenantId: current.id, resources: current.spec.resources, nodes: current.spec.nodes, placement: current.spec.placement, excludeHosts: excluded, ...versionRequest(current) }],
      this.ctx.placementPolicy,
    );
    const hostIds = placed[0]?.hostIds;
    if (!hostIds || hostIds.length === 0) {
      throw new PreconditionError('NO_HOST_FOR_RESTORE', `no host can take the restored tenant: ${unplaced[0]?.reason ?? 'no candidate'}; add capacity or free a host and retry`);
    }
    if (hostIds.length > 1) ensureReplicationSecret(tx, this.ctx.keys, current.id, now);
    hostIds.forEach((hostId, i) => tx.insertPlacement(newPlacement({ tenantId: current.id, hostId, role: i === 0 ? 'PRIMARY' : 'REPLICA', address: tx.getHost(hostId)?.address ?? '', now })));
    const primary = hostIds[0] as string;
    const updated = { ...restore, hostId: primary, reason: `restoring on ${primary}` };
    tx.updateRestore(updated);
    tx.appendEvent({ time: now, principal: 'system:scheduler', action: 'scheduler.placed', tenantId: current.id, hostId: primary, message: `restored primary on ${primary}${hostIds.length > 1 ? `, replicas on ${hostIds.slice(1).join(', ')}` : ''}` });
    syncTenant(tx, current.id, { now, health: this.ctx.health, principal: 'system:scheduler' });
    return updated;
  }
}
