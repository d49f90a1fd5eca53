import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from './index.js';

describe('startTestPostgres', () => {
  let server: TestPostgres | undefined;
  afterAll(async () => server?.stop());
  it('runs a real server that takes SCRAM logins over TCP', async () => {
    server = await startTestPostgres({ users: [{ name: 'alice', password: 'alice-secret-1' }] });
    const c = new pg.Client({ connectionString: server.url('alice', 'alice-secret-1') });
    await c.connect();
    const r = await c.query<{ u: string; v: string }>('select current_user as u, current_setting($1) as v', ['password_encryption']);
    await c.end();
    expect(r.rows[0]).toEqual({ u: 'alice', v: 'scram-sha-256' });
    const bad = new pg.Client({ connectionString: server.url('alice', 'wrong-password') });
    await expect(bad.connect()).rejects.toThrow(/password authentication failed/);
  });
});
