import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import type { LeaseTimings } from '@pgs/tenancy';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../domain/errors.js';
import { connectTo } from '../store/postgres/pg-connection.js';
import { openPostgresStore, type PostgresStore } from '../store/postgres/pg-store.js';
import { aTenant } from '../testing/records.js';
import { eventually } from '../testing/harness.js';
import { electionFence, startLeaderElection, type LeaderElection } from './leader-election.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'coord-secret-1';
const T: LeaseTimings = { ttlMs: 1500, renewIntervalMs: 300, safetyMarginMs: 200 };
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });
let server: TestPostgres;
const cleanup: Array<() => Promise<void>> = [];

/** One coordinator's store side: its election and its fenced store on the shared database. */
async function coordinator(name: string): Promise<{ election: LeaderElection; store: PostgresStore }> {
  const url = server.url('coord', PW);
  const election = startLeaderElection({
    holder: `${name}/${process.pid}-${Math.random()}`,
    address: `${name}:7400`,
    connect: () => connectTo(url),
    timings: T,
    log,
  });
  const store = await openPostgresStore({ url, routeHistory: 100, log, fence: electionFence(election) });
  cleanup.push(async () => {
    await election.stop({ release: false });
    await store.close();
  });
  return { election, store };
}

beforeAll(async () => {
  server = await startTestPostgres({ host: `127.${NET}.37.27`, users: [{ name: 'coord', password: PW }] });
});
afterAll(async () => {
  for (const c of cleanup) await c();
  await server?.stop();
});

describe('several coordinators on one PostgreSQL store', () => {
  it("commits only the leader's writes, and after the leader dies a follower writes within the lease", async () => {
    const a = await coordinator('a');
    await eventually(() => a.election.leaderEpoch() !== undefined, 10_000, 'a leads');
    const b = await coordinator('b');
    await b.election.tick();
    await a.store.transaction((tx) => tx.tenants.insert(aTenant('by-a')));
    await expect(b.store.transaction((tx) => tx.tenants.insert(aTenant('by-b')))).rejects.toBeInstanceOf(StoreUnavailableError);

    // a's election dies (no release, as in kill -9) while its store still tries to write.
    await a.election.stop({ release: false });
    const killedAt = performance.now();
    let firstWrite = 0;
    await eventually(
      async () => {
        await b.store.transaction((tx) => tx.tenants.insert(aTenant(`by-b-${Math.random()}`)));
        firstWrite = performance.now() - killedAt;
        return true;
      },
      15_000,
      'b writes',
    );
    expect(firstWrite).toBeLessThan(T.ttlMs + 2 * T.renewIntervalMs + 3000);
    await expect(a.store.transaction((tx) => tx.tenants.insert(aTenant('late-a')))).rejects.toBeInstanceOf(StoreUnavailableError);
    const ids = (await b.store.read.tenants.list()).map((t) => t.id);
    expect(ids).toContain('by-a');
    expect(ids).not.toContain('by-b');
    expect(ids).not.toContain('late-a');
  });
});
