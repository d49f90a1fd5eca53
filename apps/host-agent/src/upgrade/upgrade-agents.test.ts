// A major upgrade driven as the coordinator drives it, over the agents' real gRPC streams: host h1
// runs the tenant on PostgreSQL 15, host h2 gets the same tenant on PostgreSQL 18 (from the
// versions directory), and every step is an UpgradeSource or UpgradeTarget command. The instances
// are the agent's own (its pg_hba, its wal_level=logical, its roles from the spec), so this shows
// the steps work on what the agent builds, not only on hand-made servers.
import crypto from 'node:crypto';
import fs from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { UpgradeSource_Step, UpgradeTarget_Step, type CommandResult, type UpgradeSourceSchema, type UpgradeTargetSchema } from '@pgs/proto';
import { FakeCoordinator, ownerSpec } from '../testing/fake-coordinator.js';
import { scramVerifier } from '../testing/scram-verifier.js';
import { startTestAgent, type TestAgent } from '../testing/test-agent.js';
import { tempDataRoot, testProcessRuntime, uniqueTenantId, waitFor } from '../testing/test-env.js';

const VERSIONS_DIR = process.env.PGS_PG_VERSIONS_DIR ?? '/var/lib/pgs/postgres';
const have18 = fs.existsSync(`${VERSIONS_DIR}/18/bin/postgres`) && fs.existsSync('/usr/lib/postgresql/15/bin/pg_dump');
const OCTET = 100 + crypto.randomInt(0, 100);
const ADDRESS = { h1: `127.0.${OCTET}.21`, h2: `127.0.${OCTET}.22` };
const UPGRADE_USER = 'pgs_upgrade';
const UPGRADE_PASSWORD = `up-${crypto.randomBytes(8).toString('hex')}`;

describe.skipIf(!have18)('upgrade steps through two agents (PostgreSQL 15 -> 18)', () => {
  const roots = { h1: tempDataRoot(), h2: tempDataRoot() };
  const tenant = uniqueTenantId('u');
  const owner = { user: tenant, password: 'owner-upgrade-secret' };
  const fakes: Partial<Record<'h1' | 'h2', FakeCoordinator>> = {};
  const agents: Partial<Record<'h1' | 'h2', TestAgent>> = {};
  const fake = (h: 'h1' | 'h2'): FakeCoordinator => fakes[h] as FakeCoordinator;
  let seq = 0;

  async function step(
    h: 'h1' | 'h2',
    action:
      | { case: 'upgradeSource'; value: MessageInitShape<typeof UpgradeSourceSchema> }
      | { case: 'upgradeTarget'; value: MessageInitShape<typeof UpgradeTargetSchema> },
  ): Promise<CommandResult> {
    const commandId = `up-${++seq}`;
    await fake(h).command({ commandId, tenantId: tenant, action });
    return waitFor(`answer to ${commandId}`, () => fake(h).result(commandId), 120_000, 50);
  }

  beforeAll(async () => {
    for (const h of ['h1', 'h2'] as const) {
      fakes[h] = await FakeCoordinator.start(200, 60_000);
      const runtime = testProcessRuntime({ dataRoot: roots[h], address: ADDRESS[h], binDirPatterns: ['/usr/lib/postgresql/*/bin', `${VERSIONS_DIR}/*/bin`] });
      agents[h] = await startTestAgent({ coordinator: fake(h).address, dataRoot: roots[h], hostId: h, address: ADDRESS[h], runtime });
      await waitFor(`agent ${h} connected`, () => fake(h).connected);
    }
  }, 120_000);

  afterAll(async () => {
    for (const h of ['h1', 'h2'] as const) {
      await agents[h]?.stop({ removeInstances: true });
      await fakes[h]?.stop();
      fs.rmSync(roots[h], { recursive: true, force: true });
    }
  }, 120_000);

  it('inspects, publishes, copies, catches up and cleans through commands, with nothing lost', async () => {
    await fake('h1').desired({ full: true, instances: [ownerSpec(tenant, owner.password, { version: '15' })] });
    await fake('h2').desired({ full: true, instances: [ownerSpec(tenant, owner.password, { version: '18', upgradeSubscriber: true })] });
    const source = await waitFor('source running', () => fake('h1').running(tenant), 90_000, 100);
    const target = await waitFor('target running', () => fake('h2').running(tenant), 90_000, 100);
    const connect = async (address: string, port: number): Promise<pg.Client> => {
      const c = new pg.Client({ host: address, port, user: owner.user, password: owner.password, database: tenant, connectionTimeoutMillis: 5000 });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    };
    const src = await connect(ADDRESS.h1, source.port);
    await src.query('create table orders (id bigserial primary key, amount int not null)');
    await src.query('insert into orders (amount) select g from generate_series(1, 2000) g');
    await src.end();

    const inspected = await step('h1', { case: 'upgradeSource', value: { step: UpgradeSource_Step.INSPECT } });
    expect(inspected).toMatchObject({ ok: true });
    expect(inspected.upgradeSource).toMatchObject({ major: 15, walLevel: 'logical', largeObjects: [], unloggedTables: [], tablesWithoutIdentity: [] });
    const databases = inspected.upgradeSource?.databases ?? [];
    expect(databases).toContain(tenant);
    expect(
      await step('h1', {
        case: 'upgradeSource',
        value: { step: UpgradeSource_Step.PREPARE, user: UPGRADE_USER, scramVerifier: scramVerifier(UPGRADE_PASSWORD), databases },
      }),
    ).toMatchObject({ ok: true });

    const link = {
      sourceAddress: ADDRESS.h1,
      sourcePort: source.port,
      user: UPGRADE_USER,
      password: UPGRADE_PASSWORD,
      databases,
      dumpMajor: '15',
      timeoutMs: 60_000,
    };
    // A major without pg_dump on this host is refused with the reason.
    const noDump = await step('h2', { case: 'upgradeTarget', value: { ...link, step: UpgradeTarget_Step.SUBSCRIBE, dumpMajor: '17' } });
    expect(noDump).toMatchObject({ ok: false, errorCode: 'UPGRADE_FAILED' });
    expect(noDump.message).toContain('no pg_dump and psql of PostgreSQL 17');

    const acknowledged: number[] = [];
    const writer = (async () => {
      const c = await connect(ADDRESS.h1, source.port);
      try {
        for (let i = 0; i < 100_000; i++)
          acknowledged.push(Number((await c.query<{ id: string }>('insert into orders (amount) values (1) returning id')).rows[0]?.id));
      } catch {
        // Ended by BLOCK_WRITERS: what was acknowledged before is what must arrive.
      } finally {
        await c.end().catch(() => undefined);
      }
    })();
    expect(await step('h2', { case: 'upgradeTarget', value: { ...link, step: UpgradeTarget_Step.SUBSCRIBE } })).toMatchObject({ ok: true });
    await waitFor(
      'initial copy done',
      async () => {
        const r = await step('h2', { case: 'upgradeTarget', value: { ...link, step: UpgradeTarget_Step.SYNC_STATE } });
        return r.upgradeTarget && r.upgradeTarget.tables > 0 && r.upgradeTarget.ready === r.upgradeTarget.tables;
      },
      120_000,
      200,
    );
    await waitFor('live writes', () => acknowledged.length > 100, 60_000, 50);

    const started = Date.now();
    const blocked = await step('h1', { case: 'upgradeSource', value: { step: UpgradeSource_Step.BLOCK_WRITERS, roles: [owner.user] } });
    expect(blocked.upgradeSource?.sessionsEnded).toBeGreaterThanOrEqual(1);
    await writer;
    const caught = await step('h2', { case: 'upgradeTarget', value: { ...link, step: UpgradeTarget_Step.CATCH_UP } });
    expect(caught).toMatchObject({ ok: true });
    console.log(
      `upgrade through agents: ${acknowledged.length} live writes; block to caught up in ${Date.now() - started} ms (source at ${caught.upgradeTarget?.sourceLsn})`,
    );
    // After the route moved: the subscriptions go (their slots on the source with them), then the source's side.
    expect(await step('h2', { case: 'upgradeTarget', value: { ...link, step: UpgradeTarget_Step.ABANDON } })).toMatchObject({ ok: true });
    expect(await step('h1', { case: 'upgradeSource', value: { step: UpgradeSource_Step.CLEAN, user: UPGRADE_USER, databases } })).toMatchObject({ ok: true });

    const t = await connect(ADDRESS.h2, target.port);
    try {
      expect((await t.query<{ v: string }>("select current_setting('server_version_num') as v")).rows[0]?.v).toMatch(/^18/);
      const ids = new Set((await t.query<{ id: string }>('select id from orders')).rows.map((r) => Number(r.id)));
      expect(acknowledged.filter((id) => !ids.has(id))).toEqual([]);
      expect(ids.size).toBe(2000 + acknowledged.length);
      const next = Number((await t.query<{ id: string }>('insert into orders (amount) values (2) returning id')).rows[0]?.id);
      expect(next).toBeGreaterThan(Math.max(2000, ...acknowledged));
    } finally {
      await t.end();
    }
    // A rollback gives the old instance its writers back.
    expect(await step('h1', { case: 'upgradeSource', value: { step: UpgradeSource_Step.UNBLOCK_WRITERS, roles: [owner.user] } })).toMatchObject({ ok: true });
    const back = await connect(ADDRESS.h1, source.port);
    expect((await back.query<{ n: string }>('select count(*) as n from orders')).rows[0]?.n).toBe(String(2000 + acknowledged.length));
    await back.end();
  }, 400_000);
});
