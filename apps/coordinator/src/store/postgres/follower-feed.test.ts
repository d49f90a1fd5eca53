import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../testing/harness.js';
import { connectTo } from './pg-connection.js';
import { startFollowerFeed, type FollowedChanges } from './follower-feed.js';
import { openPostgresStore, type PostgresStore } from './pg-store.js';
import type pg from 'pg';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'coord-secret-1';
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });
let server: TestPostgres;
let leader: PostgresStore;
let reader: pg.Client;

const route = (tenantId: string, port: number) => ({
  tenantId,
  hostId: 'h1',
  address: '127.0.0.11',
  port,
  state: 'ROUTABLE' as const,
  reason: '',
  externalAccess: true,
  connectionLimit: 0,
  poolMode: 'SESSION' as const,
  users: [],
});

beforeAll(async () => {
  server = await startTestPostgres({ host: `127.${NET}.37.26`, users: [{ name: 'coord', password: PW }] });
  leader = await openPostgresStore({ url: server.url('coord', PW), routeHistory: 1000, log });
  reader = await connectTo(server.url('coord', PW));
});
afterAll(async () => {
  await reader?.end();
  await leader?.close();
  await server?.stop();
});

describe('a follower reading what the leader commits', () => {
  it('gets every route change and event in order, once, from where it started, across a lost listening connection', async () => {
    // Committed before the follower started: it starts after revision 1 and event 1.
    await leader.transaction(async (tx) => {
      await tx.routes.put(route('a', 1));
      await tx.events.append({ time: 1, principal: 'p', action: 'x', message: 'before' });
    });
    const got: FollowedChanges[] = [];
    const feed = startFollowerFeed({
      connect: () => connectTo(server.url('coord', PW)),
      query: (sql, params) => reader.query(sql, params as unknown[]),
      afterRevision: 1,
      afterEventId: 1,
      deliver: (c) => got.push(c),
      log,
      safetyPollMs: 300,
      pageSize: 4,
    });
    for (let i = 0; i < 10; i++) {
      await leader.transaction(async (tx) => {
        await tx.routes.put(route(`t${i}`, 100 + i));
        await tx.events.append({ time: i, principal: 'p', action: 'x', message: `e${i}` });
      });
    }
    await eventually(() => feed.position().revision === 11 && feed.position().eventId === 11, 10_000, 'the first changes');
    // The listening connection is killed; what commits meanwhile arrives after the reconnect.
    const admin = await server.adminClient();
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'");
    await admin.end();
    await leader.transaction(async (tx) => {
      await tx.routes.delete('t0');
      await tx.events.append({ time: 99, principal: 'p', action: 'x', message: 'after' });
    });
    await eventually(() => feed.position().revision === 12 && feed.position().eventId === 12, 10_000, 'the change made while not listening');
    await feed.stop();
    const revisions = got.flatMap((c) => c.routeChanges.map((r) => r.revision));
    expect(revisions).toEqual(Array.from({ length: 11 }, (_, i) => i + 2));
    expect(got.flatMap((c) => c.routeChanges).at(-1)).toEqual({ revision: 12, tenantId: 't0', route: undefined });
    expect(got.flatMap((c) => c.events.map((e) => e.message))).toEqual([...Array.from({ length: 10 }, (_, i) => `e${i}`), 'after']);
  });

  it('a store follows from what is committed now: only later changes are delivered, in order', async () => {
    const follower = await openPostgresStore({ url: server.url('coord', PW), routeHistory: 1000, log });
    try {
      await leader.transaction(async (tx) => {
        await tx.routes.put(route('old', 1));
        await tx.events.append({ time: 1, principal: 'p', action: 'x', message: 'old' });
      });
      const now = await leader.read.routes.revision();
      const got: FollowedChanges[] = [];
      const feed = await follower.follow((c) => got.push(c), 300);
      for (let i = 0; i < 3; i++) {
        await leader.transaction(async (tx) => {
          await tx.routes.put(route(`n${i}`, 200 + i));
          await tx.events.append({ time: i, principal: 'p', action: 'x', message: `n${i}` });
        });
      }
      await eventually(() => feed.position().revision === now + 3, 10_000, 'the later changes');
      await feed.stop();
      expect(got.flatMap((c) => c.routeChanges.map((r) => r.tenantId))).toEqual(['n0', 'n1', 'n2']);
      expect(got.flatMap((c) => c.routeChanges.map((r) => r.revision))).toEqual([now + 1, now + 2, now + 3]);
      expect(got.flatMap((c) => c.events.map((e) => e.message))).toEqual(['n0', 'n1', 'n2']);
    } finally {
      await follower.close();
    }
  });
});
