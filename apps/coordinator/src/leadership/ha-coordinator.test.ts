/**
 * Whole coordinators (in process) sharing one real PostgreSQL store: one leads and serves, the
 * other serves reads and the route watch from the store and sends writes to the leader; a client
 * given both addresses finds the leader; when the leader goes, the other leads with a newer epoch
 * and serves the same fleet on the same addresses.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { freePort, startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { CoordinatorService, RouteFeedService, type WatchRoutesResponse } from '@pgs/proto';
import { Code, createClient, createLeaderClient, NOT_LEADER, RpcError } from '@pgs/rpc';
import { bearerMetadata, ensureKeyFile, identity, identityClaimMetadata } from '@pgs/security';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../config.js';
import { withCallMetadata } from '../testing/call-metadata.js';
import { eventually, FAST_FLAGS } from '../testing/harness.js';
import { startHaCoordinator, type HaCoordinator } from './ha-coordinator.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const HOST = `127.${NET}.37.28`;
const PW = 'coord-secret-2';
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });
let server: TestPostgres;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-ha-'));
const running: HaCoordinator[] = [];

async function coordinator(name: string): Promise<{ ha: HaCoordinator; grpc: string }> {
  const grpc = `${HOST}:${await freePort(HOST)}`;
  const http = `${HOST}:${await freePort(HOST)}`;
  const result = readConfig(
    [
      '--insecure',
      '--store',
      server.url('coord', PW),
      '--data-dir',
      path.join(root, name),
      '--grpc-listen',
      grpc,
      '--http-listen',
      http,
      '--admin-token-file',
      path.join(root, 'admin.token'),
      '--secret-key-file',
      path.join(root, 'secret.key'),
      ...FAST_FLAGS,
    ],
    {},
  );
  if (result.kind !== 'config') throw new Error('unexpected help');
  const ha = await startHaCoordinator(result.config, server.url('coord', PW), log.child({ coordinator: name }));
  running.push(ha);
  return { ha, grpc };
}

function epochOf(ha: HaCoordinator): number | undefined {
  return ha.election.leaderEpoch();
}

beforeAll(async () => {
  server = await startTestPostgres({ host: HOST, users: [{ name: 'coord', password: PW }] });
  // Every coordinator of a fleet opens the store's sealed secrets with the same key.
  ensureKeyFile(path.join(root, 'secret.key'));
});
afterAll(async () => {
  for (const ha of running) await ha.stop();
  await server?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('coordinators on one PostgreSQL store', () => {
  it('one leads and serves; the other serves reads and route watches and names it for writes; a client of both finds it, and after a hand-over the other leads the same fleet', async () => {
    const a = await coordinator('a');
    await eventually(() => a.ha.leader() !== undefined, 15_000, 'a leads and serves');
    const b = await coordinator('b');
    await eventually(
      () => b.ha.election.current().role === 'follower' && (b.ha.election.current() as { leader?: { address: string } }).leader?.address === a.grpc,
      10_000,
      'b follows a',
    );
    const token = fs.readFileSync(path.join(root, 'admin.token'), 'utf8').trim();
    const meta = withCallMetadata(bearerMetadata(token));

    // The follower refuses writes with the leader's address.
    const direct = createClient(CoordinatorService, b.grpc, credentials.createInsecure(), meta);
    const refused = await eventually(
      async () => {
        const err = await direct.createTenant({ id: 'refused' }).then(
          () => undefined,
          (e: unknown) => e,
        );
        return err instanceof RpcError && err.details['leader'] === a.grpc ? err : undefined;
      },
      10_000,
      'the follower names the leader',
    );
    expect(refused.code).toBe(Code.UNAVAILABLE);
    expect(refused.errorCode).toBe(NOT_LEADER);

    // A router following the follower: a snapshot, then what the leader commits, in revision order.
    const router = createClient(RouteFeedService, b.grpc, credentials.createInsecure(), withCallMetadata(identityClaimMetadata(identity('router', 'r1'))));
    const watch = router.watchRoutes({ sinceRevision: 0n, routerId: 'r1', cancelAddress: '127.0.0.1:6000', snapshotInParts: true });
    const routes = watch[Symbol.asyncIterator]();
    const snapshot = (await routes.next()).value as WatchRoutesResponse;
    expect(snapshot.snapshot).toBe(true);

    // A client given the follower first is sent to the leader for writes.
    const client = createLeaderClient(CoordinatorService, [b.grpc, a.grpc], credentials.createInsecure(), meta, { rounds: 10 });
    const started = performance.now();
    await client.createTenant({ id: 'before' });
    expect(client.current()).toBe(a.grpc);
    let delta: WatchRoutesResponse;
    do delta = (await routes.next()).value as WatchRoutesResponse;
    while (!delta.upserts.some((r) => r.tenantId === 'before'));
    // Woken by NOTIFY at the leader's commit; the bound is generous for a loaded machine (the safety poll alone is 1 s).
    expect(performance.now() - started).toBeLessThan(5000);
    expect(delta.snapshot).toBe(false);
    expect(delta.revision).toBeGreaterThan(snapshot.revision);
    // The same revision the leader serves: a router may switch between them and resume by revision.
    const atLeader = createClient(RouteFeedService, a.grpc, credentials.createInsecure(), withCallMetadata(identityClaimMetadata(identity('router', 'r2'))));
    const leaderWatch = atLeader.watchRoutes({ sinceRevision: snapshot.revision, routerId: 'r2' });
    const fromLeader = (await leaderWatch[Symbol.asyncIterator]().next()).value as WatchRoutesResponse;
    leaderWatch.cancel();
    atLeader.close();
    expect(fromLeader.revision).toBe(delta.revision);
    expect(fromLeader.upserts.find((r) => r.tenantId === 'before')?.revision).toBe(delta.upserts.find((r) => r.tenantId === 'before')?.revision);

    // Reads are the follower's own, from the store.
    expect((await direct.listTenants({})).tenants.map((t) => t.id)).toEqual(['before']);
    expect((await direct.getTenant({ id: 'before' })).tenant?.id).toBe('before');
    expect((await direct.listEvents({ tenantId: 'before' })).events.length).toBeGreaterThan(0);
    direct.close();
    const firstEpoch = epochOf(a.ha);
    expect(firstEpoch).toBeGreaterThan(0);

    // The leader stops (its lease released): b leads at a newer epoch and serves what a committed.
    await a.ha.stop();
    running.splice(running.indexOf(a.ha), 1);
    await eventually(() => b.ha.leader() !== undefined, 15_000, 'b leads');
    // The follower's watch ended when b began to lead (the router reconnects to the same address).
    for (let next = await routes.next(); !next.done; next = await routes.next());
    router.close();
    expect(epochOf(b.ha)).toBeGreaterThan(firstEpoch ?? 0);
    await client.createTenant({ id: 'after' });
    expect(client.current()).toBe(b.grpc);
    const ids = (await client.listTenants({})).tenants.map((t) => t.id).sort();
    expect(ids).toEqual(['after', 'before']);
    client.close();
  });
});
