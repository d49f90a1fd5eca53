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
import { AlreadyExistsError, NotFoundError, notFound, PreconditionError } from '../domain/errors.js';
import { hostCandidates, versionRequest } from './host-candidates.js';
import { idempotent } from './idempotency.js';
import { newPlacement, type RestoreRecord, type TenantRecord } from '../domain/model.js';
import { ensureReplicationSecret } from './replication-secrets.js';
import { runningRestore } from './restore-progress.js';
import type { StoreReads, StoreTx } from '../store/contract.js';
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

async function checkedTarget(tx: StoreTx, ctx: CoordinatorContext, tenantId: string, target: RestoreTarget): Promise<ResolvedTarget> {
  const { backups, current, archivedThrough } = await windowOf(tx, ctx.health, tenantId);
  // A backup of the major the tenant ran before an upgrade lives in that major's stanza: nothing
  // restores across the upgrade point (the window starts with the new major's first backup).
  const before = target.kind === 'backup' ? backups.find((b) => b.id === target.backupId && !current.includes(b)) : undefined;
  if (before)
    throw new PreconditionError(
      'BACKUP_BEFORE_UPGRADE',
      `backup "${before.id}" was taken in stanza ${before.stanza}, before the tenant's last major upgrade; a restore does not cross the upgrade point: choose a backup taken since`,
    );
  try {
    return validateRestoreTarget(target, current, archivedThrough);
  } catch (err) {
    if (err instanceof PgsError && TARGET_STATE_CODES.has(err.code)) throw new PreconditionError(err.code, err.message);
    if (err instanceof PgsError && err.code === 'BACKUP_NOT_FOUND') throw new NotFoundError(err.code, err.message);
    throw err;
  }
}

/** Restore operations. */
export class RestoreService {
  constructor(private readonly ctx: CoordinatorContext) {}

  private async mustGet(tx: StoreReads, id: string, field = 'id'): Promise<TenantRecord> {
    const tenant = await tx.tenants.get(validateTenantId(id, field));
    if (!tenant) throw notFound.tenant(id);
    return tenant;
  }

  /** The restore of `restoreId` into `tenantId`. */
  async get(tenantId: string, restoreId: string): Promise<RestoreRecord> {
    requireBackups(this.ctx);
    const r = await this.ctx.store.read.restores.get(restoreId);
    if (!r || r.targetTenantId !== validateTenantId(tenantId, 'tenant_id'))
      throw new NotFoundError('RESTORE_NOT_FOUND', `restore "${restoreId}" of tenant "${tenantId}" does not exist`);
    return r;
  }

  /** RestoreTenant: into a new tenant (default) or in place. */
  async restore(req: RestoreRequest, principal: string): Promise<RestoreOutcome> {
    requireBackups(this.ctx);
    const now = this.ctx.clock();
    const { result } = await this.ctx.store.transaction(async (tx) =>
      idempotent(tx, 'RestoreTenant', req.idempotencyKey, { ...req }, now, async () => {
        const source = await this.mustGet(tx, req.id);
        if (source.deleting) throw new PreconditionError('TENANT_DELETING', `tenant "${source.id}" is being deleted`);
        if (req.inPlace && req.asTenantId !== '' && req.asTenantId !== source.id) {
          throw new ValidationError('as_tenant_id', req.asTenantId, `empty or the source's own id ("${source.id}") with in_place`);
        }
        const target = await checkedTarget(tx, this.ctx, source.id, req.target);
        const stanza = await tx.backups.getStanza(source.id);
        if (!stanza) throw new PreconditionError('NO_RESTORABLE_BACKUP', `tenant "${source.id}" has never been backed up`);
        const outcome =
          req.inPlace || req.asTenantId === source.id
            ? await this.inPlace(tx, source, stanza.stanza, target, principal, now)
            : await this.intoNew(tx, source, stanza.stanza, target, req.asTenantId, principal, now);
        tx.record({ kind: 'desired', tenantId: outcome.tenant.id });
        return outcome;
      }),
    );
    return {
      tenant: (await this.ctx.store.read.tenants.get(result.tenant.id)) ?? result.tenant,
      restore: (await this.ctx.store.read.restores.get(result.restore.id)) ?? result.restore,
    };
  }

  /** "<id>-restore-<n>": the first n whose id is free. */
  private async generatedId(tx: StoreReads, sourceId: string): Promise<string> {
    for (let n = 1; n < 1000; n++) {
      const id = `${sourceId}-restore-${n}`;
      if (!(await tx.tenants.get(id))) return validateTenantId(id, 'as_tenant_id');
    }
    throw new PreconditionError('RESTORE_ID_EXHAUSTED', `tenant "${sourceId}" has 999 restores; name the new tenant with as_tenant_id`);
  }

  private async intoNew(
    tx: StoreTx,
    source: TenantRecord,
    sourceStanza: string,
    target: ResolvedTarget,
    asTenantId: string,
    principal: string,
    now: number,
  ): Promise<RestoreOutcome> {
    const id = asTenantId === '' ? await this.generatedId(tx, source.id) : validateTenantId(asTenantId, 'as_tenant_id');
    const existing = await tx.tenants.get(id);
    if (existing) {
      if (await runningRestore(tx, id))
        throw new PreconditionError('RESTORE_RUNNING', `a restore into "${id}" is running; wait for it (GetRestore) before another`);
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
    await tx.tenants.insert(tenant);
    await ensureStanza(tx, tenant, now);
    // The restored data holds the roles already; the agent re-applies them (same verifiers), so
    // "<user>.<new tenant>" logs in with the old password.
    for (const u of await tx.users.list(source.id))
      if (u.status !== 'DELETING') await tx.users.insert({ ...u, tenantId: id, status: 'NEW', statusReason: '', revision: 1, createdAt: now });
    for (const d of await tx.databases.list(source.id))
      if (d.status !== 'DELETING') await tx.databases.insert({ ...d, tenantId: id, status: 'NEW', statusReason: '', revision: 1, createdAt: now });
    const restore = await this.begin(tx, { kind: 'new', source, target: tenant, sourceStanza, resolved: target, oldHosts: [], oldLsn: '', principal, now });
    await tx.events.append({
      time: now,
      principal,
      action: 'tenant.create',
      tenantId: id,
      message: `tenant created by restore ${restore.id} of ${source.id}`,
      details: { restore: restore.id, source: source.id },
    });
    return { tenant, restore: await this.place(tx, tenant, restore, [], now) };
  }

  private async inPlace(
    tx: StoreTx,
    tenant: TenantRecord,
    sourceStanza: string,
    target: ResolvedTarget,
    principal: string,
    now: number,
  ): Promise<RestoreOutcome> {
    if (await runningRestore(tx, tenant.id))
      throw new PreconditionError('RESTORE_RUNNING', `a restore into "${tenant.id}" is running; wait for it (GetRestore) before another`);
    const old = await tx.placements.list({ tenantId: tenant.id });
    const oldHosts = old.map((p) => p.hostId);
    const restore = await this.begin(tx, {
      kind: 'in_place',
      source: tenant,
      target: tenant,
      sourceStanza,
      resolved: target,
      oldHosts,
      oldLsn: '',
      principal,
      now,
    });
    await this.replaceData(tx, tenant, restore, now);
    return { tenant, restore: await this.place(tx, tenant, restore, oldHosts, now) };
  }

  /** RecreateTenant with from_backup: a tenant whose hosts are DOWN comes back from its own stanza on another host. */
  async recreate(tenantId: string, toTime: number, principal: string): Promise<RestoreOutcome> {
    requireBackups(this.ctx);
    const now = this.ctx.clock();
    const out = await this.ctx.store.transaction(async (tx) => {
      const tenant = await this.mustGet(tx, tenantId);
      if (tenant.deleting) throw new PreconditionError('TENANT_DELETING', `tenant "${tenant.id}" is being deleted`);
      if (await runningRestore(tx, tenant.id))
        throw new PreconditionError('RESTORE_RUNNING', `a restore into "${tenant.id}" is running; wait for it (GetRestore)`);
      const lost = await tx.placements.list({ tenantId: tenant.id });
      const live = [];
      for (const p of lost) if ((await tx.hosts.get(p.hostId))?.state !== 'DOWN') live.push(p);
      // UNAVAILABLE: its hosts are down; ERROR: its instance failed (its data may be gone). A serving
      // tenant's data is replaced only by RestoreTenant in_place.
      if (tenant.status !== 'UNAVAILABLE' && tenant.status !== 'ERROR' && live.length > 0) {
        throw new PreconditionError(
          'TENANT_NOT_UNAVAILABLE',
          `tenant "${tenant.id}" is ${tenant.status} on ${live.map((p) => p.hostId).join(', ')}; only a tenant whose hosts are down (or in ERROR) is re-created from its backup; RestoreTenant in_place replaces live data`,
        );
      }
      const stanza = await tx.backups.getStanza(tenant.id);
      if (!stanza || !(await tx.backups.list(tenant.id)).some((b) => b.status === 'SUCCEEDED')) {
        throw new PreconditionError('NO_RESTORABLE_BACKUP', `tenant "${tenant.id}" has no restorable backup; only accept_data_loss can re-create it (EMPTY)`);
      }
      const resolved = await checkedTarget(tx, this.ctx, tenant.id, toTime > 0 ? { kind: 'time', time: toTime } : { kind: 'latest' });
      const oldPrimary = lost.find((p) => p.role === 'PRIMARY');
      const oldLsn = oldPrimary ? (this.ctx.health.get(tenant.id, oldPrimary.hostId)?.lsn ?? '') : '';
      const oldHosts = lost.map((p) => p.hostId);
      const restore = await this.begin(tx, {
        kind: 'recreate',
        source: tenant,
        target: tenant,
        sourceStanza: stanza.stanza,
        resolved,
        oldHosts,
        oldLsn,
        principal,
        now,
      });
      await this.replaceData(tx, tenant, restore, now);
      await tx.events.append({
        time: now,
        principal,
        action: 'tenant.recreate',
        tenantId: tenant.id,
        outcome: 'SUCCESS',
        message: `re-created from its backup (restore ${restore.id}); the instances on ${oldHosts.join(', ') || 'no host'} are abandoned`,
        details: { from_backup: 'true', restore: restore.id, abandoned_hosts: oldHosts.join(','), old_lsn: oldLsn },
      });
      tx.record({ kind: 'place', tenantId: tenant.id });
      tx.record({ kind: 'desired', tenantId });
      return { tenant, restore: await this.place(tx, tenant, restore, oldHosts, now) };
    });
    for (const h of out.restore.oldHosts) this.ctx.health.delete(tenantId, h);
    return {
      tenant: (await this.ctx.store.read.tenants.get(tenantId)) ?? out.tenant,
      restore: (await this.ctx.store.read.restores.get(out.restore.id)) ?? out.restore,
    };
  }

  /** Writes the Restore row (RUNNING, recovering) and its audit event. */
  private async begin(
    tx: StoreTx,
    p: {
      kind: RestoreRecord['kind'];
      source: TenantRecord;
      target: TenantRecord;
      sourceStanza: string;
      resolved: ResolvedTarget;
      oldHosts: string[];
      oldLsn: string;
      principal: string;
      now: number;
    },
  ): Promise<RestoreRecord> {
    const r: RestoreRecord = {
      id: await newRestoreId(tx, p.target.id, p.now),
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
    await tx.restores.insert(r);
    await tx.events.append({
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
  private async replaceData(tx: StoreTx, tenant: TenantRecord, restore: RestoreRecord, now: number): Promise<void> {
    for (const p of await tx.placements.list({ tenantId: tenant.id })) await tx.placements.delete(tenant.id, p.hostId);
    for (const u of await tx.users.list(tenant.id)) if (u.status !== 'DELETING') await tx.users.update({ ...u, status: 'NEW' });
    for (const d of await tx.databases.list(tenant.id)) if (d.status !== 'DELETING') await tx.databases.update({ ...d, status: 'NEW' });
    await tx.tenants.update({
      ...tenant,
      status: 'RESTORING',
      statusReason: `restore ${restore.id}: waiting for a host`,
      instanceRevision: tenant.instanceRevision + 1,
      updatedAt: now,
    });
  }

  /** Places the restored tenant (never on `excluded` hosts, which hold the data it replaces) and notes its primary's host. */
  private async place(tx: StoreTx, tenant: TenantRecord, restore: RestoreRecord, excluded: string[], now: number): Promise<RestoreRecord> {
    const current = (await tx.tenants.get(tenant.id)) ?? tenant;
    const { placed, unplaced } = placeTenants(
      await hostCandidates(tx, this.ctx.versions, this.ctx.slots),
      [
        {
          tenantId: current.id,
          resources: current.spec.resources,
          nodes: current.spec.nodes,
          placement: current.spec.placement,
          excludeHosts: excluded,
          ...versionRequest(current),
        },
      ],
      this.ctx.placementPolicy,
    );
    const hostIds = placed[0]?.hostIds;
    if (!hostIds || hostIds.length === 0) {
      throw new PreconditionError(
        'NO_HOST_FOR_RESTORE',
        `no host can take the restored tenant: ${unplaced[0]?.reason ?? 'no candidate'}; add capacity or free a host and retry`,
      );
    }
    if (hostIds.length > 1) await ensureReplicationSecret(tx, this.ctx.keys, current.id, now);
    for (const [i, hostId] of hostIds.entries())
      await tx.placements.insert(
        newPlacement({ tenantId: current.id, hostId, role: i === 0 ? 'PRIMARY' : 'REPLICA', address: (await tx.hosts.get(hostId))?.address ?? '', now }),
      );
    const primary = hostIds[0] as string;
    const updated = { ...restore, hostId: primary, reason: `restoring on ${primary}` };
    await tx.restores.update(updated);
    await tx.events.append({
      time: now,
      principal: 'system:scheduler',
      action: 'scheduler.placed',
      tenantId: current.id,
      hostId: primary,
      message: `restored primary on ${primary}${hostIds.length > 1 ? `, replicas on ${hostIds.slice(1).join(', ')}` : ''}`,
    });
    await syncTenant(tx, current.id, { now, health: this.ctx.health, principal: 'system:scheduler' });
    return updated;
  }
}
