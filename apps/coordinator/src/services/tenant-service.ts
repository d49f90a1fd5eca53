/**
 * Tenant operations shared by the gRPC and REST APIs: validation through libs/tenancy, one store
 * transaction per operation (durable before the answer; creates share one per group, see
 * tenant-creates.ts), an audit event for each, and a desired-set push to the hosts concerned after
 * the commit.
 */
import {
  checkRevision,
  validateInitScripts,
  validateLabels,
  validatePassword,
  validateSpecChange,
  validateTenantId,
  validateTenantSpec,
  ValidationError,
  type InitScript,
  type InitSqlRecord,
  type TenantSpec,
} from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { notFound, PreconditionError } from '../domain/errors.js';
import type { InstanceHealthView } from '../live/health-cache.js';
import { PasswordRetryCache } from './idempotency.js';
import { finishDeletion } from './instance-reports.js';
import type { DatabaseRecord, EventRecord, PlacementRecord, RouteRecord, TenantRecord, UpgradeRecord, UserRecord } from '../domain/model.js';
import { scramVerifierAsync } from '@pgs/security';
import { generatePassword } from '../domain/generated-password.js';
import type { StoreReads, TenantFilter } from '../store/contract.js';
import { syncTenant } from './tenant-sync.js';
import { TenantCreates } from './tenant-creates.js';

/** A placement with the health last reported for it. */
export type PlacementView = PlacementRecord & { health: InstanceHealthView | undefined };

/** A tenant with its placements, as the APIs show it. */
export interface TenantView {
  tenant: TenantRecord;
  placements: PlacementView[];
  /** Its init scripts and how far they ran (absent: created without any). */
  initSql?: InitSqlRecord | undefined;
  /** Its major upgrade in flight or kept for a rollback (absent: none). */
  upgrade?: UpgradeRecord | undefined;
}

/** Everything GetTenant shows. */
export interface TenantDetails extends TenantView {
  route: RouteRecord | undefined;
  users: UserRecord[];
  databases: DatabaseRecord[];
  recentEvents: EventRecord[];
}

/** Input of createTenant (spec already defaulted by the caller's mapper). */
export interface CreateTenantInput {
  id: string;
  spec: TenantSpec;
  ownerPassword: string;
  idempotencyKey: string;
  /** Run once when the primary first runs (validated here). */
  initSql?: readonly InitScript[];
  /** Keep them HELD until released (RunInitSql). */
  holdInitSql?: boolean;
}

/** Who is asking, for the audit log. */
export type Principal = string;

/** Tenant operations. */
export class TenantService {
  private readonly passwords = new PasswordRetryCache();
  /** Creates are written in groups: a burst of them costs a few multi-row writes, not some fifteen statements each. */
  private readonly creates: TenantCreates;

  constructor(private readonly ctx: CoordinatorContext) {
    this.creates = new TenantCreates(ctx.store, () => ({ now: ctx.clock(), health: ctx.health, backups: ctx.backup !== undefined }));
  }

  /** A tenant with its placements and their health. */
  async view(tx: StoreReads, tenant: TenantRecord): Promise<TenantView> {
    return {
      tenant,
      placements: (await tx.placements.list({ tenantId: tenant.id })).map((p) => ({ ...p, health: this.ctx.health.get(p.tenantId, p.hostId) })),
      initSql: await tx.initSql.get(tenant.id),
      upgrade: await tx.upgrades.get(tenant.id),
    };
  }

  private async mustGet(tx: StoreReads, id: string): Promise<TenantRecord> {
    const tenant = await tx.tenants.get(id);
    if (!tenant) throw notFound.tenant(id);
    return tenant;
  }

  private mustBeLive(tenant: TenantRecord): void {
    if (tenant.deleting) throw new PreconditionError('TENANT_DELETING', `tenant "${tenant.id}" is being deleted`);
  }

  /** Refuses a spec its major cannot serve here (replicas without pg_basebackup of it, backups pgBackRest cannot take). */
  private checkVersionServes(spec: TenantSpec): void {
    const problem = this.ctx.versions.problem({ version: spec.version, nodes: spec.nodes, backups: backupsWanted(this.ctx, spec) });
    if (problem !== undefined) throw new PreconditionError('VERSION_UNSUPPORTED', problem);
  }

  /** Creates a tenant (status NEW) with its owner user and database named after it. */
  async create(input: CreateTenantInput, principal: Principal): Promise<{ view: TenantView; generatedPassword: string }> {
    const id = validateTenantId(input.id, 'id');
    const valid = validateTenantSpec(input.spec);
    // Stored resolved, so a later change of the catalog default never moves an existing tenant.
    const spec = { ...valid, version: this.ctx.versions.resolve(valid.version).id };
    this.checkVersionServes(spec);
    const password = input.ownerPassword === '' ? generatePassword() : validatePassword(input.ownerPassword, 'owner_password');
    const scripts = validateInitScripts(input.initSql ?? [], 'init_sql');
    // Hashed off the event loop before its group is written (wasted only on a replay or a duplicate).
    const verifier = await scramVerifierAsync(password);
    const generated = input.ownerPassword === '';
    const { answer, replayed, initSql } = await this.creates.submit({
      id,
      spec,
      scripts,
      holdInitSql: input.holdInitSql === true,
      verifier,
      generated,
      idempotencyKey: input.idempotencyKey,
      principal,
    });
    const now = this.ctx.clock();
    const scope = 'CreateTenant';
    if (!replayed && answer.generated && input.idempotencyKey) this.passwords.put(`${scope}:${input.idempotencyKey}`, password, now);
    const generatedPassword = !answer.generated ? '' : replayed ? (this.passwords.get(`${scope}:${input.idempotencyKey}`, now) ?? '') : password;
    return {
      view: { tenant: answer.tenant, placements: [], initSql: initSql === 'stored' ? await this.ctx.store.read.initSql.get(id) : initSql },
      generatedPassword,
    };
  }

  /** One tenant with users, databases, route and recent events. */
  async get(id: string): Promise<TenantDetails> {
    const tx = this.ctx.store;
    const tenant = await this.mustGet(tx.read, validateTenantId(id, 'id'));
    return {
      ...(await this.view(tx.read, tenant)),
      route: await tx.read.routes.get(id),
      users: await tx.read.users.list(id),
      databases: await tx.read.databases.list(id),
      recentEvents: (await tx.read.events.list({ tenantId: id, limit: 20 })).reverse(),
    };
  }

  /**
   * Tenants matching a filter, paged by id: the page token is the last id of the previous page. The
   * database reads one page (plus one row, to know whether another follows) and counts the rest.
   */
  async list(filter: TenantFilter, page: { size: number; token: string }): Promise<{ views: TenantView[]; nextToken: string; total: number }> {
    const tx = this.ctx.store;
    // Filter label keys go into a JSON path: only well-formed ones, as tenants carry.
    const checked = filter.labels ? { ...filter, labels: validateLabels(filter.labels, 'labels') } : filter;
    const rows = await tx.read.tenants.list(checked, { after: page.token || undefined, limit: page.size + 1 });
    const slice = rows.slice(0, page.size);
    const more = rows.length > page.size;
    return {
      views: await Promise.all(slice.map((t) => this.view(tx.read, t))),
      nextToken: more ? (slice[slice.length - 1]?.id ?? '') : '',
      total: await tx.read.tenants.count(checked),
    };
  }

  /** Changes the spec; `revision` must be the current one (ABORTED otherwise). */
  async update(id: string, revision: number, next: TenantSpec, principal: Principal): Promise<TenantView> {
    const now = this.ctx.clock();
    const view = await this.ctx.store.transaction(async (tx) => {
      const tenant = await this.mustGet(tx, validateTenantId(id, 'id'));
      this.mustBeLive(tenant);
      checkRevision(tenant.revision, revision);
      const changed = validateSpecChange(tenant.spec, next);
      // The tenant's own major stays valid even when no host reports it any more.
      const spec = { ...changed, version: changed.version === tenant.spec.version ? changed.version : this.ctx.versions.resolve(changed.version).id };
      if (spec.version !== tenant.spec.version) {
        throw new PreconditionError(
          'VERSION_CHANGE_UNSUPPORTED',
          `changing the PostgreSQL major version (${tenant.spec.version} -> ${spec.version}) needs an upgrade procedure that does not exist yet`,
        );
      }
      if (spec.nodes !== tenant.spec.nodes) {
        throw new PreconditionError(
          'NODES_CHANGE_UNSUPPORTED',
          'changing the number of nodes of an existing tenant needs the replication issue; create the tenant with the nodes it needs',
        );
      }
      // Turning backups on for a major pgBackRest cannot back up is refused now, not at the first archive.
      if (backupsWanted(this.ctx, spec) && !backupsWanted(this.ctx, tenant.spec)) this.checkVersionServes(spec);
      const updated = { ...tenant, spec, revision: tenant.revision + 1, instanceRevision: tenant.instanceRevision + 1, updatedAt: now };
      await tx.tenants.update(updated);
      await tx.events.append({ time: now, principal, action: 'tenant.update', tenantId: id, message: `spec updated to revision ${updated.revision}` });
      tx.record({ kind: 'room' });
      tx.record({ kind: 'desired', tenantId: id });
      return this.view(tx, (await syncTenant(tx, id, { now, health: this.ctx.health, principal })) ?? updated);
    });
    return view;
  }

  /** Applies a spec edit that needs no revision from the caller (start, stop, access). */
  private async edit(id: string, principal: Principal, action: string, change: (spec: TenantSpec) => TenantSpec, instanceChange: boolean): Promise<TenantView> {
    const now = this.ctx.clock();
    const view = await this.ctx.store.transaction(async (tx) => {
      const tenant = await this.mustGet(tx, validateTenantId(id, 'id'));
      this.mustBeLive(tenant);
      const spec = change(tenant.spec);
      if (JSON.stringify(spec) === JSON.stringify(tenant.spec)) return this.view(tx, tenant);
      const updated = {
        ...tenant,
        spec,
        revision: tenant.revision + 1,
        instanceRevision: tenant.instanceRevision + (instanceChange ? 1 : 0),
        updatedAt: now,
      };
      await tx.tenants.update(updated);
      await tx.events.append({ time: now, principal, action, tenantId: id, message: `${action} (revision ${updated.revision})` });
      if (instanceChange) {
        tx.record({ kind: 'room' });
        tx.record({ kind: 'desired', tenantId: id });
      }
      return this.view(tx, (await syncTenant(tx, id, { now, health: this.ctx.health, principal })) ?? updated);
    });
    return view;
  }

  /** Desired run state RUNNING. */
  async start(id: string, principal: Principal): Promise<TenantView> {
    return await this.edit(id, principal, 'tenant.start', (s) => ({ ...s, runState: 'RUNNING' }), true);
  }

  /** Desired run state STOPPED (data kept). */
  async stop(id: string, principal: Principal): Promise<TenantView> {
    return await this.edit(id, principal, 'tenant.stop', (s) => ({ ...s, runState: 'STOPPED' }), true);
  }

  /** External access through the routers on or off (off unless asked for). */
  async setAccess(id: string, externalAccess: boolean, principal: Principal): Promise<TenantView> {
    return await this.edit(id, principal, externalAccess ? 'tenant.access.enable' : 'tenant.access.disable', (s) => ({ ...s, externalAccess }), false);
  }

  /** Marks the tenant for deletion; agents delete the instances, then the rows go. */
  async delete(id: string, revision: number, principal: Principal): Promise<TenantView> {
    const now = this.ctx.clock();
    const view = await this.ctx.store.transaction(async (tx) => {
      const tenant = await this.mustGet(tx, validateTenantId(id, 'id'));
      checkRevision(tenant.revision, revision, { allowUnconditional: true });
      if (tenant.deleting) return this.view(tx, tenant);
      const updated = { ...tenant, deleting: true, updatedAt: now };
      await tx.tenants.update(updated);
      await tx.events.append({ time: now, principal, action: 'tenant.delete', tenantId: id, message: 'deletion requested' });
      tx.record({ kind: 'room' });
      tx.record({ kind: 'desired', tenantId: id });
      const synced = (await syncTenant(tx, id, { now, health: this.ctx.health, principal })) ?? updated;
      const result = await this.view(tx, synced);
      if ((await tx.placements.list({ tenantId: id })).length === 0) await finishDeletion(tx, id, now, principal);
      return result;
    });
    return view;
  }

  /** Re-creates an UNAVAILABLE tenant EMPTY on another host; only with acceptDataLoss, and audited. */
  async recreate(id: string, acceptDataLoss: boolean, principal: Principal): Promise<TenantView> {
    if (!acceptDataLoss) {
      throw new ValidationError(
        'accept_data_loss',
        acceptDataLoss,
        'true: the tenant comes back EMPTY on another host and its data is lost (or from_backup: it comes back from its backup)',
        {
          code: 'DATA_LOSS_NOT_ACCEPTED',
        },
      );
    }
    const now = this.ctx.clock();
    return await this.ctx.store.transaction(async (tx) => {
      const tenant = await this.mustGet(tx, validateTenantId(id, 'id'));
      this.mustBeLive(tenant);
      if (tenant.status !== 'UNAVAILABLE') {
        throw new PreconditionError('TENANT_NOT_UNAVAILABLE', `tenant "${id}" is ${tenant.status}; only an UNAVAILABLE tenant can be re-created empty`);
      }
      const lost = await tx.placements.list({ tenantId: id });
      for (const p of lost) await tx.placements.delete(id, p.hostId);
      // The new instance must create every role and database again.
      for (const u of await tx.users.list(id)) await tx.users.update({ ...u, status: 'NEW' });
      for (const d of await tx.databases.list(id)) await tx.databases.update({ ...d, status: 'NEW' });
      const updated: TenantRecord = {
        ...tenant,
        status: 'NEW',
        statusReason: 're-created empty by an operator (data loss accepted)',
        instanceRevision: tenant.instanceRevision + 1,
        updatedAt: now,
      };
      await tx.tenants.update(updated);
      await tx.events.append({
        time: now,
        principal,
        action: 'tenant.recreate',
        tenantId: id,
        outcome: 'SUCCESS',
        message: `re-created EMPTY; the data on ${lost.map((p) => p.hostId).join(', ') || 'no host'} is abandoned`,
        details: { accept_data_loss: 'true', abandoned_hosts: lost.map((p) => p.hostId).join(',') },
      });
      tx.record({ kind: 'place', tenantId: id });
      return this.view(tx, (await syncTenant(tx, id, { now, health: this.ctx.health, principal })) ?? updated);
    });
  }
}

/** The tenant archives WAL and takes backups: the fleet has a repository and its policy does not turn them off. */
function backupsWanted(ctx: CoordinatorContext, spec: TenantSpec): boolean {
  return ctx.backup !== undefined && spec.backup?.disabled !== true;
}
