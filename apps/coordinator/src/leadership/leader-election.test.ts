import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import type { LeaseTimings } from '@pgs/tenancy';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEASE_SCHEMA_SQL, LeaseLostError, fenceWrite } from '../store/postgres/leader-lease-sql.js';
import { eventually } from '../testing/harness.js';
import { startLeaderElection, type LeaderElection } from './leader-election.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'coord-secret-1';
// Generous for a loaded machine; the defaults are tighter.
const T: LeaseTimings = { ttlMs: 1500, renewIntervalMs: 300, safetyMarginMs: 200 };
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });

let server: TestPostgres;
const open: LeaderElection[] = [];

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: server.url('coord', PW) });
  c.on('error', () => undefined); // a terminated backend surfaces on the next query
  await c.connect();
  return c;
}

function elect(name: string, connect = client): LeaderElection {
  const e = startLeaderElection({ holder: `${name}/${Math.random().toString(36).slice(2)}`, address: `${name}:7400`, connect, timings: T, log });
  open.push(e);
  return e;
}

/** A write of `id` that commits only if the fence for (holder, epoch) passes. */
async function fencedInsert(holder: string, epoch: number, id: number): Promise<void> {
  const c = await client();
  try {
    await c.query('BEGIN');
    await c.query('INSERT INTO writes (id) VALUES ($1)', [id]);
    await fenceWrite(c, holder, epoch);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  } finally {
    await c.end();
  }
}

async function written(): Promise<number[]> {
  const c = await client();
  try {
    return (await c.query<{ id: number }>('SELECT id FROM writes ORDER BY id')).rows.map((r) => r.id);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  server = await startTestPostgres({ host: `127.${NET}.37.20`, users: [{ name: 'coord', password: PW }] });
  const c = await client();
  await c.query(LEASE_SCHEMA_SQL);
  await c.query('CREATE TABLE writes (id int PRIMARY KEY)');
  await c.end();
});

afterAll(async () => {
  for (const e of open) await e.stop({ release: false });
  await server?.stop();
});

describe('leader election on a real PostgreSQL', () => {
  it('elects one leader, fences the old one after a crash, and hands a released lease over at once', async () => {
    const a = elect('a');
    await eventually(() => a.leaderEpoch() === 1, 10_000, 'a leads');
    const b = elect('b');
    await b.tick();
    const bView = b.current();
    expect(bView).toMatchObject({ role: 'follower', leader: { address: 'a:7400', epoch: 1 } });
    expect(b.leaderEpoch()).toBeUndefined();

    const aHolder = bView.role === 'follower' ? (bView.leader?.holder ?? '') : '';
    await fencedInsert(aHolder, 1, 1);

    // a crashes without releasing: b takes over once the lease ran out, with the next epoch.
    await a.stop({ release: false });
    const crashedAt = performance.now();
    await eventually(() => b.leaderEpoch() === 2, 10_000, 'b leads');
    expect(performance.now() - crashedAt).toBeLessThan(T.ttlMs + 2 * T.renewIntervalMs + 2000);

    // Anything a still tries to write under epoch 1 is refused and leaves nothing behind.
    await expect(fencedInsert(aHolder, 1, 2)).rejects.toBeInstanceOf(LeaseLostError);
    expect(await written()).toEqual([1]);

    // A clean stop releases the lease: the next coordinator leads on its first attempt.
    await b.stop();
    const c = elect('c');
    await eventually(() => c.leaderEpoch() === 3, 3000, 'c leads at once');
    await c.stop();
  });

  it('steps a leader down by its own clock when the store is out of reach, before anyone else may lead', async () => {
    let reachable = true;
    let held: pg.Client | undefined;
    const d = elect('d', async () => {
      if (!reachable) throw new Error('store out of reach');
      held = await client();
      return held;
    });
    await eventually(() => d.leaderEpoch() !== undefined, 10_000, 'd leads');
    const changes: string[] = [];
    d.onChange((l) => changes.push(l.role));
    reachable = false;
    const admin = await server.adminClient();
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()', ['coord']);
    await admin.end();
    const cutAt = performance.now();
    await eventually(() => d.leaderEpoch() === undefined, 10_000, 'd steps down');
    expect(performance.now() - cutAt).toBeLessThan(T.ttlMs);
    // The clock stops it acting at once; listeners hear of it on the election loop's next turn.
    await eventually(() => changes.length > 0, 10_000, 'the step-down told to listeners');
    expect(changes).toEqual(['follower']);
    expect(held).toBeDefined();
  });
});
