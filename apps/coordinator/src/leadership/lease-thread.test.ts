import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import type { Leadership, LeaseTimings } from '@pgs/tenancy';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEASE_SCHEMA_SQL, fenceAndCommit, readLease } from '../store/postgres/leader-lease-sql.js';
import { eventually } from '../testing/harness.js';
import type { LeaderElection } from './leader-election.js';
import { startLeaseThread } from './lease-thread.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'coord-secret-1';
const T: LeaseTimings = { ttlMs: 1500, renewIntervalMs: 300, safetyMarginMs: 200 };
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });

let server: TestPostgres;
const open: LeaderElection[] = [];

async function lease(): Promise<{ epoch: number; live: boolean }> {
  const c = new pg.Client({ connectionString: server.url('coord', PW) });
  await c.connect();
  try {
    const { row, now } = await readLease(c);
    return { epoch: row.epoch, live: now < row.expiresAt };
  } finally {
    await c.end();
  }
}

function thread(name: string, maxStallMs?: number): LeaderElection {
  const e = startLeaseThread({
    holder: `${name}/${Math.random().toString(36).slice(2)}`,
    address: `${name}:7400`,
    urls: [server.url('coord', PW)],
    timings: T,
    log,
    maxStallMs,
  });
  open.push(e);
  return e;
}

/** Keeps this thread busy, as a coordinator's main thread is during a long turn of its event loop. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    /* spin */
  }
}

beforeAll(async () => {
  server = await startTestPostgres({ host: `127.${NET}.37.35`, users: [{ name: 'coord', password: PW }] });
  const c = new pg.Client({ connectionString: server.url('coord', PW) });
  await c.connect();
  await c.query(LEASE_SCHEMA_SQL);
  await c.query('CREATE TABLE writes (id int PRIMARY KEY)');
  await c.end();
});

afterAll(async () => {
  for (const e of open) await e.stop({ release: false });
  await server?.stop();
});

// Each test starts a worker thread that compiles its TypeScript on a possibly loaded machine.
describe('the leader lease on its own thread', { timeout: 90_000 }, () => {
  it('keeps leading through a main-thread turn longer than the lease, and releases it on stop', async () => {
    const a = thread('a');
    await eventually(() => a.leaderEpoch() !== undefined, 30_000, 'a leads');
    const epoch = a.leaderEpoch();
    expect(a.current()).toMatchObject({ role: 'leader', epoch });

    // Three lease lengths without a turn of the event loop: renewals went on meanwhile.
    busy(3 * T.ttlMs);
    expect(a.leaderEpoch()).toBe(epoch);
    expect(await lease()).toEqual({ epoch, live: true });

    await a.stop();
    expect(a.leaderEpoch()).toBeUndefined();
    expect(await lease()).toEqual({ epoch, live: false });
  });

  it("keeps leading when a write's fence was sent just before a long turn (the commit does not wait for the turn)", async () => {
    const e = thread('w');
    const c = new pg.Client({ connectionString: server.url('coord', PW) });
    await c.connect();
    try {
      await eventually(() => e.leaderEpoch() !== undefined, 30_000, 'w leads');
      const epoch = e.leaderEpoch() ?? 0;
      await c.query('BEGIN');
      await c.query('INSERT INTO writes (id) VALUES (1)');
      // The fence's share lock on the lease row is what a renewal waits for: were the COMMIT sent
      // only after this turn, every renewal meanwhile would wait, and the lease would run out.
      const committed = fenceAndCommit(c, e.holder, epoch);
      busy(3 * T.ttlMs);
      await committed;
      expect(e.leaderEpoch()).toBe(epoch);
      expect(await lease()).toEqual({ epoch, live: true });
    } finally {
      await c.end();
      await e.stop();
    }
  });

  it('lets the lease run out while the main thread is silent for longer than its bound, and takes part again after', async () => {
    const b = thread('b', 600);
    await eventually(() => b.leaderEpoch() !== undefined, 30_000, 'b leads');
    const epoch = b.leaderEpoch() ?? 0;

    try {
      busy(600 + 2 * T.ttlMs);
      expect(b.leaderEpoch()).toBeUndefined();
      // Running again: the lease lapsed meanwhile (a renewal would have kept its epoch), and it is
      // taken anew at the next one.
      await eventually(() => (b.leaderEpoch() ?? 0) > epoch, 30_000, 'b leads again');
      expect((await lease()).epoch).toBeGreaterThan(epoch);
    } finally {
      await b.stop();
    }
  });

  it('follows a live leader and names it', async () => {
    const c = thread('c');
    await eventually(() => c.leaderEpoch() !== undefined, 30_000, 'c leads');
    const d = thread('d');
    await d.tick();
    const leaderOf = (l: Leadership): string | undefined => (l.role === 'follower' ? l.leader?.address : undefined);
    await eventually(() => leaderOf(d.current()) === 'c:7400', 30_000, 'd follows c');
    expect(d.leaderEpoch()).toBeUndefined();
    await c.stop();
    await eventually(() => d.leaderEpoch() !== undefined, 30_000, 'd leads after c released');
    await d.stop();
  });
});
