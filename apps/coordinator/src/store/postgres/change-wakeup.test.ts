import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../testing/harness.js';
import { listenForChanges, notifyTriggersSql, type WakeReason } from './change-wakeup.js';
import { startRevisionTail } from './revision-tail.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'coord-secret-1';
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });
let server: TestPostgres;

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: server.url('coord', PW) });
  c.on('error', () => undefined); // a terminated backend surfaces through 'end' and the next query
  await c.connect();
  return c;
}

beforeAll(async () => {
  server = await startTestPostgres({ host: `127.${NET}.37.21`, users: [{ name: 'coord', password: PW }] });
  const c = await client();
  await c.query('CREATE TABLE route_changes (revision bigint PRIMARY KEY, v text NOT NULL)');
  await c.query(notifyTriggersSql(['route_changes']));
  await c.end();
});

afterAll(async () => server?.stop());

describe('LISTEN/NOTIFY wake-ups over revision reads', () => {
  it('delivers every committed change once and in order, across a lost listening connection, and nothing rolled back', async () => {
    const writer = await client();
    const reader = await client();
    const seen: number[] = [];
    const reasons: WakeReason[] = [];
    const tail = startRevisionTail<{ revision: number }>({
      after: 0,
      pageSize: 7,
      read: async (after, limit) =>
        (
          await reader.query<{ revision: string }>('SELECT revision FROM route_changes WHERE revision > $1 ORDER BY revision LIMIT $2', [after, limit])
        ).rows.map((r) => ({ revision: Number(r.revision) })),
      revisionOf: (r) => r.revision,
      deliver: (rows) => seen.push(...rows.map((r) => r.revision)),
      onError: (err) => {
        throw err;
      },
    });
    // A long safety poll, so that what arrives in time arrives through NOTIFY or the reconnect.
    const wakeup = listenForChanges({ connect: client, log, safetyPollMs: 60_000, onWake: (reason) => (reasons.push(reason), tail.wake()) });
    await eventually(() => wakeup.connected(), 10_000, 'listening');

    let rev = 0;
    const commit = async (n: number): Promise<void> => {
      await writer.query('BEGIN');
      for (let i = 0; i < n; i++) await writer.query('INSERT INTO route_changes VALUES ($1, $2)', [++rev, 'x']);
      await writer.query('COMMIT');
    };
    await commit(3);
    await commit(20); // more than a page: read on until a short page
    await eventually(() => seen.length === 23, 10_000, 'first changes');
    expect(reasons).toContain('notify');

    await writer.query('BEGIN');
    await writer.query('INSERT INTO route_changes VALUES (1000, $1)', ['rolled back']);
    await writer.query('ROLLBACK');

    // The listening connection dies; changes committed meanwhile are read after the reconnect.
    await wakeup.stop();
    await commit(5);
    // This one polls often: its poll timer is also what reconnects it.
    const again = listenForChanges({ connect: client, log, safetyPollMs: 300, onWake: (reason) => (reasons.push(reason), tail.wake()) });
    await eventually(() => seen.length === 28, 10_000, 'changes committed while not listening');
    expect(reasons).toContain('connected');

    // A backend killed under the listener: the listener reconnects on its own and reads.
    const connects = (): number => reasons.filter((r) => r === 'connected').length;
    const before = connects();
    const admin = await server.adminClient();
    const killed = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'");
    await admin.end();
    expect(killed.rowCount).toBe(1);
    await commit(2);
    await eventually(() => connects() > before, 10_000, 'listener reconnected');
    await eventually(() => seen.length === 30, 10_000, 'changes after a killed backend');
    await tail.idle();
    await again.stop();
    await writer.end();
    await reader.end();

    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(tail.position()).toBe(30);
  });
});
