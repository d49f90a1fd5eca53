/**
 * Users and databases inside a tenant. Each change bumps the tenant's instance revision and is
 * carried to the primary in its desired instance (declaratively); the object turns ACTIVE (or
 * disappears, for a deletion) when the primary reports that revision realized.
 */
import { validateDatabaseName, validatePassword, validateTenantId, validateUserName, ValidationError } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { AlreadyExistsError, notFound, PreconditionError } from '../domain/errors.js';
import { idempotent } from './idempotency.js';
import type { DatabaseRecord, TenantRecord, UserRecord } from '../domain/model.js';
import { scramVerifierAsync } from '@pgs/security';
import type { StoreReads, StoreTx } from '../store/contract.js';
import { syncTenant } from './tenant-sync.js';

/** User and database operations. */
export class ObjectService {
  constructor(private readonly ctx: CoordinatorContext) {}

  private async liveTenant(tx: StoreReads, tenantId: string): Promise<TenantRecord> {
    const tenant = await tx.tenants.get(validateTenantId(tenantId, 'tenant_id'));
    if (!tenant) throw notFound.tenant(tenantId);
    if (tenant.deleting) throw new PreconditionError('TENANT_DELETING', `tenant "${tenantId}" is being deleted`);
    return tenant;
  }

  /** Bumps the instance revision for an object change; returns it. */
  private async bump(tx: StoreTx, tenant: TenantRecord, now: number): Promise<number> {
    const instanceRevision = tenant.instanceRevision + 1;
    await tx.tenants.update({ ...tenant, instanceRevision, updatedAt: now });
    return instanceRevision;
  }

  /** Whether the tenant has an instance that must apply the change (else rows change at once). */
  private async placed(tx: StoreReads, tenantId: string): Promise<boolean> {
    return (await tx.placements.list({ tenantId })).length > 0;
  }

  /** After an object change: the tenant's status and route follow, and its hosts get the new spec. */
  private async after(tx: StoreTx, tenantId: string, now: number, principal: string): Promise<void> {
    await syncTenant(tx, tenantId, { now, health: this.ctx.health, principal });
    tx.record({ kind: 'desired', tenantId });
  }

  /** Creates a login role; the password becomes a SCRAM verifier at once. */
  async createUser(
    input: { tenantId: string; name: string; password: string; description: string; idempotencyKey: string },
    principal: string,
  ): Promise<UserRecord> {
    const name = validateUserName(input.name, 'name');
    const password = validatePassword(input.password, 'password');
    if (input.description.length > 1024) throw new ValidationError('description', input.description, 'at most 1024 characters');
    const verifier = await scramVerifierAsync(password);
    const now = this.ctx.clock();
    const { result } = await this.ctx.store.transaction(
      async (tx) =>
        idempotent(
          tx,
          `CreateUser:${input.tenantId}`,
          input.idempotencyKey,
          { tenantId: input.tenantId, name, description: input.description },
          now,
          async () => {
            const tenant = await this.liveTenant(tx, input.tenantId);
            if (await tx.users.get(tenant.id, name)) throw new AlreadyExistsError('USER_EXISTS', `user "${name}" already exists in tenant "${tenant.id}"`);
            const revision = await this.bump(tx, tenant, now);
            const user: UserRecord = {
              tenantId: tenant.id,
              name,
              description: input.description,
              scramVerifier: verifier,
              owner: false,
              status: 'NEW',
              statusReason: '',
              revision,
              createdAt: now,
            };
            await tx.users.insert(user);
            await tx.events.append({
              time: now,
              principal,
              action: 'user.create',
              tenantId: tenant.id,
              message: `user "${name}" created`,
              details: { user: name },
            });
            await this.after(tx, tenant.id, now, principal);
            return user;
          },
        ),
      { grouped: true },
    );
    return result;
  }

  /** One user. */
  async getUser(tenantId: string, name: string): Promise<UserRecord> {
    const tenant = await this.ctx.store.read.tenants.get(validateTenantId(tenantId, 'tenant_id'));
    if (!tenant) throw notFound.tenant(tenantId);
    const user = await this.ctx.store.read.users.get(tenant.id, name);
    if (!user) throw notFound.user(tenantId, name);
    return user;
  }

  /** The users of a tenant, owner first. */
  async listUsers(tenantId: string): Promise<UserRecord[]> {
    const tenant = await this.ctx.store.read.tenants.get(validateTenantId(tenantId, 'tenant_id'));
    if (!tenant) throw notFound.tenant(tenantId);
    return await this.ctx.store.read.users.list(tenant.id);
  }

  /** Sets a new password (as a new verifier). */
  async updatePassword(tenantId: string, name: string, password: string, principal: string): Promise<UserRecord> {
    const verifier = await scramVerifierAsync(validatePassword(password, 'password'));
    const now = this.ctx.clock();
    const user = await this.ctx.store.transaction(
      async (tx) => {
        const tenant = await this.liveTenant(tx, tenantId);
        const user = await tx.users.get(tenant.id, name);
        if (!user || user.status === 'DELETING') throw notFound.user(tenantId, name);
        const revision = await this.bump(tx, tenant, now);
        const updated: UserRecord = { ...user, scramVerifier: verifier, revision };
        await tx.users.update(updated);
        await tx.events.append({
          time: now,
          principal,
          action: 'user.password',
          tenantId: tenant.id,
          message: `password of "${name}" changed`,
          details: { user: name },
        });
        await this.after(tx, tenant.id, now, principal);
        return updated;
      },
      { grouped: true },
    );
    return user;
  }

  /** Drops a user (not the owner, not one that owns databases). */
  async deleteUser(tenantId: string, name: string, principal: string): Promise<void> {
    const now = this.ctx.clock();
    await this.ctx.store.transaction(async (tx) => {
      const tenant = await this.liveTenant(tx, tenantId);
      const user = await tx.users.get(tenant.id, name);
      if (!user) throw notFound.user(tenantId, name);
      if (user.owner) throw new PreconditionError('OWNER_USER', `user "${name}" owns tenant "${tenant.id}" and cannot be deleted`);
      const owned = (await tx.databases.list(tenant.id)).filter((d) => d.owner === name && d.status !== 'DELETING');
      if (owned.length > 0)
        throw new PreconditionError('USER_OWNS_DATABASES', `user "${name}" owns ${owned.map((d) => `"${d.name}"`).join(', ')}; delete or re-own them first`);
      if (user.status === 'DELETING') return;
      if (!(await this.placed(tx, tenant.id))) await tx.users.delete(tenant.id, name);
      else await tx.users.update({ ...user, status: 'DELETING', revision: await this.bump(tx, tenant, now) });
      await tx.events.append({ time: now, principal, action: 'user.delete', tenantId: tenant.id, message: `user "${name}" deleted`, details: { user: name } });
      await this.after(tx, tenant.id, now, principal);
    });
  }

  /** Creates a database owned by an existing user (the tenant's owner when none is named). */
  async createDatabase(
    input: { tenantId: string; name: string; owner: string; description: string; idempotencyKey: string },
    principal: string,
  ): Promise<DatabaseRecord> {
    const name = validateDatabaseName(input.name, 'name');
    if (input.description.length > 1024) throw new ValidationError('description', input.description, 'at most 1024 characters');
    const now = this.ctx.clock();
    const { result } = await this.ctx.store.transaction(async (tx) =>
      idempotent(tx, `CreateDatabase:${input.tenantId}`, input.idempotencyKey, { ...input }, now, async () => {
        const tenant = await this.liveTenant(tx, input.tenantId);
        const owner = input.owner || tenant.id;
        const ownerUser = await tx.users.get(tenant.id, owner);
        if (!ownerUser || ownerUser.status === 'DELETING')
          throw new ValidationError('owner', owner, `an existing user of tenant "${tenant.id}"`, { code: 'UNKNOWN_OWNER' });
        if (await tx.databases.get(tenant.id, name))
          throw new AlreadyExistsError('DATABASE_EXISTS', `database "${name}" already exists in tenant "${tenant.id}"`);
        const revision = await this.bump(tx, tenant, now);
        const db: DatabaseRecord = {
          tenantId: tenant.id,
          name,
          owner,
          description: input.description,
          status: 'NEW',
          statusReason: '',
          revision,
          createdAt: now,
        };
        await tx.databases.insert(db);
        await tx.events.append({
          time: now,
          principal,
          action: 'database.create',
          tenantId: tenant.id,
          message: `database "${name}" created, owned by "${owner}"`,
          details: { database: name },
        });
        await this.after(tx, tenant.id, now, principal);
        return db;
      }),
    );
    return result;
  }

  /** One database. */
  async getDatabase(tenantId: string, name: string): Promise<DatabaseRecord> {
    const tenant = await this.ctx.store.read.tenants.get(validateTenantId(tenantId, 'tenant_id'));
    if (!tenant) throw notFound.tenant(tenantId);
    const db = await this.ctx.store.read.databases.get(tenant.id, name);
    if (!db) throw notFound.database(tenantId, name);
    return db;
  }

  /** The databases of a tenant. */
  async listDatabases(tenantId: string): Promise<DatabaseRecord[]> {
    const tenant = await this.ctx.store.read.tenants.get(validateTenantId(tenantId, 'tenant_id'));
    if (!tenant) throw notFound.tenant(tenantId);
    return await this.ctx.store.read.databases.list(tenant.id);
  }

  /** Drops a database (not the tenant's default one). */
  async deleteDatabase(tenantId: string, name: string, principal: string): Promise<void> {
    const now = this.ctx.clock();
    await this.ctx.store.transaction(async (tx) => {
      const tenant = await this.liveTenant(tx, tenantId);
      const db = await tx.databases.get(tenant.id, name);
      if (!db) throw notFound.database(tenantId, name);
      if (name === tenant.id)
        throw new PreconditionError(
          'DEFAULT_DATABASE',
          `database "${name}" is the tenant's default database (psql -U ${tenant.id} -d ${tenant.id} connects to it) and cannot be deleted`,
        );
      if (db.status === 'DELETING') return;
      if (!(await this.placed(tx, tenant.id))) await tx.databases.delete(tenant.id, name);
      else await tx.databases.update({ ...db, status: 'DELETING', revision: await this.bump(tx, tenant, now) });
      await tx.events.append({
        time: now,
        principal,
        action: 'database.delete',
        tenantId: tenant.id,
        message: `database "${name}" deleted`,
        details: { database: name },
      });
      await this.after(tx, tenant.id, now, principal);
    });
  }
}
