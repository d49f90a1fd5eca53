import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestPostgresPair, type TestPostgresPair } from './index.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';

describe('startTestPostgresPair', () => {
  let pair: TestPostgresPair | undefined;
  afterAll(async () => pair?.stop());

  it('loses no acknowledged commit when the primary is killed and the synchronous standby promoted', async () => {
    pair = await startTestPostgresPair({ host: `127.${NET}.37.1`, standbyHost: `127.${NET}.37.2`, users: [{ name: 'app', password: 'app-secret-1' }] });
    expect(pair.hosts).toHaveLength(2);
    const old = pair.primary;
    const setup = new pg.Client({ connectionString: old.url('app', 'app-secret-1') });
    await setup.connect();
    await setup.query('CREATE TABLE acked (id int PRIMARY KEY)');
    await setup.end();

    // Writers commit one row at a time; an id counts only once its COMMIT was answered.
    const acked: number[] = [];
    let next = 0;
    let stopping = false;
    const writer = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: old.url('app', 'app-secret-1') });
      c.on('error', () => undefined);
      await c.connect();
      while (!stopping) {
        const id = next++;
        try {
          await c.query('INSERT INTO acked (id) VALUES ($1)', [id]);
          acked.push(id);
        } catch {
          return; // the primary died under us
        }
      }
    };
    const writers = [writer(), writer(), writer()];
    const deadline = Date.now() + 30_000;
    while (acked.length < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(acked.length).toBeGreaterThanOrEqual(200);
    await old.kill();
    stopping = true;
    await Promise.all(writers);

    await pair.promoteStandby();
    expect(pair.primary).not.toBe(old);
    const c = new pg.Client({ connectionString: pair.primary.url('app', 'app-secret-1') });
    await c.connect();
    const inRecovery = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    expect(inRecovery.rows[0]?.r).toBe(false);
    const present = new Set((await c.query<{ id: number }>('SELECT id FROM acked')).rows.map((r) => r.id));
    await c.query('INSERT INTO acked (id) VALUES (-1)'); // the promoted server takes writes
    await c.end();
    expect(acked.filter((id) => !present.has(id))).toEqual([]);
  });
});
