// Pool mode session against pool mode none with real clients on the same instance: whatever a
// client does over a lent server connection (large results, COPY both ways, notices,
// LISTEN/NOTIFY, errors, quick connect-and-end) it sees what it sees through a byte pipe.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgConnect, type ProcessResult } from './testing/clients.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';

const PW = 'sc-alice-pw';
let pgServer: TestPostgres;
let feed: FakeRouteFeed;
let router: TestRouter;

beforeAll(async () => {
  pgServer = await startTestPostgres({ users: [{ name: 'alice', password: PW, database: 'acme' }] });
  const admin = await pgServer.adminClient();
  const verifier = (await admin.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'")).rows[0]!.rolpassword;
  await admin.end();
  const users = [{ name: 'alice', scramVerifier: verifier }];
  feed = await startFakeRouteFeed({
    routes: [
      routableRoute('sess', pgServer.host, pgServer.port, { poolMode: 'SESSION', users }),
      routableRoute('pipe', pgServer.host, pgServer.port, { poolMode: 'NONE', users }),
    ],
  });
  router = await startTestRouter({ coordinator: feed.address, args: ['--pool-size', '4', '--pool-wait-timeout', '5s'] });
  await eventually(() => router.cache.revision === 2, 10_000, 'routes synced');
  const c = await connectTo('pipe');
  await c.query('CREATE TABLE IF NOT EXISTS copied (id int, note text)');
  await c.end();
}, 60_000);

afterAll(async () => {
  await router?.stop();
  await feed?.stop();
  await pgServer?.stop();
});

const MODES = ['sess', 'pipe'] as const;
type Tenant = (typeof MODES)[number];

function connectTo(tenant: Tenant): Promise<pg.Client> {
  return pgConnect({ host: router.host, port: router.port, user: `alice.${tenant}`, database: 'acme', password: PW });
}

/** psql reading its commands (and COPY data) from a file. */
function psqlFile(tenant: Tenant, file: string): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'psql',
      ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', `host=127.0.0.1 port=${router.port} user=alice.${tenant} dbname=acme sslmode=disable`, '-f', file],
      {
        env: { ...process.env, PGPASSWORD: PW, PGCONNECT_TIMEOUT: '10' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.each(MODES)('node-postgres and psql through tenant %s', (tenant) => {
  it('a large result (100k rows) arrives whole', async () => {
    const c = await connectTo(tenant);
    try {
      const r = await c.query<{ n: number; pad: string }>("select n, repeat('x', 50) as pad from generate_series(1, 100000) as n");
      expect(r.rowCount).toBe(100_000);
      expect(r.rows[99_999]).toEqual({ n: 100_000, pad: 'x'.repeat(50) });
      expect((await c.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('COPY FROM STDIN and COPY TO STDOUT (psql)', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => `${i}\t${tenant}-row-${i}`);
    const file = path.join(tmpdir(), `pgs-copy-${tenant}-${process.pid}.sql`);
    await writeFile(
      file,
      [
        `DELETE FROM copied WHERE note LIKE '${tenant}-%';`,
        'COPY copied FROM STDIN;',
        ...rows,
        '\\.',
        `COPY (SELECT id, note FROM copied WHERE note LIKE '${tenant}-%' ORDER BY id) TO STDOUT;`,
        '',
      ].join('\n'),
    );
    const r = await psqlFile(tenant, file);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout.trim().split('\n');
    expect(out[0]).toMatch(/^DELETE \d+$/);
    expect(out).toContain('COPY 5000');
    expect(out.slice(-5000)).toEqual(rows);
  });

  it('notices reach the client', async () => {
    const c = await connectTo(tenant);
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      await c.query("DO $$ BEGIN RAISE NOTICE 'hello %', 'there'; RAISE NOTICE 'second'; END $$");
      expect(notices).toEqual(['hello there', 'second']);
    } finally {
      await c.end();
    }
  });

  it('LISTEN/NOTIFY between two clients', async () => {
    const [listener, notifier] = await Promise.all([connectTo(tenant), connectTo(tenant)]);
    const got: string[] = [];
    listener.on('notification', (n) => got.push(`${n.channel}:${n.payload}`));
    try {
      await listener.query(`LISTEN chan_${tenant}`);
      await notifier.query(`NOTIFY chan_${tenant}, 'one'`);
      await notifier.query(`select pg_notify('chan_${tenant}', 'two')`);
      await eventually(() => got.length === 2, 5000, 'notifications');
      expect(got).toEqual([`chan_${tenant}:one`, `chan_${tenant}:two`]);
    } finally {
      await Promise.all([listener.end(), notifier.end()]);
    }
  });

  it('an error in the middle of a query leaves the connection usable', async () => {
    const c = await connectTo(tenant);
    try {
      // Rows are sent before the division by zero fails.
      await expect(c.query('select 10 / (5000 - n) from generate_series(1, 10000) as n')).rejects.toMatchObject({ code: '22012' });
      await expect(c.query('select $1::int as x', ['nope'])).rejects.toMatchObject({ code: '22P02' });
      expect((await c.query('select $1::int as x', [7])).rows).toEqual([{ x: 7 }]);
    } finally {
      await c.end();
    }
  });

  it('quick connect-and-end in a loop', async () => {
    for (let i = 0; i < 30; i++) {
      const c = await connectTo(tenant);
      if (i % 2 === 0) expect((await c.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
      await c.end();
    }
    const c = await connectTo(tenant);
    try {
      expect((await c.query('select 2 as two')).rows).toEqual([{ two: 2 }]);
    } finally {
      await c.end();
    }
  });
});
