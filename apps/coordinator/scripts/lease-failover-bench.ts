/**
 * Leader loss → first write committed by another coordinator, with the default lease timings, on
 * a real PostgreSQL: 10 runs of two coordinators' elections and fenced stores, the leader's
 * election killed without releasing its lease (as kill -9 would), the follower writing every 20 ms
 * until one commits. This is the store-and-lease part of a coordinator failover; the whole path
 * (processes, agents, routers) needs the coordinator wired to the PostgreSQL store.
 *
 *   npm run bench:lease-failover -w apps/coordinator
 */
import { startTestPostgres } from '@pgs/pg-testkit';
import { DEFAULT_LEASE_TIMINGS } from '@pgs/tenancy';
import { pino } from 'pino';
import { electionFence, startLeaderElection, type LeaderElection } from '../src/leadership/leader-election.js';
import { connectTo } from '../src/store/postgres/pg-connection.js';
import { openPostgresStore, type PostgresStore } from '../src/store/postgres/pg-store.js';
import { aTenant } from '../src/testing/records.js';

const RUNS = 10;
const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'bench-secret-1';
const log = pino({ level: 'silent' });
const server = await startTestPostgres({ host: `127.${NET}.37.32`, users: [{ name: 'coord', password: PW }], settings: { fsync: 'on' } });
const url = server.url('coord', PW);
let n = 0;

async function coordinator(name: string): Promise<{ election: LeaderElection; store: PostgresStore }> {
  const election = startLeaderElection({ holder: `${name}/${n++}`, address: `${name}:7400`, connect: () => connectTo(url), log });
  const store = await openPostgresStore({ url, routeHistory: 100, log, fence: electionFence(election) });
  return { election, store };
}

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const samples: number[] = [];
try {
  let follower = await coordinator('c0');
  await until(() => follower.election.leaderEpoch() !== undefined, 10_000);
  for (let run = 1; run <= RUNS; run++) {
    const leader = follower;
    follower = await coordinator(`c${run}`);
    await follower.election.tick();
    // The leader renewed a moment ago at a random point of its interval, as in a real kill.
    await new Promise((r) => setTimeout(r, Math.random() * DEFAULT_LEASE_TIMINGS.renewIntervalMs));
    await leader.election.stop({ release: false });
    const killedAt = performance.now();
    for (;;) {
      try {
        await follower.store.transaction((tx) => tx.tenants.insert(aTenant(`run${run}-${Math.random().toString(36).slice(2)}`)));
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    samples.push(performance.now() - killedAt);
    await leader.store.close();
  }
  await follower.election.stop();
  await follower.store.close();
  const sorted = [...samples].sort((a, b) => a - b);
  const p50 = sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
  console.log(
    `leader killed → first write by the new leader, ${RUNS} runs, lease ${DEFAULT_LEASE_TIMINGS.ttlMs} ms / renew ${DEFAULT_LEASE_TIMINGS.renewIntervalMs} ms:`,
  );
  console.log(`  p50 ${p50.toFixed(0)} ms, max ${(sorted.at(-1) ?? 0).toFixed(0)} ms (runs: ${samples.map((s) => s.toFixed(0)).join(', ')})`);
} finally {
  await server.stop();
}
