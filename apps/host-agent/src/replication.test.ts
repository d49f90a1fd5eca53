// Replication end to end at the agent level: two in-process agents (each its own "host" address
// and fake coordinator on real gRPC) run a primary and a synchronous replica of one tenant with real
// PostgreSQL; then Fence + Promote swap them and the former primary is rewound into a replica of
// the new one; a primary that loses its lease stops by itself.
import crypto from 'node:crypto';
import fs from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { InstanceRole, InstanceState, Realization, type InstanceSpecSchema } from '@pgs/proto';
import { FakeCoordinator, ownerSpec } from './testing/fake-coordinator.js';
import { scramVerifier } from './testing/scram-verifier.js';
import { startTestAgent, type TestAgent } from './testing/test-agent.js';
import { tempDataRoot, uniqueTenantId, waitFor } from './testing/test-env.js';

const REPL_USER = 'pgs_replication';
const REPL_PASSWORD = `repl-${crypto.randomBytes(6).toString('hex')}`;
const OCTET = 100 + crypto.randomInt(0, 100);
const ADDRESS = { h1: `127.0.${OCTET}.11`, h2: `127.0.${OCTET}.12` };

async function query<T extends pg.QueryResultRow>(
  address: string,
  port: number,
  login: { user: string; password: string },
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ host: address, port, user: login.user, password: login.password, database: login.user, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe('replication between two agents (real PostgreSQL)', () => {
  const roots = { h1: tempDataRoot(), h2: tempDataRoot() };
  const tenant = uniqueTenantId('r');
  const owner = { user: tenant, password: 'owner-repl-secret' };
  const verifier = scramVerifier(REPL_PASSWORD);
  const fakes: Partial<Record<'h1' | 'h2', FakeCoordinator>> = {};
  const agents: Partial<Record<'h1' | 'h2', TestAgent>> = {};
  const fake = (h: 'h1' | 'h2'): FakeCoordinator => fakes[h] as FakeCoordinator;

  const primarySpec = (revision: bigint, replicaHost: 'h1' | 'h2'): MessageInitShape<typeof InstanceSpecSchema> =>
    ownerSpec(tenant, owner.password, {
      specRevision: revision,
      role: InstanceRole.PRIMARY,
      replicationUser: REPL_USER,
      replicationSecret: verifier,
      replicationSlots: [`pgs_${replicaHost}`],
      synchronousStandbyNames: `ANY 1 ("${replicaHost}")`,
      fenceOnLeaseExpiry: true,
    });
  const replicaSpec = (revision: bigint, self: 'h1' | 'h2', primary: { address: string; port: number }): MessageInitShape<typeof InstanceSpecSchema> =>
    ownerSpec(tenant, owner.password, {
      specRevision: revision,
      role: InstanceRole.REPLICA,
      replicationUser: REPL_USER,
      replicationSecret: REPL_PASSWORD,
      primaryAddress: primary.address,
      primaryPort: primary.port,
      replicationSlot: `pgs_${self}`,
      standbyName: self,
    });
  const runningAs = (h: 'h1' | 'h2', role: InstanceRole, revision: number) => () => {
    const s = fake(h).running(tenant, revision);
    return s?.health?.role === role ? s : undefined;
  };

  beforeAll(async () => {
    for (const h of ['h1', 'h2'] as const) {
      fakes[h] = await FakeCoordinator.start(200, 60_000);
      agents[h] = await startTestAgent({ coordinator: fake(h).address, dataRoot: roots[h], hostId: h, address: ADDRESS[h] });
      await waitFor(`agent ${h} connected`, () => fake(h).connected);
    }
  });

  afterAll(async () => {
    for (const h of ['h1', 'h2'] as const) {
      await agents[h]?.stop({ removeInstances: true });
      await fakes[h]?.stop();
      fs.rmSync(roots[h], { recursive: true, force: true });
    }
  }, 120_000);

  it('clones a synchronous replica from the primary, switches them over with Fence + Promote, and the cleanly fenced former primary follows as a replica without a rewind', async () => {
    // The replica's spec arrives first: it waits (retrying) until the primary exists and has its slot.
    await fake('h2').desired({ full: true, instances: [replicaSpec(1n, 'h2', { address: ADDRESS.h1, port: 0 })] });
    // Waiting for the primary is an expected wait: PENDING with the reason, never FAILED (a tenant would read ERROR).
    const waiting = await waitFor('replica waiting for its primary', () => {
      const s = fake('h2').latest(tenant);
      return s?.reason.startsWith('waiting for the primary') ? s : undefined;
    });
    expect(waiting.realization).toBe(Realization.PENDING);
    await fake('h1').desired({ full: true, instances: [primarySpec(1n, 'h2')] });
    const primary = await waitFor('primary running', runningAs('h1', InstanceRole.PRIMARY, 1), 60_000);
    expect(
      fake('h2')
        .statuses.filter((s) => s.tenantId === tenant)
        .map((s) => s.realization),
    ).not.toContain(Realization.FAILED);
    await fake('h2').desired({ instances: [replicaSpec(2n, 'h2', { address: ADDRESS.h1, port: primary.port })] });
    const replica = await waitFor('replica streaming', runningAs('h2', InstanceRole.REPLICA, 2), 60_000, 100);
    expect(replica.address).toBe(ADDRESS.h2);
    // The password is in a 0600 passfile owned by postgres, and nowhere in the instance record.
    const dir = `${roots.h2}/instances/${tenant}`;
    expect(fs.statSync(`${dir}/replication.pass`).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(`${dir}/instance.json`, 'utf8')).not.toContain(REPL_PASSWORD);

    // Synchronous: a commit returns once the replica has it, so it is readable there right after.
    const sync = await query<{ s: string }>(ADDRESS.h1, primary.port, owner, "select current_setting('synchronous_standby_names') as s");
    expect(sync).toEqual([{ s: 'ANY 1 ("h2")' }]);
    await query(ADDRESS.h1, primary.port, owner, 'create table acked (id int primary key)');
    for (let i = 0; i < 50; i++) await query(ADDRESS.h1, primary.port, owner, 'insert into acked values ($1)', [i]);
    await waitFor(
      'replica has every row',
      async () => (await query<{ n: number }>(ADDRESS.h2, replica.port, owner, 'select count(*)::int as n from acked'))[0]?.n === 50,
      10_000,
      50,
    );
    const reported = await waitFor('replica reports an LSN and a timeline', () => {
      const h = fake('h2').latest(tenant)?.health;
      return h && h.lsn !== '' && h.timeline === 1 ? h : undefined;
    });
    expect(reported.role).toBe(InstanceRole.REPLICA);

    // A move checkpoints the primary just before its switch (the replica is no primary: refused).
    await fake('h1').command({ commandId: 'checkpoint-1', tenantId: tenant, action: { case: 'checkpoint', value: {} } });
    const checkpointed = await waitFor('checkpoint answered', () => fake('h1').commandResults.find((r) => r.commandId === 'checkpoint-1'), 30_000);
    expect(checkpointed).toMatchObject({ ok: true, message: expect.stringMatching(/^checkpoint \d+ ms$/) });
    await fake('h2').command({ commandId: 'checkpoint-2', tenantId: tenant, action: { case: 'checkpoint', value: {} } });
    const refused = await waitFor('replica checkpoint answered', () => fake('h2').commandResults.find((r) => r.commandId === 'checkpoint-2'));
    expect(refused).toMatchObject({ ok: false, errorCode: 'NOT_PRIMARY' });

    // Fence the primary: stopped, with its last checkpoint's LSN in the answer.
    await fake('h1').command({ commandId: 'fence-1', tenantId: tenant, action: { case: 'fence', value: {} } });
    const fenced = await waitFor('fence answered', () => fake('h1').commandResults.find((r) => r.commandId === 'fence-1'));
    expect(fenced).toMatchObject({ ok: true });
    expect(fenced.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(fake('h1').latest(tenant)?.state).toBe(InstanceState.STOPPED);

    // Promote the replica (the coordinator sends its PRIMARY spec, then Promote).
    await fake('h2').desired({ instances: [primarySpec(3n, 'h1')] });
    await fake('h2').command({ commandId: 'promote-1', tenantId: tenant, action: { case: 'promote', value: {} } });
    const promoted = await waitFor('promote answered', () => fake('h2').commandResults.find((r) => r.commandId === 'promote-1'), 30_000);
    expect(promoted).toMatchObject({ ok: true, timeline: 2 });
    const newPrimary = await waitFor('new primary running', runningAs('h2', InstanceRole.PRIMARY, 3), 30_000);

    // The former primary: a replica spec pointing at the new primary. Shut down cleanly by the fence
    // before the new timeline forked, it follows as it is: neither rewound nor copied again (a copy
    // would replace its data directory).
    // (Until it streams, commits on the new primary wait for it: it is the one synchronous standby.)
    const formerData = `${roots.h1}/instances/${tenant}/data`;
    const formerInode = fs.statSync(formerData).ino;
    await fake('h1').desired({ instances: [replicaSpec(3n, 'h1', { address: ADDRESS.h2, port: newPrimary.port })] });
    const rejoined = await waitFor('former primary back as a replica', runningAs('h1', InstanceRole.REPLICA, 3), 60_000, 100);
    expect(fs.statSync(formerData).ino).toBe(formerInode);
    // pg_rewind leaves a backup_label that the start renames to backup_label.old.
    expect(fs.existsSync(`${formerData}/backup_label.old`)).toBe(false);
    await query(ADDRESS.h2, newPrimary.port, owner, 'insert into acked values (1000)');
    await query(ADDRESS.h2, newPrimary.port, owner, 'insert into acked values (1001)');
    await waitFor(
      "former primary has the new primary's rows",
      async () => (await query<{ n: number }>(ADDRESS.h1, rejoined.port, owner, 'select count(*)::int as n from acked'))[0]?.n === 52,
      15_000,
      100,
    );
    const tl = await waitFor(
      'former primary on timeline 2',
      () => {
        const h = fake('h1').latest(tenant)?.health;
        return h && h.timeline === 2 ? h : undefined;
      },
      10_000,
    );
    expect(tl.role).toBe(InstanceRole.REPLICA);
    // It refuses writes: never a second primary.
    await expect(query(ADDRESS.h1, rejoined.port, owner, 'insert into acked values (2000)')).rejects.toThrow(/read-only/);
  }, 240_000);

  it('a primary whose lease runs out stops by itself, and starts again once the coordinator renews and confirms it', async () => {
    const root = tempDataRoot();
    const coordinator = await FakeCoordinator.start(200, 1500);
    const agent = await startTestAgent({ coordinator: coordinator.address, dataRoot: root, hostId: 'h-lease', lease: true });
    const t = uniqueTenantId('l');
    try {
      await waitFor('agent connected', () => coordinator.connected);
      await coordinator.desired({ full: true, instances: [ownerSpec(t, 'lease-secret-1', { fenceOnLeaseExpiry: true }), ownerSpec(`${t}x`, 'lone-secret-1')] });
      const before = await waitFor('primary running', () => coordinator.running(t));
      await waitFor('lone instance running', () => coordinator.running(`${t}x`));
      // Renewals stop (the coordinator no longer hears this agent): the lease runs out and the primary is stopped.
      coordinator.renewLeases = false;
      const cutAt = Date.now();
      await waitFor(
        'primary fenced by its lease',
        () => {
          const s = coordinator.latest(t);
          return s?.state === InstanceState.STOPPED && s.reason.includes('lease') ? s : undefined;
        },
        10_000,
      );
      expect(Date.now() - cutAt).toBeLessThan(1500 + 2000);
      expect(agent.manager.status(t)?.pid).toBe(0);
      // An instance without the flag keeps running.
      expect(coordinator.running(`${t}x`)?.pid).toBeGreaterThan(0);
      // Renewed, and the coordinator's next desired set confirms the spec: it runs again.
      coordinator.renewLeases = true;
      await coordinator.desired({ instances: [] });
      const after = await waitFor('primary running again', () => coordinator.running(t), 20_000);
      expect(after.pid).not.toBe(before.pid);
    } finally {
      await agent.stop({ removeInstances: true });
      await coordinator.stop();
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 120_000);
});
