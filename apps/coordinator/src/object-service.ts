/**
 * Users and databases inside a tenant. Each change bumps the tenant's instance revision and is
 * carried to the primary in its desired instance (declaratively); the object turns ACTIVE (or
 * disappears, for a deletion) when the primary reports that revision realized.
 */
import { validateDatabaseName, validatePassword, validateTenantId, validateUserName, ValidationError } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { AlreadyExistsError, notFound, PreconditionError } from './errors.js';
import { idempotent } from './idempotency.js';
import type { DatabaseRecord, TenantRecord, UserRecord } from './model.js';
import { scramVerifierAsync } from '@pgs/security';
import type { StoreTx } from './store/store.js';
import { syncTenant } from './tenant-sync.js';

/** User and database operations. */
export class ObjectService {
  constructor(private readonly ctx: CoordinatorContext) {}

  private liveTenant(tx: StoreTx, tenantId: string): TenantRecord {
    const tenant = tx.getTenant(validateTenantId(tenantId, 'tenant_id'));
    if (!tenant) throw notFound.tenant(tenantId);
    if (tenant.deleting) throw new PreconditionError('TENANT_DELETING', `tenant "${tenantId}" is being deleted`);
    return tenant;
  }

  /** Bumps the instance revision for an object change; returns it. */
  private bump(tx: StoreTx, tenant: TenantRecord, now: number): number {
    const instanceRevision = tenant.instanceRevision + 1;
    tx.updateTenant({ ...tenant, instanceRevision, updatedAt: now });
    return instanceRevision;
  }

  /** Whether the tenant has an instance that must apply the change (else rows change at once). */
  private placed(tx: StoreTx, tenantId: string): boolean {
    return tx.listPlacements({ tenantId }).length > 0;
  }

  private after(tx: StoreTx, tenantId: string, now: number, principal: string): void {
    syncTenant(tx, tenantId, { now, health: this.ctx.health, principal });
  }

  /** Creates a login role; the password becomes a SCRAM verifier at once. */
  async createUser(input: { tenantId: string; name: string; password: string; description: string; idempotencyKey: string }, principal: string): Promise<UserRecord> {
    const name = validateUserName(input.name, 'name');
    const password = validatePassword(input.password, 'password');
    if (input.description.length > 1024) throw new ValidationError('description', input.description, 'at most 1024 characters');
    const verifier = await scramVerifierAsync(password);
    const now = this.ctx.clock();
    const { result } = await this.ctx.store.writeGrouped((tx) =>
      idempotent(tx, `CreateUser:${input.tenantId}`, input.idempotencyKey, { tenantId: input.tenantId, name, description: input.description }, now, () => {
        const tenant = this.liveTenant(tx, input.tenantId);
        if (tx.getUser(tenant.id, name)) throw new AlreadyExistsError('USER_EXISTS', `user "${name}" already exists in tenant "${tenant.id}"`);
        const revision = this.bump(tx, tenant, now);
        const user: UserRecord = { tenantId: tenant.id, name, description: input.description, scramVerifier: verifier, owner: false, status: 'NEW', statusReason: '', revision, createdAt: now };
        tx.insertUser(user);
        tx.appendEvent({ time: now, principal, action: 'user.create', tenantId: tenant.id, message: `user "${name}" created`, details: { user: name } });
        this.after(tx, tenant.id, now, principal);
        return user;
      }),
    );
    this.ctx.hub.touchTenant(input.tenantId);
    return result;
  }

  /** One user. */
  getUser(tenantId: string, name: string): UserRecord {
    const tenant = this.ctx.store.getTenant(validateTenantId(tenantId, 'tenant_id'));
    if (!tenant) throw notFound.tenant(tenantId);
    const user = this.ctx.store.getUser(tenant.id, name);
    if (!user) throw notFound.user(tenantId, name);
    return user;
  }

  /** The users of a tenant, owner first. */
  listUsers(tenantId: string): UserRecord[] {
    const tenant = this.ctx.store.getTenant(validateTenantId(tenantId, 'tenant_id'));
    if (!tenant) throw notFound.tenant(tenantId);
    return this.ctx.store.listUsers(tenant.id);
  }

  /** Sets a new password (as a new verifier). */
  async updatePassword(tenantId: string, name: string, password: string, principal: string): Promise<UserRecord> {
    const verifier = await scramVerifierAsync(validatePassword(password, 'password'));
    const now = this.ctx.clock();
    const user = await this.ctx.store.writeGrouped((tx) => {
      const tenant = this.liveTenant(tx, tenantId);
      const user = tx.getUser(tenant.id, name);
      if (!user || user.status === 'DELETING') throw notFound.user(tenantId, name);
      const revision = this.bump(tx, tenant, now);
      const updated: UserRecord = { ...user, scramVerifier: verifier, revision };
      tx.updateUser(updated);
      tx.appendEvent({ time: now, principal, action: 'user.password', tenantId: tenant.id, message: `password of "${name}" changed`, details: { user: name } });
      this.after(tx, tenant.id, now, principal);
      return updated;
    });
    this.ctx.hub.touchTenant(tenantId);
    return user;
  }

  /** Drops a user (not the owner, not one that owns databases). */
  deleteUser(tenantId: string, name: string, principal: string): void {
    const now = this.ctx.clock();
    this.ctx.store.write((tx) => {
      const tenant = this.liveTenant(tx, tenantId);
      const user = tx.getUser(tenant.id, name);
      if (!user) throw notFound.user(tenantId, name);
      if (user.owner) throw new PreconditionError('OWNER_USER', `user "${name}" owns tenant "${tenant.id}" and cannot be deleted`);
      const owned = tx.listDatabases(tenant.id).filter((d) => d.owner === name && d.status !== 'DELETING');
      if (owned.length > 0) throw new PreconditionError('USER_OWNS_DATABASES', `user "${name}" owns ${owned.map((d) => `"${d.name}"`).join(', ')}; delete or re-own them first`);
      if (user.status === 'DELETING') return;
      if (!this.placed(tx, tenant.id)) tx.deleteUser(tenant.id, name);
      else tx.updateUser({ ...user, status: 'DELETING', revision: this.bump(tx, tenant, now) });
      tx.appendEvent({ time: now, principal, action: 'user.delete', tenantId: tenant.id, message: `user "${name}" deleted`, details: { user: name } });
      this.after(tx, tenant.id, now, principal);
    });
    this.ctx.hub.touchTenant(tenantId);
  }

  /** Creates a database owned by an existing user (the tenant's owner when none is named). */
  createDatabase(input: { tenantId: string; name: string; owner: string; description: string; idempotencyKey: string }, principal: string): DatabaseRecord {
    const name = validateDatabaseName(input.name, 'name');
    if (input.description.length > 1024) throw new ValidationError('description', input.description, 'at most 1024 characters');
    const now = this.ctx.clock();
    const { result } = this.ctx.store.write((tx) =>
      idempotent(tx, `CreateDatabase:${input.tenantId}`, input.idempotencyKey, { ...input }, now, () => {
        const tenant = this.liveTenant(tx, input.tenantId);
        const owner = input.owner || tenant.id;
        const ownerUser = tx.getUser(tenant.id, owner);
        if (!ownerUser || ownerUser.status === 'DELETING') throw new ValidationError('owner', owner, `an existing user of tenant "${tenant.id}"`, { code: 'UNKNOWN_OWNER' });
        if (tx.getDatabase(tenant.id, name)) throw new AlreadyExistsError('DATABASE_EXISTS', `database "${name}" already exists in tenant "${tenant.id}"`);
        const revision = this.bump(tx, tenant, now);
        const db: DatabaseRecord = { tenantId: tenant.id, name, owner, description: input.description, status: 'NEW', statusReason: '', revision, createdAt: now };
        tx.insertDatabase(db);
        tx.appendEvent({ time: now, principal, action: 'database.create', tenantId: tenant.id, message: `database "${name}" created, owned by "${owner}"`, details: { database: name } });
        this.after(tx, tenant.id, now, principal);
        return db;
      }),
    );
    this.ctx.hub.touchTenant(input.tenantId);
    return result;
  }

  /** One database. */
  getDatabase(tenantId: string, name: string): DatabaseRecord {
    const tenant = this.ctx.store.getTenant(validateTenantId(tenantId, 'tenant_id'));
    if (!tenant) throw notFound.tenant(tenantId);
    const db = this.ctx.store.getDatabase(tenant.id, name);
    if (!db) throw notFound.database(tenantId, name);
    return db;
  }

  /** The databases of a tenant. */
  listDatabases(tenantId: string): DatabaseRecord[] {
    const tenant = this.ctx.store.getTenant(validateTenantId(tenantId, 'tenant_id'));
    if (!tenant) throw notFound.tenant(tenantId);
    return this.ctx.store.listDatabases(tenant.id);
  }

  /** Drops a database (not the tenant's default one). */
  deleteDatabase(tenantId: string, name: string, principal: string): void {
    const now = this.ctx.clock();
    this.ctx.store.write((tx) => {
      const tenant = this.liveTenant(tx, tenantId);
      const db = tx.getDatabase(tenant.id, name);
      if (!db) throw notFound.database(tenantId, name);
      if (name === tenant.id) throw new PreconditionError('DEFAULT_DATABASE', `database "${name}" is the tenant's default database (seed 000: psql -U ${tenant.id} -d ${tenant.id}) and cannot be deleted`);
      if (db.status === 'DELETING') return;
      if (!this.placed(tx, tenant.id)) tx.deleteDatabase(tenant.id, name);
      else tx.updateDatabase({ ...db, status: 'DELETING', revision: this.bump(tx, tenant, now) });
      tx.appendEvent({ time: now, principal, action: 'database.delete', tenantId: tenant.id, message: `database "${name}" deleted`, details: { database: name } });
      this.after(tx, tenant.id, now, principal);
    });
    this.ctx.hub.touchTenant(tenantId);
  }
}
