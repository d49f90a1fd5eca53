/**
 * Inside an instance: roles and databases as the spec (or a one-off command) asks. The agent is
 * the superuser `postgres` over the instance's unix socket; tenants' roles get their passwords
 * only as SCRAM-SHA-256 verifiers (PostgreSQL stores a verifier given to CREATE/ALTER ROLE ...
 * PASSWORD as is), so no plain password reaches the agent or its disk. Every identifier is quoted.
 * Each step checks the catalog first, so applying the same spec twice changes nothing.
 */
import pg from 'pg';
import type { Logger } from '@pgs/service-kit';
import { AgentError, messageOf } from './errors.js';
import type { DatabaseSpec, RoleSpec } from './model.js';
import { SPARE_DATABASE } from './spare-database.js';
import { quoteIdent, verifierLiteral } from './sql-quote.js';

/** How to reach an instance as the superuser. */
export type AdminConnect = (tenantId: string, database?: string) => pg.ClientConfig;

/** The role and database part of an instance spec. */
export interface ObjectsSpec {
  roles: readonly RoleSpec[];
  databases: readonly DatabaseSpec[];
  dropRoles: readonly string[];
  dropDatabases: readonly string[];
}

// Tenant roles never get more than login: users and databases are managed through the API.
const ROLE_ATTRIBUTES = 'NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS';

/** Runs role and database changes inside instances. */
export class InstanceAdmin {
  constructor(
    private readonly connect: AdminConnect,
    private readonly log: Logger,
    private readonly connectTimeoutMs = 5000,
  ) {}

  /** Runs `fn` with a superuser connection to `database` of the tenant's instance. */
  async withClient<T>(tenantId: string, database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await this.open(tenantId, database);
    try {
      return await fn(client);
    } finally {
      await client.end().catch((err: unknown) => this.log.debug({ tenantId, err }, 'closing the admin connection failed'));
    }
  }

  /** A connected superuser client of the tenant's instance; the caller ends it. */
  async open(tenantId: string, database = 'postgres'): Promise<pg.Client> {
    // synchronous_commit=local: the agent's own changes (roles, databases, the replication role a new
    // replica needs to clone) must not wait for synchronous standbys that may not exist yet; they are
    // declarative and re-applied on whichever node is primary. A statement timeout keeps a stuck
    // statement from holding the tenant's queue (and a Fence behind it) forever.
    const client = new pg.Client({
      ...this.connect(tenantId, database),
      connectionTimeoutMillis: this.connectTimeoutMs,
      application_name: 'pgs-host-agent',
      options: '-c synchronous_commit=local -c statement_timeout=120000',
    });
    // An error event on an idle client (server shut down under us) must not crash the agent.
    client.on('error', (err) => this.log.debug({ tenantId, err }, 'admin connection error'));
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch((e: unknown) => this.log.debug({ tenantId, err: e }, 'closing a failed admin connection'));
      throw new AgentError('INSTANCE_NOT_RUNNING', `cannot reach the instance of ${tenantId} over its unix socket: ${messageOf(err)}`, { cause: err });
    }
    return client;
  }

  /** Makes the instance hold the spec's roles and databases: creates, alters, drops as needed. */
  async apply(tenantId: string, spec: ObjectsSpec): Promise<void> {
    if (spec.roles.length + spec.databases.length + spec.dropRoles.length + spec.dropDatabases.length === 0) return;
    await this.withClient(tenantId, 'postgres', async (client) => {
      // Owners first, then their databases; drop databases before the roles that may own them.
      for (const role of spec.roles) await this.ensureRole(client, tenantId, role);
      for (const db of spec.databases) await this.ensureDatabase(client, tenantId, db);
      for (const name of spec.dropDatabases) await this.dropDatabase(client, tenantId, name);
    });
    for (const name of spec.dropRoles) await this.dropRole(tenantId, name);
  }

  /** Creates the role, or aligns its password and login with the spec. */
  async ensureRole(client: pg.Client, tenantId: string, role: RoleSpec): Promise<'created' | 'altered' | 'unchanged'> {
    const password = verifierLiteral(role.scramVerifier);
    const login = role.login ? 'LOGIN' : 'NOLOGIN';
    const found = await client.query<{ rolpassword: string | null; rolcanlogin: boolean }>(
      'select rolpassword, rolcanlogin from pg_authid where rolname = $1',
      [role.name],
    );
    const row = found.rows[0];
    if (!row) {
      await client.query(`CREATE ROLE ${quoteIdent(role.name)} ${login} ${ROLE_ATTRIBUTES} PASSWORD ${password}`);
      this.log.info({ tenantId, role: role.name }, 'role created');
      return 'created';
    }
    if (row.rolpassword === role.scramVerifier && row.rolcanlogin === role.login) return 'unchanged';
    await client.query(`ALTER ROLE ${quoteIdent(role.name)} ${login} PASSWORD ${password}`);
    this.log.info({ tenantId, role: role.name }, 'role altered');
    return 'altered';
  }

  /** Sets a role's password (as a verifier); the role must exist. */
  async setPassword(tenantId: string, name: string, scramVerifier: string): Promise<void> {
    const password = verifierLiteral(scramVerifier);
    await this.withClient(tenantId, 'postgres', async (client) => {
      const found = await client.query('select 1 from pg_roles where rolname = $1', [name]);
      if (found.rowCount === 0) throw new AgentError('ADMIN_FAILED', `role ${JSON.stringify(name)} does not exist in ${tenantId}`, { kind: 'user' });
      await client.query(`ALTER ROLE ${quoteIdent(name)} PASSWORD ${password}`);
    });
    this.log.info({ tenantId, role: name }, 'role password set');
  }

  /** Creates the database owned by `owner`, or gives an existing one that owner. */
  async ensureDatabase(client: pg.Client, tenantId: string, db: DatabaseSpec): Promise<'created' | 'altered' | 'unchanged'> {
    const found = await client.query<{ owner: string }>('select pg_get_userbyid(datdba) as owner from pg_database where datname = $1', [db.name]);
    const row = found.rows[0];
    if (!row) {
      const how = (await this.adoptSpareDatabase(client, db)) ? 'spare' : 'template1';
      if (how === 'template1') await client.query(`CREATE DATABASE ${quoteIdent(db.name)} OWNER ${quoteIdent(db.owner)}`);
      this.log.info({ tenantId, database: db.name, owner: db.owner, from: how }, 'database created');
      return 'created';
    }
    if (row.owner === db.owner) return 'unchanged';
    await client.query(`ALTER DATABASE ${quoteIdent(db.name)} OWNER TO ${quoteIdent(db.owner)}`);
    this.log.info({ tenantId, database: db.name, owner: db.owner }, 'database owner changed');
    return 'altered';
  }

  /**
   * Turns the instance's spare database (template.ts), when it still has one, into `db`: renamed,
   * given to its owner and opened for connections, in one transaction. Nobody can be connected to
   * the spare (it allows no connections), which RENAME requires. False when there is no spare (a
   * docker instance, an older template, or it was used already): the caller creates the database.
   */
  private async adoptSpareDatabase(client: pg.Client, db: DatabaseSpec): Promise<boolean> {
    if (db.name === SPARE_DATABASE) return false;
    const spare = await client.query('select 1 from pg_database where datname = $1 and not datallowconn', [SPARE_DATABASE]);
    if (spare.rowCount === 0) return false;
    await client.query('BEGIN');
    try {
      await client.query(`ALTER DATABASE ${quoteIdent(SPARE_DATABASE)} RENAME TO ${quoteIdent(db.name)}`);
      await client.query(`ALTER DATABASE ${quoteIdent(db.name)} OWNER TO ${quoteIdent(db.owner)}`);
      await client.query(`ALTER DATABASE ${quoteIdent(db.name)} ALLOW_CONNECTIONS true`);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => this.log.debug({ err: e }, 'rollback after a failed spare database rename failed'));
      throw err;
    }
    return true;
  }

  /** Drops a database (disconnecting its sessions); absent is fine. */
  async dropDatabase(client: pg.Client, tenantId: string, name: string): Promise<void> {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) return;
    await client.query(`DROP DATABASE ${quoteIdent(name)} WITH (FORCE)`);
    this.log.info({ tenantId, database: name }, 'database dropped');
  }

  /**
   * Drops a role. What it owns goes to the tenant's owner role (named like the tenant) rather than
   * being dropped, so deleting a user never deletes tenant data; its grants are revoked.
   */
  async dropRole(tenantId: string, name: string): Promise<void> {
    const databases = await this.withClient(tenantId, 'postgres', async (client) => {
      const found = await client.query('select 1 from pg_roles where rolname = $1', [name]);
      if (found.rowCount === 0) return undefined;
      const r = await client.query<{ datname: string }>('select datname from pg_database where datallowconn order by datname');
      return r.rows.map((row) => row.datname);
    });
    if (!databases) return;
    const heir = name === tenantId ? 'postgres' : tenantId;
    for (const database of databases) {
      await this.withClient(tenantId, database, async (client) => {
        const heirExists = await client.query('select 1 from pg_roles where rolname = $1', [heir]);
        const to = heirExists.rowCount === 0 ? 'postgres' : heir;
        await client.query(`REASSIGN OWNED BY ${quoteIdent(name)} TO ${quoteIdent(to)}`);
        await client.query(`DROP OWNED BY ${quoteIdent(name)}`);
      });
    }
    await this.withClient(tenantId, 'postgres', (client) => client.query(`DROP ROLE IF EXISTS ${quoteIdent(name)}`));
    this.log.info({ tenantId, role: name }, 'role dropped');
  }
}
