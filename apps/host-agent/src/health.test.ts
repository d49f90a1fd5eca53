// Busy backends as the idle-suspend decision needs them, measured on a real PostgreSQL: an idle
// session is not work, a session idle in a transaction is, and so is a running query.
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth } from './health.js';
import { InstanceAdmin } from './instance-admin.js';
import { testLogger } from './testing/test-env.js';

let server: TestPostgres;
let admin: InstanceAdmin;

beforeAll(async () => {
  server = await startTestPostgres({ users: [{ name: 'app', password: 'app-health-pw' }] });
  admin = new InstanceAdmin(() => ({ host: server.socketDir, port: server.port, user: 'postgres', database: 'postgres' }), testLogger());
});

afterAll(async () => {
  await server?.stop();
});

async function busy(): Promise<number> {
  return (await checkHealth(admin, 't', Date.now, testLogger())).busyBackends;
}

describe('checkHealth busy backends', () => {
  it('counts sessions in a transaction or a query, not idle ones (nor its own)', async () => {
    const a = new pg.Client({ connectionString: server.url('app', 'app-health-pw') });
    const b = new pg.Client({ connectionString: server.url('app', 'app-health-pw') });
    await a.connect();
    await b.connect();
    try {
      expect(await busy()).toBe(0);
      await a.query('begin');
      await a.query('select 1');
      expect(await busy()).toBe(1);
      const sleeping = b.query('select pg_sleep(1)');
      await new Promise((r) => setTimeout(r, 200));
      expect(await busy()).toBe(2);
      await sleeping;
      await a.query('commit');
      expect(await busy()).toBe(0);
    } finally {
      await a.end();
      await b.end();
    }
  });
});
