import fs from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InitSqlExecutor } from './init-sql.js';
import { InstanceAdmin } from './instance-admin.js';
import type { ProcessRuntime } from './runtime/process-runtime.js';
import { scramVerifier } from './testing/scram-verifier.js';
import { tempDataRoot, testLogger, testProcessRuntime, uniqueTenantId } from './testing/test-env.js';

const ADDRESS = '127.0.0.1';

describe('init scripts inside a real instance', () => {
  const dataRoot = tempDataRoot();
  const log = testLogger();
  let runtime: ProcessRuntime;
  let admin: InstanceAdmin;
  let executor: InitSqlExecutor;
  const created: string[] = [];

  beforeAll(async () => {
    runtime = testProcessRuntime({ dataRoot, address: ADDRESS, log });
    admin = new InstanceAdmin((t, db) => runtime.adminConnection(t, db), log);
    executor = new InitSqlExecutor(admin, (t, db) => runtime.adminConnection(t, db), log);
    await runtime.init();
  });

  afterAll(async () => {
    for (const t of created) await runtime.remove(t).catch(() => undefined);
    await runtime.close();
    fs.rmSync(dataRoot, { recursive: true, force: true });
  });

  async function tenant(): Promise<string> {
    const id = uniqueTenantId();
    created.push(id);
    await runtime.ensure({
      tenantId: id,
      specRevision: 1,
      resources: { cpuMillis: 1000, memoryMib: 512, diskMib: 8192 },
      version: '',
      image: '',
      port: 0,
      runState: 'RUNNING',
    });
    await runtime.start(id);
    const roles = [
      { name: id, scramVerifier: scramVerifier('owner-secret-1'), login: true },
      { name: 'app', scramVerifier: scramVerifier('app-secret-1'), login: true },
    ];
    await admin.apply(id, {
      roles,
      databases: [
        { name: id, owner: id },
        { name: 'orders', owner: 'app' },
      ],
      dropRoles: [],
      dropDatabases: [],
    });
    return id;
  }

  const q = <T extends pg.QueryResultRow>(id: string, database: string, sql: string): Promise<T[]> =>
    admin.withClient(id, database, async (c) => (await c.query<T>(sql)).rows);

  it('runs the scripts in order, each as its database owner, once: a second run skips what committed', async () => {
    const id = await tenant();
    const scripts = [
      { name: '001-schema.sql', sql: 'create table items (id int primary key, body text);\ncreate index on items (body);', database: '' },
      { name: '002-data.sql', sql: "insert into items values (1, 'one'), (2, 'two');", database: '' },
      { name: 'orders.sql', sql: 'create table orders (id int); insert into orders values (7);', database: 'orders' },
    ];
    expect(await executor.run(id, scripts)).toEqual({ applied: 3, failedScript: '', error: '', sqlstate: '' });
    expect(await q(id, id, 'select count(*)::int as n from items')).toEqual([{ n: 2 }]);
    expect(await q(id, id, "select tableowner from pg_tables where tablename = 'items'")).toEqual([{ tableowner: id }]);
    expect(await q(id, 'orders', "select tableowner from pg_tables where tablename = 'orders'")).toEqual([{ tableowner: 'app' }]);
    // Sent again (a coordinator that restarted before the answer): nothing runs twice.
    expect(await executor.run(id, scripts)).toMatchObject({ applied: 3, error: '' });
    expect(await q(id, id, 'select count(*)::int as n from items')).toEqual([{ n: 2 }]);
    expect(await q(id, id, 'select seq, name from pgs_init.applied order by seq')).toEqual([
      { seq: 0, name: '001-schema.sql' },
      { seq: 1, name: '002-data.sql' },
    ]);
    // The short-lived login roles are gone.
    expect(await q(id, 'postgres', "select rolname from pg_roles where rolname like 'pgs_init_%'")).toEqual([]);
  });

  it('stops at a failing script with its error and line; the ones before stay committed, the failed one left nothing', async () => {
    const id = await tenant();
    const scripts = [
      { name: 'a.sql', sql: 'create table a (x int);', database: '' },
      { name: 'b.sql', sql: 'create table b (y int);\ninsert into nope values (1);', database: '' },
      { name: 'c.sql', sql: 'create table c (z int);', database: '' },
    ];
    const r = await executor.run(id, scripts);
    expect(r).toMatchObject({ applied: 1, failedScript: 'b.sql', sqlstate: '42P01' });
    expect(r.error).toMatch(/relation "nope" does not exist; at line 2 \(SQLSTATE 42P01\)/);
    expect(await q(id, id, "select tablename from pg_tables where schemaname = 'public' order by 1")).toEqual([{ tablename: 'a' }]);
    // Fixed and retried: resumes at b.
    const fixed = [scripts[0]!, { ...scripts[1]!, sql: 'create table b (y int);' }, scripts[2]!];
    expect(await executor.run(id, fixed)).toMatchObject({ applied: 3, error: '' });
    expect(await q(id, id, "select tablename from pg_tables where schemaname = 'public' order by 1")).toEqual([
      { tablename: 'a' },
      { tablename: 'b' },
      { tablename: 'c' },
    ]);
  });

  it('never runs tenant SQL as the superuser, and refuses a script that ends its own transaction', async () => {
    const id = await tenant();
    const escape = await executor.run(id, [{ name: 'escape.sql', sql: "reset role; copy (select 1) to program 'true';", database: '' }]);
    expect(escape).toMatchObject({ applied: 0, failedScript: 'escape.sql', sqlstate: '42501' });
    const commit = await executor.run(id, [{ name: 'commit.sql', sql: 'create table early (x int); commit; create table late (x int);', database: '' }]);
    expect(commit).toMatchObject({ applied: 0, failedScript: 'commit.sql' });
    expect(commit.error).toMatch(/ended its transaction/);
    const missing = await executor.run(id, [{ name: 'x.sql', sql: 'select 1', database: 'nosuchdb' }]);
    expect(missing).toMatchObject({ applied: 0, failedScript: 'x.sql', sqlstate: '3D000' });
  });
});
