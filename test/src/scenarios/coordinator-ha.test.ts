// Several coordinators on one PostgreSQL store (a primary with a synchronous standby): kill -9 the
// leader while pgsctl creates and deletes tenants, and a follower leads within 5 s with every
// acknowledged write there, agents and routers on it, and route changes reaching the routers;
// then promote the store's standby under writes, and no acknowledged write is lost.
// The store's PostgreSQL pair is this scenario's infrastructure (as s3rver is the backup scenarios'),
// not the product under test: the test kit that starts and promotes it is used as is.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { startTestPostgresPair, type TestPostgresPair } from '@pgs/pg-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_NET } from '../harness/fleet.js';
import { waitFor, waitUntil } from '../harness/poll.js';
import { ownerLogin } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';
import type { Fleet } from '../harness/fleet.js';

const BLOCK = 37;
const STORE_PASSWORD = 'ha-store-secret-1';
let pair: TestPostgresPair | undefined;

beforeAll(async () => {
  pair = await startTestPostgresPair({
    host: `127.${TEST_NET}.${BLOCK}.30`,
    standbyHost: `127.${TEST_NET}.${BLOCK}.31`,
    users: [{ name: 'pgs', password: STORE_PASSWORD }],
  });
}, 120_000);
afterAll(async () => {
  await pair?.stop();
});

/** Writes through pgsctl until `stop()` says so (bounded by count): which creates and deletes were acknowledged. */
async function writeLoop(
  f: Fleet,
  prefix: string,
  o: { max: number; during: (i: number) => Promise<void>; stop: () => boolean },
): Promise<{ created: string[]; deleted: string[]; refused: number }> {
  const created: string[] = [];
  const deleted: string[] = [];
  let refused = 0;
  for (let i = 0; i < o.max && !o.stop(); i++) {
    await o.during(i);
    const id = tenantName(`${prefix}${i}`);
    const c = await f.pgsctl(['tenant', 'create', id, '--access', 'disabled']);
    if (c.code === 0) created.push(id);
    else refused++;
    // Every other round deletes the tenant the round before created.
    const previous = created.at(-2);
    if (i % 2 === 1 && previous !== undefined && !deleted.includes(previous)) {
      const d = await f.pgsctl(['tenant', 'delete', previous, '--yes']);
      if (d.code === 0) deleted.push(previous);
      else refused++;
    }
  }
  return { created, deleted, refused };
}

/** Every acknowledged create is there (unless its delete was acknowledged too), every acknowledged delete is under way or done. */
async function expectAcknowledged(f: Fleet, w: { created: string[]; deleted: string[] }): Promise<void> {
  for (const id of w.created) {
    const got = await f.pgsctl(['tenant', 'get', id]);
    if (w.deleted.includes(id)) {
      if (got.code === 0) expect(JSON.parse(got.stdout).tenant.status, `${id} was deleted`).toBe('DELETING');
      else expect(got.code, got.stderr).not.toBe(0);
    } else {
      expect(got.code, `${id} was acknowledged: ${got.stderr}`).toBe(0);
    }
  }
}

describe('coordinator HA on PostgreSQL', () => {
  const fleet = useFleet(
    () => ({
      name: 'coordinator-ha',
      block: BLOCK,
      agents: 2,
      routers: 1,
      // Three coordinators and a store pair on a shared two-core machine: agents take a while.
      readyTimeoutMs: 120_000,
      sharedStore: { url: (pair as TestPostgresPair).url('pgs', STORE_PASSWORD), coordinators: 3 },
    }),
    300_000,
  );

  it('kill -9 the leader under pgsctl writes: a follower leads within 5 s, nothing acknowledged is lost, agents and routers follow it', async () => {
    const f = fleet();
    const known = tenantName('known');
    const password = 'ha-known-secret-1';
    await f.createTenant(known, { password });
    const first = await waitFor('a leader', () => f.leaderIndex(), { timeoutMs: 10_000 });

    // Watched while the writes go on: the first moment another coordinator says it leads.
    let killedAt = 0;
    let elected: Promise<{ index: number; ms: number }> | undefined;
    const w = await writeLoop(f, 'w', {
      max: 14,
      stop: () => false,
      during: async (i) => {
        if (i !== 4) return;
        await f.killCoordinatorAt(first, 'SIGKILL');
        killedAt = performance.now();
        elected = waitFor(
          'a new leader',
          async () => {
            const index = await f.leaderIndex();
            return index !== undefined && index !== first ? { index, ms: performance.now() - killedAt } : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 50 },
        );
      },
    });
    const next = await (elected as Promise<{ index: number; ms: number }>);
    console.log(
      `coordinator HA: leader ${first} killed, coordinator ${next.index} leads and serves after ${next.ms.toFixed(0)} ms; ${w.created.length} creates and ${w.deleted.length} deletes acknowledged, ${w.refused} refused`,
    );
    expect(next.ms).toBeLessThan(5000);
    expect(w.created.length).toBeGreaterThan(6);
    await expectAcknowledged(f, w);

    // Agents and routers are on the new leader.
    await waitUntil(
      'both hosts READY at the new leader',
      () => f.hostStates(),
      (s) => s['h1'] === 'READY' && s['h2'] === 'READY',
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    await f.waitServing(ownerLogin(known, password));
    // A route change made after the failover reaches the router (it resumed by revision).
    const access = await f.pgsctl(['tenant', 'access', 'disable', known]);
    expect(access.code, access.stderr).toBe(0);
    const revision = (await f.routeTable()).revision;
    await f.waitRoutersAt(revision, 20_000);
    expect((await f.routerHealth(0)).cache.connected).toBe(true);
  }, 240_000);

  it("promote the store's standby under pgsctl writes: no acknowledged write is lost", async () => {
    const f = fleet();
    const p = pair as TestPostgresPair;
    const w = await writeLoop(f, 'p', {
      max: 10,
      stop: () => false,
      during: async (i) => {
        if (i !== 3) return;
        await p.primary.kill();
        await p.promoteStandby();
      },
    });
    console.log(`store promotion: ${w.created.length} creates and ${w.deleted.length} deletes acknowledged, ${w.refused} refused`);
    expect(w.created.length).toBeGreaterThan(4);
    await waitFor('a leader on the promoted store', () => f.leaderIndex(), { timeoutMs: 20_000 });
    await expectAcknowledged(f, w);
  }, 240_000);
});
