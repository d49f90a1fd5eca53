import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import type { LeaseTimings } from '@pgs/tenancy';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEASE_SCHEMA_SQL, LeaseLostError, fenceAndCommit, leaseStep, readLease, renewLease } from '../store/postgres/leader-lease-sql.js';
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

function elect(name: string, connect = client, timings = T): LeaderElection {
  const e = startLeaderElection({ holder: `${name}/${Math.random().toString(36).slice(2)}`, address: `${name}:7400`, connect, timings, log });
  open.push(e);
  return e;
}

/** A write of `id` that commits only if the fence for (holder, epoch) passes. */
async function fencedInsert(holder: string, epoch: number, id: number): Promise<void> {
  const c = await client();
  try {
    await c.query('BEGIN');
    await c.query('INSERT INTO writes (id) VALUES ($1)', [id]);
    await fenceAndCommit(c, holder, epoch);
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

/** Blocks this thread (and so its event loop) for `ms` without spinning: a turn of the loop that long. */
function blockEventLoop(ms: number): void {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Ends whatever lease the earlier tests left, keeping the epoch: the next candidate acquires at once. */
async function freeLease(): Promise<number> {
  const c = await client();
  try {
    const r = await c.query<{ epoch: string }>(`UPDATE coordinator_lease SET holder = '', expires_at = 0 WHERE id = 1 RETURNING epoch`);
    return Number(r.rows[0]?.epoch);
  } finally {
    await c.end();
  }
}

describe('a leader on a loaded machine', () => {
  it('renews in one statement only what decideLease would renew: its own live lease at its epoch', async () => {
    await freeLease();
    const c = await client();
    try {
      const me = { holder: 'one/1', address: 'one:7400', heldEpoch: 0 };
      const got = await leaseStep(c, me, T);
      if (got.kind !== 'acquire') throw new Error(`expected an acquisition, got ${got.kind}`);
      const epoch = got.next.epoch;
      const renewed = await renewLease(c, { ...me, heldEpoch: epoch }, T);
      expect(renewed).toMatchObject({ kind: 'renew', next: { holder: 'one/1', epoch } });
      expect(renewed?.kind === 'renew' && renewed.next.expiresAt).toBeGreaterThanOrEqual(got.next.expiresAt);
      expect(await renewLease(c, { ...me, holder: 'two/2', heldEpoch: epoch }, T)).toBeUndefined();
      expect(await renewLease(c, { ...me, heldEpoch: epoch - 1 }, T)).toBeUndefined();
      // Run out: not renewed at the same epoch; the full step takes it at the next one.
      await c.query('UPDATE coordinator_lease SET expires_at = 0 WHERE id = 1');
      expect(await renewLease(c, { ...me, heldEpoch: epoch }, T)).toBeUndefined();
      expect((await readLease(c)).row).toMatchObject({ holder: 'one/1', epoch, expiresAt: 0 });
      expect(await leaseStep(c, { ...me, heldEpoch: epoch }, T)).toMatchObject({ kind: 'acquire', next: { holder: 'one/1', epoch: epoch + 1 } });
    } finally {
      await c.end();
    }
  });

  it('counts its first term from the lease statement, not from before a connect that took longer than the term', async () => {
    const before = await freeLease();
    const e = elect('slowconnect', async () => {
      await new Promise((r) => setTimeout(r, T.ttlMs));
      return client();
    });
    await e.tick();
    // Counted from before the connect, the acquisition came too late to act on: the coordinator
    // followed itself until the lease ran out and took it again at the next epoch.
    expect(e.leaderEpoch()).toBe(before + 1);
    await e.stop();
  });

  it('keeps its lease while every turn of its event loop takes a third of the lease', async () => {
    const t: LeaseTimings = { ttlMs: 4000, renewIntervalMs: 500, safetyMarginMs: 250 };
    await freeLease();
    const e = elect('busy', client, t);
    await eventually(() => e.leaderEpoch(), 10_000, 'busy leads');
    const epoch = e.leaderEpoch();
    const changes: string[] = [];
    e.onChange((l) => changes.push(l.role));
    // Six turns of 1 s each: each answer from the store is read one turn after it was sent. A
    // renewal of one statement lands a turn after it is sent, well inside the 3.75 s a leader acts
    // on a renewal; one of four statements lands four turns later, past it.
    await new Promise<void>((resolve) => {
      let turns = 0;
      const turn = (): void => {
        blockEventLoop(1000);
        if (++turns < 6) setImmediate(turn);
        else resolve();
      };
      setImmediate(turn);
    });
    expect(changes).toEqual([]);
    expect(e.leaderEpoch()).toBe(epoch);
    await e.stop();
  });

  it('reads a renewal answered during a long turn before judging its deadline at the end of that turn', async () => {
    const t: LeaseTimings = { ttlMs: 4000, renewIntervalMs: 1000, safetyMarginMs: 400 };
    await freeLease();
    const e = elect('stall', client, t);
    await eventually(() => e.leaderEpoch(), 10_000, 'stall leads');
    const changes: string[] = [];
    e.onChange((l) => changes.push(l.role));
    // Hold the next renewal back with a lock on the lease row, then let it go and stall the event
    // loop past the deadline of the renewal before it: the held one is answered during the stall.
    const holder = await client();
    const watcher = await client();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM coordinator_lease WHERE id = 1 FOR SHARE');
      await eventually(
        async () => Number((await watcher.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`)).rows[0]?.n) > 0,
        10_000,
        'a renewal waiting on the held row',
      );
      const now = e.current();
      if (now.role !== 'leader') throw new Error('the leader stepped down before its renewal was held back; the machine is too slow for this test');
      const released = holder.query('COMMIT');
      blockEventLoop(now.actUntil - performance.now() + 50);
      await released;
      await eventually(
        () => {
          const l = e.current();
          return l.role === 'leader' && l.actUntil > now.actUntil;
        },
        10_000,
        'the held renewal read',
      );
      expect(changes).toEqual([]);
    } finally {
      await holder.end().catch(() => undefined);
      await watcher.end();
      await e.stop();
    }
  });
});
