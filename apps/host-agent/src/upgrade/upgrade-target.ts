/**
 * The target side of a major upgrade by logical replication, run by the agent of the new instance
 * (it pulls, as a replica's agent pulls a base backup): the schema copied with pg_dump of a major
 * that can read the source piped into psql against the new instance, one subscription per
 * database, the state of the initial copy, the catch-up check of the switch, and sequence values
 * (logical replication does not carry them).
 * Docs: https://www.postgresql.org/docs/current/logical-replication.html,
 * app-pgdump.html ("pg_dump can dump from servers running older versions ... but not newer").
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { compareLsn } from '@pgs/tenancy';
import { AgentError, messageOf } from '../errors.js';
import type { OsUser } from '../runtime/os-user.js';
import { quoteIdent, quoteLiteral } from '../sql-quote.js';
import { UPGRADE_PUBLICATION } from './upgrade-source.js';

/** How the new instance reaches the old one over the network, as the upgrade role. */
export interface SourceLink {
  host: string;
  port: number;
  user: string;
  password: string;
  /** 'verify-full' with `sslRootCert` in a fleet with inner TLS; 'prefer' where instances run without TLS. */
  sslMode: 'verify-full' | 'require' | 'prefer';
  sslRootCert?: string;
}

/** The subscription (and its slot on the source) of one database: a name PostgreSQL accepts for a slot. */
export function upgradeSlotName(database: string): string {
  return `pgs_upgrade_${createHash('sha256').update(database).digest('hex').slice(0, 16)}`;
}

function conninfoValue(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/**
 * The libpq connection string to `database` of the source. With the password for the subscription
 * (only a superuser reads pg_subscription.subconninfo); without it for a tool's command line, which
 * gets the password in its environment instead.
 */
export function sourceConninfo(link: SourceLink, database: string, withPassword: boolean): string {
  const parts: [string, string][] = [
    ['host', link.host],
    ['port', String(link.port)],
    ['user', link.user],
    ...(withPassword ? ([['password', link.password]] as [string, string][]) : []),
    ['dbname', database],
    ['sslmode', link.sslMode],
    ['connect_timeout', '5'],
  ];
  if (link.sslRootCert !== undefined) parts.push(['sslrootcert', link.sslRootCert]);
  return parts.map(([k, v]) => `${k}=${conninfoValue(v)}`).join(' ');
}

/** A client of the source over the network, as the upgrade role (catalog reads, the LSN, sequences). */
export async function connectSource(link: SourceLink, database: string): Promise<pg.Client> {
  const ssl =
    link.sslMode === 'prefer'
      ? false
      : { rejectUnauthorized: link.sslMode === 'verify-full', ...(link.sslRootCert ? { ca: fs.readFileSync(link.sslRootCert, 'utf8') } : {}) };
  const client = new pg.Client({
    host: link.host,
    port: link.port,
    user: link.user,
    password: link.password,
    database,
    ssl,
    connectionTimeoutMillis: 5000,
    application_name: 'pgs-upgrade',
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new AgentError('UPGRADE_FAILED', `cannot reach the source instance at ${link.host}:${link.port}: ${messageOf(err)}`, { cause: err });
  }
  return client;
}

/** Where the schema copy runs: the client tools and how to reach the new instance. */
export interface SchemaCopy {
  /** bin dir of a pg_dump whose major is the source's or newer (it refuses newer servers). */
  dumpBinDir: string;
  /** bin dir of a psql (any recent one talks to newer servers). */
  psqlBinDir: string;
  source: SourceLink;
  /** The new instance over its unix socket, as the superuser. */
  target: { socketDir: string; port: number; user: string };
  database: string;
  runAs: Pick<OsUser, 'uid' | 'gid'> | undefined;
  timeoutMs?: number;
}

/**
 * Copies one database's schema: pg_dump --schema-only of the source (roles and databases exist on
 * the new instance already, made from the spec) piped into psql on the new instance, stopping at
 * the first error. Publications and subscriptions are left out: the upgrade makes its own.
 */
export async function copySchema(o: SchemaCopy): Promise<void> {
  const env = { PATH: '/usr/bin:/bin', LANG: 'C', PGCONNECT_TIMEOUT: '5' };
  const dumpArgs = ['--schema-only', '--no-publications', '--no-subscriptions', '-d', sourceConninfo(o.source, o.database, false)];
  const psqlArgs = [
    '-X',
    '-q',
    '-v',
    'ON_ERROR_STOP=1',
    '--single-transaction',
    '-h',
    o.target.socketDir,
    '-p',
    String(o.target.port),
    '-U',
    o.target.user,
    '-d',
    o.database,
  ];
  const ids = o.runAs ? { uid: o.runAs.uid, gid: o.runAs.gid } : {};
  // The password in pg_dump's environment, never on its command line (which `ps` shows).
  const dump = spawn(path.join(o.dumpBinDir, 'pg_dump'), dumpArgs, {
    ...ids,
    env: { ...env, PGPASSWORD: o.source.password },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const psql = spawn(path.join(o.psqlBinDir, 'psql'), psqlArgs, { ...ids, env, stdio: ['pipe', 'ignore', 'pipe'] });
  dump.stdout.pipe(psql.stdin);
  // psql ending first (an error) closes its stdin under pg_dump: that is reported through psql's exit.
  psql.stdin.on('error', () => undefined);
  const errors = { dump: '', psql: '' };
  dump.stderr.on('data', (d: Buffer) => void (errors.dump = (errors.dump + d.toString()).slice(-2000)));
  psql.stderr.on('data', (d: Buffer) => void (errors.psql = (errors.psql + d.toString()).slice(-2000)));
  const exited = (child: ReturnType<typeof spawn>): Promise<number | null> =>
    new Promise((resolve) => {
      child.once('error', (err) => {
        errors.dump ||= messageOf(err);
        resolve(-1);
      });
      child.once('close', (code) => resolve(code));
    });
  const timer = setTimeout(
    () => {
      dump.kill('SIGKILL');
      psql.kill('SIGKILL');
    },
    o.timeoutMs ?? 30 * 60_000,
  );
  try {
    const [dumpCode, psqlCode] = await Promise.all([exited(dump), exited(psql)]);
    if (dumpCode !== 0) throw new AgentError('UPGRADE_FAILED', `pg_dump of ${o.database} failed: ${errors.dump.trim() || `exit ${dumpCode}`}`);
    if (psqlCode !== 0) throw new AgentError('UPGRADE_FAILED', `restoring the schema of ${o.database} failed: ${errors.psql.trim() || `exit ${psqlCode}`}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the database holds anything beyond what initdb makes (tables, views, sequences, functions, types). */
export async function hasUserObjects(target: pg.Client): Promise<boolean> {
  const r = await target.query(`
    select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
    union all
    select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname not in ('pg_catalog', 'information_schema')
    limit 1`);
  return (r.rowCount ?? 0) > 0;
}

/**
 * Subscribes `database` of the new instance to the source's publication (initial copy of every
 * table, then streaming). Idempotent: an existing subscription is left as it is.
 */
export async function subscribe(target: pg.Client, link: SourceLink, database: string): Promise<void> {
  const name = upgradeSlotName(database);
  const has = (await target.query('select 1 from pg_subscription where subname = $1', [name])).rowCount ?? 0;
  if (has > 0) return;
  // Not inside a transaction block: CREATE SUBSCRIPTION creates the slot on the source.
  await target.query(
    `CREATE SUBSCRIPTION ${quoteIdent(name)} CONNECTION ${quoteLiteral(sourceConninfo(link, database, true))} PUBLICATION ${quoteIdent(UPGRADE_PUBLICATION)} WITH (slot_name = ${quoteLiteral(name)}, copy_data = true)`,
  );
}

/** How far the initial copy of one database got. */
export interface SyncState {
  tables: number;
  /** Tables copied and streaming ('r' in pg_subscription_rel). */
  ready: number;
}

export async function syncState(target: pg.Client, database: string): Promise<SyncState> {
  const r = await target.query<{ tables: string; ready: string }>(
    "select count(*) as tables, count(*) filter (where sr.srsubstate = 'r') as ready from pg_subscription_rel sr join pg_subscription s on s.oid = sr.srsubid where s.subname = $1",
    [upgradeSlotName(database)],
  );
  return { tables: Number(r.rows[0]?.tables ?? 0), ready: Number(r.rows[0]?.ready ?? 0) };
}

/** The source's current WAL position (read after its writers stopped: everything to reach). */
export async function sourceWalPosition(source: pg.Client): Promise<string> {
  const r = await source.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
  return r.rows[0]?.lsn ?? '0/0';
}

/**
 * Whether the subscriptions of `databases` confirmed everything up to `lsn`: the slots' confirmed
 * flush position on the source moves when the new instance applied and flushed what it received.
 */
export async function caughtUp(source: pg.Client, databases: readonly string[], lsn: string): Promise<{ done: boolean; behind: string[] }> {
  const names = databases.map(upgradeSlotName);
  const r = await source.query<{ slot_name: string; confirmed: string | null }>(
    'select slot_name, confirmed_flush_lsn::text as confirmed from pg_replication_slots where slot_name = any($1::text[])',
    [names],
  );
  const confirmed = new Map(r.rows.map((row) => [row.slot_name, row.confirmed]));
  const behind: string[] = [];
  for (const d of databases) {
    const c = confirmed.get(upgradeSlotName(d));
    if (c === undefined || c === null || compareLsn(c, lsn) < 0) behind.push(`${d} (at ${c ?? 'no slot'})`);
  }
  return { done: behind.length === 0, behind };
}

/** A sequence's state on the source. */
export interface SequenceValue {
  /** Quoted, schema-qualified. */
  name: string;
  lastValue: string;
}

/** The source's sequences that were ever used (never-called ones keep their start on the new instance). */
export async function readSequences(source: pg.Client): Promise<SequenceValue[]> {
  const r = await source.query<{ name: string; last_value: string }>(
    "select format('%I.%I', schemaname, sequencename) as name, last_value::text from pg_sequences where last_value is not null and schemaname not in ('pg_catalog', 'information_schema')",
  );
  return r.rows.map((row) => ({ name: row.name, lastValue: row.last_value }));
}

/** Sets the new instance's sequences to the source's values, so the next nextval() continues after them. */
export async function writeSequences(target: pg.Client, values: readonly SequenceValue[]): Promise<void> {
  for (const v of values) await target.query('select pg_catalog.setval($1::regclass, $2::bigint, true)', [v.name, v.lastValue]);
}

/**
 * Ends the subscription (its slot on the source goes with it): the new instance stands alone.
 * When the source cannot be reached (stopped, its host down), the subscription first lets go of
 * the slot, which stays on the source until its CLEAN step drops it; `detached` says why.
 */
export async function dropSubscription(target: pg.Client, database: string): Promise<{ dropped: boolean; detached?: string }> {
  const name = upgradeSlotName(database);
  const has = (await target.query('select 1 from pg_subscription where subname = $1', [name])).rowCount ?? 0;
  if (has === 0) return { dropped: false };
  try {
    await target.query(`DROP SUBSCRIPTION ${quoteIdent(name)}`);
    return { dropped: true };
  } catch (err) {
    await target.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} DISABLE`);
    await target.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} SET (slot_name = NONE)`);
    await target.query(`DROP SUBSCRIPTION ${quoteIdent(name)}`);
    return { dropped: true, detached: messageOf(err) };
  }
}
