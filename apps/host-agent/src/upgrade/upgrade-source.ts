/**
 * The source side of a major upgrade by logical replication, run by the agent of the old instance
 * as its superuser: what the instance holds that logical replication cannot carry, the role and
 * publications the new instance subscribes through, and, for the switch, stopping the tenant's
 * writers so the new instance can catch up with a source that no longer changes.
 * Docs: https://www.postgresql.org/docs/current/logical-replication.html (Restrictions, Security).
 */
import type pg from 'pg';
import type { UpgradeSourceFacts } from '@pgs/tenancy';
import { SPARE_DATABASE } from '../spare-database.js';
import { quoteIdent, verifierLiteral } from '../sql-quote.js';

/** The publication (one per database, same name) the new instance subscribes to. */
export const UPGRADE_PUBLICATION = 'pgs_upgrade';

/** Runs `fn` as the superuser connected to `database` of the source instance. */
export type WithDatabase = <T>(database: string, fn: (client: pg.Client) => Promise<T>) => Promise<T>;

/** The databases that hold the tenant's data (not templates, not the agent's spare). */
export async function tenantDatabases(withDb: WithDatabase): Promise<string[]> {
  return withDb('postgres', async (c) => {
    const r = await c.query<{ datname: string }>(
      'select datname from pg_database where datallowconn and not datistemplate and datname <> $1 order by datname',
      [SPARE_DATABASE],
    );
    return r.rows.map((row) => row.datname);
  });
}

// User tables: not the catalogs, not the information schema, not a temporary schema.
const USER_TABLES = `
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'`;

/** Tables that would lose UPDATE and DELETE: identity NOTHING, or DEFAULT without a primary key. */
const NO_IDENTITY = `select format('%I.%I', n.nspname, c.relname) as name ${USER_TABLES}
  and c.relkind = 'r' and c.relpersistence = 'p'
  and (c.relreplident = 'n' or (c.relreplident = 'd' and not exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary)))
  order by 1`;

/** Reads what checkUpgrade needs from every database of the instance. */
export async function inspectSource(withDb: WithDatabase, databases: readonly string[]): Promise<UpgradeSourceFacts> {
  const { major, walLevel } = await withDb('postgres', async (c) => {
    const r = await c.query<{ num: string; wal_level: string }>(
      "select current_setting('server_version_num') as num, current_setting('wal_level') as wal_level",
    );
    return { major: Math.floor(Number(r.rows[0]?.num ?? 0) / 10000), walLevel: r.rows[0]?.wal_level ?? '' };
  });
  const largeObjects: { database: string; count: number }[] = [];
  const unloggedTables: string[] = [];
  const tablesWithoutIdentity: string[] = [];
  for (const database of databases) {
    await withDb(database, async (c) => {
      const lo = await c.query<{ n: string }>('select count(*) as n from pg_largeobject_metadata');
      const count = Number(lo.rows[0]?.n ?? 0);
      if (count > 0) largeObjects.push({ database, count });
      const unlogged = await c.query<{ name: string }>(
        `select format('%I.%I', n.nspname, c.relname) as name ${USER_TABLES} and c.relpersistence = 'u' order by 1`,
      );
      for (const row of unlogged.rows) unloggedTables.push(`${database}: ${row.name}`);
      const noIdentity = await c.query<{ name: string }>(NO_IDENTITY);
      for (const row of noIdentity.rows) tablesWithoutIdentity.push(`${database}: ${row.name}`);
    });
  }
  return { major, walLevel, largeObjects, unloggedTables, tablesWithoutIdentity };
}

/** What the source needs before the new instance subscribes. */
export interface SourcePreparation {
  databases: readonly string[];
  /** The role the new instance connects as (LOGIN REPLICATION, reads every table). */
  user: string;
  /** Its password as a SCRAM-SHA-256 verifier (the new instance's agent gets the password). */
  verifier: string;
  /** Set REPLICA IDENTITY FULL on the tables that have no replica identity (the operator asked). */
  identityFull: boolean;
}

/**
 * Creates the subscription role and one publication FOR ALL TABLES per database (idempotent: a
 * second call changes nothing). The role reads every table through pg_read_all_data (the initial
 * copy runs COPY as it) and may start logical walsenders (REPLICATION); it gets nothing else.
 */
export async function prepareSource(withDb: WithDatabase, p: SourcePreparation): Promise<{ identityFullSet: string[] }> {
  await withDb('postgres', async (c) => {
    const exists = (await c.query('select 1 from pg_roles where rolname = $1', [p.user])).rowCount ?? 0;
    const verb = exists > 0 ? 'ALTER' : 'CREATE';
    await c.query(`${verb} ROLE ${quoteIdent(p.user)} LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${verifierLiteral(p.verifier)}`);
    await c.query(`GRANT pg_read_all_data TO ${quoteIdent(p.user)}`);
  });
  const identityFullSet: string[] = [];
  for (const database of p.databases) {
    await withDb(database, async (c) => {
      if (p.identityFull) {
        for (const row of (await c.query<{ name: string }>(NO_IDENTITY)).rows) {
          // The name comes quoted from format('%I.%I').
          await c.query(`ALTER TABLE ${row.name} REPLICA IDENTITY FULL`);
          identityFullSet.push(`${database}: ${row.name}`);
        }
      }
      const has = (await c.query('select 1 from pg_publication where pubname = $1', [UPGRADE_PUBLICATION])).rowCount ?? 0;
      if (has === 0) await c.query(`CREATE PUBLICATION ${quoteIdent(UPGRADE_PUBLICATION)} FOR ALL TABLES`);
    });
  }
  return { identityFullSet };
}

/**
 * Stops the tenant's writers for the switch: its roles may no longer log in, and their sessions
 * end (the routers hold the clients meanwhile). The subscription's walsenders run as another role
 * and go on, so the new instance still receives everything committed before. Returns the number
 * of sessions ended.
 */
export async function blockWriters(withDb: WithDatabase, roles: readonly string[]): Promise<number> {
  return withDb('postgres', async (c) => {
    for (const role of roles) await c.query(`ALTER ROLE ${quoteIdent(role)} NOLOGIN`);
    const ended = await c.query('select pg_terminate_backend(pid) from pg_stat_activity where usename = any($1::text[]) and pid <> pg_backend_pid()', [
      [...roles],
    ]);
    return ended.rowCount ?? 0;
  });
}

/** Lets the tenant's roles log in again (a switch abandoned, or a rollback to this instance). */
export async function unblockWriters(withDb: WithDatabase, roles: readonly string[]): Promise<void> {
  await withDb('postgres', async (c) => {
    for (const role of roles) await c.query(`ALTER ROLE ${quoteIdent(role)} LOGIN`);
  });
}

/** Removes the publications and the subscription role (after the subscriptions dropped their slots). */
export async function cleanSource(withDb: WithDatabase, databases: readonly string[], user: string): Promise<void> {
  for (const database of databases) {
    await withDb(database, (c) => c.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(UPGRADE_PUBLICATION)}`));
  }
  await withDb('postgres', async (c) => {
    // A slot left by a subscription that could not reach us would keep WAL forever.
    await c.query("select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name like 'pgs\\_upgrade\\_%' and not active");
    await c.query(`DROP ROLE IF EXISTS ${quoteIdent(user)}`);
  });
}
