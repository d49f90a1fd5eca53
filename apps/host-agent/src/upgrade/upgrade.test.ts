// A major upgrade's data path against real servers: a PostgreSQL 15 source (Debian's) and a
// PostgreSQL 18 target (the versions directory setup-postgres-versions.sh fills), the schema copied
// with pg_dump 15, a subscription per database, a writer running until the switch blocks it, then
// catch-up to the source's last position and sequence values; every acknowledged row must be on
// the target. And what logical replication cannot carry is found up front.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type pg from 'pg';
import pgLib from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkUpgrade } from '@pgs/tenancy';
import { postgresOsUser, startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { scramVerifier } from '../testing/scram-verifier.js';
import { waitFor } from '../testing/test-env.js';
import { InstanceAdmin } from '../instance-admin.js';
import type { UpgradeSourceAction, UpgradeTargetAction } from '../model.js';
import { testLogger } from '../testing/test-env.js';
import { UpgradeRunner } from './upgrade-runner.js';
import { cleanSource, inspectSource, prepareSource, tenantDatabases, type WithDatabase } from './upgrade-source.js';

const BIN_15 = '/usr/lib/postgresql/15/bin';
const BIN_18 = process.env.PGS_PG18_BIN_DIR ?? '/var/lib/pgs/postgres/18/bin';
const haveBoth = fs.existsSync(`${BIN_15}/pg_dump`) && fs.existsSync(`${BIN_18}/postgres`);
const UPGRADE_USER = 'pgs_upgrade';
const UPGRADE_PASSWORD = `up-${crypto.randomBytes(8).toString('hex')}`;
const OWNER = { name: 'alice', password: 'alice-secret', database: 'app' };

function runnerFor(server: TestPostgres): UpgradeRunner {
  const connect = (_tenantId: string, database = 'postgres') => ({ host: server.socketDir, port: server.port, user: 'postgres', database });
  const log = testLogger();
  return new UpgradeRunner({
    admin: new InstanceAdmin(connect, log),
    connect,
    clientBinDir: (major) => (major === '15' ? BIN_15 : undefined),
    tls: () => ({ caFile: undefined }),
    runAs: postgresOsUser(),
    log,
  });
}

function withDatabaseOf(server: TestPostgres): WithDatabase {
  return async (database, fn) => {
    const client = await server.adminClient(database);
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
}

describe.skipIf(!haveBoth)('upgrade by logical replication, PostgreSQL 15 -> 18 (real servers)', () => {
  let source: TestPostgres;
  let target: TestPostgres;

  beforeAll(async () => {
    source = await startTestPostgres({ users: [OWNER], settings: { wal_level: 'logical' } });
    target = await startTestPostgres({ binDir: BIN_18 });
    // The new instance gets the tenant's roles (with their verifiers) and databases from the spec.
    await withDatabaseOf(source)('postgres', async (s) => {
      const verifier = (await s.query<{ v: string }>('select rolpassword as v from pg_authid where rolname = $1', [OWNER.name])).rows[0]?.v ?? '';
      await withDatabaseOf(target)('postgres', async (t) => {
        await t.query(`CREATE ROLE ${OWNER.name} LOGIN PASSWORD '${verifier}'`);
        await t.query(`CREATE DATABASE ${OWNER.database} OWNER ${OWNER.name}`);
      });
    });
  }, 120_000);

  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('copies schema and rows, follows a live writer, and catches up once writers are blocked', async () => {
    const owner = new pgLib.Client({ connectionString: source.url(OWNER.name, OWNER.password, OWNER.database) });
    await owner.connect();
    await owner.query('create table items (id bigserial primary key, note text not null, at timestamptz default now())');
    await owner.query('create index items_note on items (note)');
    await owner.query("create view recent as select * from items where at > now() - interval '1 day'");
    await owner.query("insert into items (note) select 'seed ' || g from generate_series(1, 5000) g");
    await owner.end();

    // The steps as the agents run them (each side through its own runner), in the coordinator's order.
    const onSource = runnerFor(source);
    const onTarget = runnerFor(target);
    const sourceStep = (step: UpgradeSourceAction['step'], extra: Partial<UpgradeSourceAction> = {}) =>
      onSource.source('acme', {
        kind: 'upgradeSource',
        step,
        user: UPGRADE_USER,
        scramVerifier: scramVerifier(UPGRADE_PASSWORD),
        replicaIdentityFull: false,
        roles: [OWNER.name],
        databases: [],
        ...extra,
      });
    const inspected = await sourceStep('inspect');
    const databases = inspected.databases;
    expect(databases).toEqual(['app', 'postgres']);
    const facts = {
      major: inspected.major,
      walLevel: inspected.walLevel,
      largeObjects: [],
      unloggedTables: inspected.unloggedTables,
      tablesWithoutIdentity: inspected.tablesWithoutIdentity,
    };
    expect(inspected.largeObjects).toEqual([]);
    const check = checkUpgrade({
      tenantId: 'acme',
      fromMajor: facts.major,
      toMajor: 18,
      status: 'ACTIVE',
      members: 1,
      targetHosts: ['h2'],
      dumpClientMajors: [15],
      busy: false,
      replicaIdentityFull: false,
      source: facts,
    });
    expect(check).toEqual({ ok: true, dumpClientMajor: 15, setIdentityFull: [] });
    await sourceStep('prepare', { databases });
    const targetStep = (step: UpgradeTargetAction['step']) =>
      onTarget.target('acme', {
        kind: 'upgradeTarget',
        step,
        source: { address: source.host, port: source.port, user: UPGRADE_USER, password: UPGRADE_PASSWORD },
        databases,
        dumpMajor: '15',
        timeoutMs: 60_000,
      });

    // A writer through the whole copy: each acknowledged id is remembered.
    const acknowledged: number[] = [];
    let writerError = '';
    const writer = (async () => {
      const c = new pgLib.Client({ connectionString: source.url(OWNER.name, OWNER.password, OWNER.database) });
      c.on('error', () => undefined);
      await c.connect();
      try {
        for (let i = 0; i < 100_000; i++) {
          const r = await c.query<{ id: string }>("insert into items (note) values ('live') returning id");
          acknowledged.push(Number(r.rows[0]?.id));
        }
      } catch (err) {
        writerError = err instanceof Error ? err.message : String(err);
      } finally {
        await c.end().catch(() => undefined);
      }
    })();

    await targetStep('subscribe');
    // Sent again (a lost answer): nothing is copied twice.
    await targetStep('subscribe');
    await waitFor(
      'the initial copy',
      async () => {
        const s = await targetStep('syncState');
        return s.tables > 0 && s.ready === s.tables;
      },
      120_000,
      200,
    );
    await waitFor('live rows during streaming', () => acknowledged.length > 200, 60_000, 50);

    // The switch: writers blocked, then everything up to the source's last position applied.
    const switchStarted = Date.now();
    const blocked = await sourceStep('blockWriters');
    expect(blocked.sessionsEnded).toBeGreaterThanOrEqual(1);
    await writer;
    // Its session ended (the message depends on whether the query or the connection saw it first).
    expect(writerError).not.toBe('');
    const caught = await targetStep('catchUp');
    expect(caught.sourceLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(caught.sequences).toBe(1);
    const catchUpMs = Date.now() - switchStarted;
    console.log(`upgrade switch: ${acknowledged.length} live writes acknowledged; writers blocked to caught up (sequences copied) in ${catchUpMs} ms`);

    // The subscriptions outlive the catch-up (dropping them is cleanup after the route moved). One
    // of them cannot reach the source any more: it lets go of its slot there and is dropped anyway.
    const subscriptions = async (): Promise<number> =>
      withDatabaseOf(target)('postgres', async (t) => Number((await t.query<{ n: string }>('select count(*) as n from pg_subscription')).rows[0]?.n));
    expect(await subscriptions()).toBe(databases.length);
    await withDatabaseOf(target)('postgres', async (t) => {
      // A subscription is altered from its own database: the one of 'postgres'.
      const name = (
        await t.query<{ subname: string }>(
          'select subname from pg_subscription where subdbid = (select oid from pg_database where datname = current_database())',
        )
      ).rows[0]?.subname;
      expect(name).toBeDefined();
      await t.query(`ALTER SUBSCRIPTION ${name} CONNECTION 'host=${source.host} port=1 dbname=postgres connect_timeout=2'`);
    });
    await targetStep('abandon');
    expect(await subscriptions()).toBe(0);
    // The slot left behind on the source is no longer used; CLEAN drops it with the publications and the role.
    await waitFor(
      'the abandoned slot released',
      () =>
        withDatabaseOf(source)(
          'postgres',
          async (s) => (await s.query("select 1 from pg_replication_slots where slot_name like 'pgs_upgrade%' and active")).rowCount === 0,
        ),
      30_000,
      100,
    );
    await sourceStep('clean', { databases });

    const asOwner = new pgLib.Client({ connectionString: target.url(OWNER.name, OWNER.password, OWNER.database) });
    await asOwner.connect();
    try {
      expect((await asOwner.query<{ v: string }>("select current_setting('server_version_num') as v")).rows[0]?.v).toMatch(/^18/);
      const ids = new Set((await asOwner.query<{ id: string }>('select id from items')).rows.map((r) => Number(r.id)));
      const lost = acknowledged.filter((id) => !ids.has(id));
      expect(lost).toEqual([]);
      expect(ids.size).toBe(5000 + acknowledged.length);
      // The sequence continues after the source's last value; the view and index came with the schema.
      const next = Number((await asOwner.query<{ id: string }>("insert into items (note) values ('after') returning id")).rows[0]?.id);
      expect(next).toBeGreaterThan(Math.max(...acknowledged));
      expect((await asOwner.query<{ n: string }>('select count(*) as n from recent')).rows[0]?.n).toBe(String(5001 + acknowledged.length));
      expect((await asOwner.query("select 1 from pg_indexes where indexname = 'items_note'")).rowCount).toBe(1);
    } finally {
      await asOwner.end();
    }
    // Nothing of the upgrade is left on either side.
    await withDatabaseOf(source)('postgres', async (s: pg.Client) => {
      expect((await s.query("select 1 from pg_replication_slots where slot_name like 'pgs_upgrade%'")).rowCount).toBe(0);
      expect((await s.query('select 1 from pg_roles where rolname = $1', [UPGRADE_USER])).rowCount).toBe(0);
    });
    // The old instance takes its owner back (a rollback).
    await sourceStep('unblockWriters');
    const back = new pgLib.Client({ connectionString: source.url(OWNER.name, OWNER.password, OWNER.database) });
    await back.connect();
    expect((await back.query<{ n: string }>('select count(*) as n from items')).rows[0]?.n).toBe(String(5000 + acknowledged.length));
    await back.end();
  }, 300_000);

  it('finds large objects, unlogged tables and tables without a replica identity before anything starts', async () => {
    const owner = new pgLib.Client({ connectionString: source.url(OWNER.name, OWNER.password, OWNER.database) });
    await owner.connect();
    try {
      await owner.query("select lo_from_bytea(0, 'a large object')");
      await owner.query('create unlogged table scratch (k int primary key)');
      await owner.query('create table journal (line text)');
    } finally {
      await owner.end();
    }
    const databases = await tenantDatabases(withDatabaseOf(source));
    const facts = await inspectSource(withDatabaseOf(source), databases);
    expect(facts).toMatchObject({
      major: 15,
      walLevel: 'logical',
      largeObjects: [{ database: 'app', count: 1 }],
      unloggedTables: ['app: public.scratch'],
      tablesWithoutIdentity: ['app: public.journal'],
    });
    const check = checkUpgrade({
      tenantId: 'acme',
      fromMajor: 15,
      toMajor: 18,
      status: 'ACTIVE',
      members: 1,
      targetHosts: ['h2'],
      dumpClientMajors: [15],
      busy: false,
      replicaIdentityFull: false,
      source: facts,
    });
    expect(check.ok ? [] : check.refusals.map((r) => r.code)).toEqual(['LARGE_OBJECTS', 'UNLOGGED_TABLES', 'NO_REPLICA_IDENTITY']);
    // Asked for, REPLICA IDENTITY FULL is set on exactly those tables.
    const { identityFullSet } = await prepareSource(withDatabaseOf(source), {
      databases,
      user: UPGRADE_USER,
      verifier: scramVerifier(UPGRADE_PASSWORD),
      identityFull: true,
    });
    expect(identityFullSet).toEqual(['app: public.journal']);
    expect((await inspectSource(withDatabaseOf(source), databases)).tablesWithoutIdentity).toEqual([]);
    await cleanSource(withDatabaseOf(source), databases, UPGRADE_USER);
  }, 120_000);
});
