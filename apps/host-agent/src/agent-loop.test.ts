import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InstanceState, Realization, RunState } from '@pgs/proto';
import { FakeCoordinator, ownerSpec } from './testing/fake-coordinator.js';
import { scramVerifier } from './testing/scram-verifier.js';
import { startTestAgent, type TestAgent } from './testing/test-agent.js';
import { tempDataRoot, testProcessRuntime, uniqueTenantId, waitFor } from './testing/test-env.js';

async function query<T extends pg.QueryResultRow>(port: number, user: string, password: string, database: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ host: '127.0.0.1', port, user, password, database });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** A fake coordinator and an agent connected to it, for the tests of one describe (set in beforeAll). */
function connectedAgent(
  hostId: string,
  heartbeatMs?: number,
  ports?: { first: number; last: number },
): { coordinator: FakeCoordinator; agent: TestAgent; dataRoot: string } {
  const dataRoot = tempDataRoot();
  const env = { dataRoot } as { coordinator: FakeCoordinator; agent: TestAgent; dataRoot: string };
  beforeAll(async () => {
    env.coordinator = await FakeCoordinator.start(heartbeatMs);
    const runtime = ports ? testProcessRuntime({ dataRoot, portRange: ports }) : undefined;
    env.agent = await startTestAgent({ coordinator: env.coordinator.address, dataRoot, hostId, ...(runtime ? { runtime } : {}) });
    await waitFor('the agent to connect', () => env.coordinator.connected);
    // The agent's first start makes its template (initdb): minutes on a loaded machine.
  }, 180_000);
  afterAll(async () => {
    await env.agent?.stop({ removeInstances: true });
    await env.coordinator?.stop();
    fs.rmSync(dataRoot, { recursive: true, force: true });
  });
  return env;
}

describe('agent loop against a fake coordinator (real gRPC, real PostgreSQL)', () => {
  const env = connectedAgent('h-loop');

  it('says hello with its identity, capacity and labels, then heartbeats', async () => {
    const hello = env.coordinator.hellos[0];
    expect(hello).toMatchObject({ hostId: 'h-loop', address: '127.0.0.1', runtime: 'process', labels: { zone: 'a', region: 'eu' }, appliedGeneration: 0n });
    expect(hello?.capacity).toMatchObject({ cpuMillis: 4000, memoryMib: 8192, diskMib: 102_400 });
    await waitFor('two heartbeats', () => env.coordinator.heartbeats >= 2);
    // The process runtime's ready spares ride on each heartbeat (the test runtime keeps one).
    await waitFor('a heartbeat with the ready spare', () => env.coordinator.readySpares === 1);
  });

  it('realizes a desired instance, stops and starts it, ignores stale generations, leaves absent tenants alone, deletes only when told', async () => {
    const a = uniqueTenantId('a');
    const b = uniqueTenantId('b');
    await env.coordinator.desired({ full: true, instances: [ownerSpec(a, 'owner-a-secret')] });
    const realized = await waitFor('a realized', () => env.coordinator.running(a));
    expect(realized.port).toBeGreaterThan(0);
    expect(realized.address).toBe('127.0.0.1');
    expect(realized.pid).toBeGreaterThan(0);
    await query(realized.port, a, 'owner-a-secret', a, 'create table t (v int); insert into t values (42)');

    // A stale generation asking to stop is ignored; a newer one (with b) is applied.
    await env.coordinator.desired({
      instances: [ownerSpec(a, 'owner-a-secret', { specRevision: 2n, runState: RunState.STOPPED })],
      generation: env.coordinator.generation,
    });
    await env.coordinator.desired({ instances: [ownerSpec(b, 'owner-b-secret')] });
    await waitFor('b realized', () => env.coordinator.running(b));
    expect(env.coordinator.running(a)?.pid).toBe(realized.pid);

    // Stop, then start: data kept, port kept.
    await env.coordinator.desired({ instances: [ownerSpec(a, 'owner-a-secret', { specRevision: 2n, runState: RunState.STOPPED })] });
    await waitFor('a stopped', () => {
      const s = env.coordinator.latest(a);
      return s?.state === InstanceState.STOPPED && s.realization === Realization.REALIZED && s.specRevision === 2n;
    });
    await env.coordinator.desired({ instances: [ownerSpec(a, 'owner-a-secret', { specRevision: 3n })] });
    const restarted = await waitFor('a running again', () => env.coordinator.running(a, 3));
    expect(restarted.port).toBe(realized.port);
    expect(await query<{ v: number }>(restarted.port, a, 'owner-a-secret', a, 'select v from t')).toEqual([{ v: 42 }]);

    // A full set without b leaves b alone.
    await env.coordinator.desired({ full: true, instances: [ownerSpec(a, 'owner-a-secret', { specRevision: 3n })] });
    const bBefore = env.coordinator.running(b);
    await env.agent.manager.healthRound();
    expect(env.agent.manager.status(b)).toMatchObject({ state: 'RUNNING', pid: bBefore?.pid });

    // Explicit removal deletes b and its data, and is reported.
    await env.coordinator.desired({ removed: [b] });
    await waitFor('b deleted', () => env.coordinator.latest(b)?.state === InstanceState.DELETED);
    expect(fs.existsSync(path.join(env.dataRoot, 'instances', b))).toBe(false);
    expect(env.agent.manager.status(a)?.state).toBe('RUNNING');
  }, 90_000);

  it('a primary started again after a stop (a wake) serves at once, and still gets what changed while it was stopped', async () => {
    const w = uniqueTenantId('wake');
    // One spec (one verifier) for the first life, as the coordinator sends it every time.
    const first = ownerSpec(w, 'wake-secret-1');
    await env.coordinator.desired({ instances: [first] });
    await waitFor('w realized', () => env.coordinator.running(w));
    const stop = async (revision: bigint): Promise<void> => {
      await env.coordinator.desired({ instances: [{ ...first, specRevision: revision, runState: RunState.STOPPED }] });
      await waitFor(`w stopped at ${revision}`, () => {
        const s = env.coordinator.latest(w);
        return s?.state === InstanceState.STOPPED && s.specRevision === revision;
      });
    };
    // Woken with the same objects: the sync is skipped, the owner logs in as before.
    await stop(2n);
    await env.coordinator.desired({ instances: [{ ...first, specRevision: 3n }] });
    const same = await waitFor('w running at 3', () => env.coordinator.running(w, 3));
    expect(await query<{ v: number }>(same.port, w, 'wake-secret-1', w, 'select 1 as v')).toEqual([{ v: 1 }]);
    // Reported as soon as its postmaster accepted connections (no measure yet: no WAL position);
    // its first measure follows the report.
    const reported = env.coordinator.statuses.find((x) => x.tenantId === w && x.specRevision === 3n && x.state === InstanceState.RUNNING);
    expect(reported?.health).toMatchObject({ up: true, acceptingConnections: true, lsn: '' });
    await waitFor('w measured after its report', () => (env.agent.manager.status(w)?.health?.lsn ?? '') !== '');
    expect(env.agent.manager.status(w)?.health).toMatchObject({ up: true, acceptingConnections: true, role: 'PRIMARY' });
    // The owner's password changed while it slept: the woken primary syncs it before it serves.
    await stop(4n);
    await env.coordinator.desired({ instances: [ownerSpec(w, 'wake-secret-2', { specRevision: 5n })] });
    const changed = await waitFor('w running at 5', () => env.coordinator.running(w, 5));
    expect(await query<{ v: number }>(changed.port, w, 'wake-secret-2', w, 'select 2 as v')).toEqual([{ v: 2 }]);
    await expect(query(changed.port, w, 'wake-secret-1', w, 'select 1')).rejects.toThrow(/password authentication failed/);
  }, 90_000);

  it('runs commands: users and databases from verifiers, clear errors for bad input', async () => {
    const t = uniqueTenantId('c');
    await env.coordinator.desired({ instances: [ownerSpec(t, 'owner-c-secret')] });
    const s = await waitFor('c realized', () => env.coordinator.running(t));
    await env.coordinator.command({
      commandId: 'cmd-1',
      tenantId: t,
      action: { case: 'createRole', value: { role: { name: 'app_user', scramVerifier: scramVerifier('app-user-secret'), login: true } } },
    });
    await env.coordinator.command({
      commandId: 'cmd-2',
      tenantId: t,
      action: { case: 'createDatabase', value: { database: { name: 'app_db', owner: 'app_user' } } },
    });
    await env.coordinator.command({
      commandId: 'cmd-3',
      tenantId: t,
      action: { case: 'setRolePassword', value: { name: 'app_user', scramVerifier: 'plain-text-password' } },
    });
    await env.coordinator.command({ commandId: 'cmd-4', tenantId: 'nosuch', action: { case: 'dropDatabase', value: { name: 'x' } } });
    await waitFor('four command results', () => env.coordinator.commandResults.length >= 4);
    const byId = Object.fromEntries(env.coordinator.commandResults.map((r) => [r.commandId, r]));
    expect(byId['cmd-1']).toMatchObject({ ok: true });
    expect(byId['cmd-2']).toMatchObject({ ok: true });
    expect(byId['cmd-3']).toMatchObject({ ok: false, errorCode: 'INVALID_VERIFIER' });
    expect(byId['cmd-4']).toMatchObject({ ok: false, errorCode: 'INSTANCE_NOT_FOUND' });
    expect(await query<{ d: string }>(s.port, 'app_user', 'app-user-secret', 'app_db', 'select current_database() as d')).toEqual([{ d: 'app_db' }]);
  });

  it('reconnects after the stream breaks and says hello with the instances it runs, touching none', async () => {
    const t = uniqueTenantId('r');
    await env.coordinator.desired({ instances: [ownerSpec(t, 'owner-r-secret')] });
    const before = await waitFor('r realized', () => env.coordinator.running(t));
    const streams = env.coordinator.streams;
    const applied = env.coordinator.generation;
    env.coordinator.dropStream();
    await waitFor('a new stream', () => env.coordinator.streams > streams && env.coordinator.connected);
    const hello = env.coordinator.hellos.at(-1);
    expect(hello?.appliedGeneration).toBe(BigInt(applied));
    const mine = hello?.instances.find((i) => i.tenantId === t);
    expect(mine).toMatchObject({ state: InstanceState.RUNNING, pid: before.pid, port: before.port });
    expect(env.agent.manager.status(t)?.pid).toBe(before.pid);
  });

  it('refuses desired sets and commands stamped with a leader epoch older than the newest it saw', async () => {
    // A new leader (epoch 5) takes the stream over.
    env.coordinator.leaderEpoch = 5;
    const streams = env.coordinator.streams;
    env.coordinator.dropStream();
    await waitFor('a stream with the new leader', () => env.coordinator.streams > streams && env.coordinator.connected);
    const stale = uniqueTenantId('old');
    const fresh = uniqueTenantId('new');
    await env.coordinator.desired({ instances: [ownerSpec(stale, 'owner-old-secret')], leaderEpoch: 4 });
    await env.coordinator.command({ commandId: 'stale-1', tenantId: fresh, leaderEpoch: 4n, action: { case: 'dropDatabase', value: { name: 'x' } } });
    await env.coordinator.desired({ instances: [ownerSpec(fresh, 'owner-new-secret')] });
    await env.coordinator.command({ commandId: 'fresh-1', tenantId: 'nosuch', leaderEpoch: 5n, action: { case: 'dropDatabase', value: { name: 'x' } } });
    await waitFor("the new leader's instance", () => env.coordinator.running(fresh));
    await waitFor(
      'both command results',
      () => env.coordinator.commandResults.some((r) => r.commandId === 'fresh-1') && env.coordinator.commandResults.some((r) => r.commandId === 'stale-1'),
    );
    // Messages are handled in order: the stale set came before the fresh one, and was dropped.
    expect(env.agent.manager.status(stale)).toBeUndefined();
    const byId = Object.fromEntries(env.coordinator.commandResults.map((r) => [r.commandId, r]));
    expect(byId['stale-1']).toMatchObject({ ok: false, errorCode: 'STALE_LEADER_EPOCH' });
    expect(byId['fresh-1']).toMatchObject({ ok: false, errorCode: 'INSTANCE_NOT_FOUND' }); // it ran
  });
});

describe('ready spares are told at once, not at the next heartbeat', () => {
  // A heartbeat interval of a minute: every heartbeat seen here was sent because the pool changed.
  const env = connectedAgent('h-spares', 60_000);

  it('a spare taken by a create and the copy that replaces it each send a heartbeat', async () => {
    // The first fill's own heartbeat has arrived too (else it could land after `from`).
    await waitFor('the pool full, and told', () => env.agent.runtime.readySpares() === 1 && env.coordinator.readySpares === 1);
    const from = env.coordinator.spareReports.length;
    const t = uniqueTenantId('s');
    const asked = Date.now();
    await env.coordinator.desired({ full: true, instances: [ownerSpec(t, 'owner-s-secret')] });
    await waitFor('created', () => env.coordinator.running(t));
    await waitFor('the refill told', () => env.coordinator.spareReports.slice(from).some((r) => r.readySpares === 1));
    const told = env.coordinator.spareReports.slice(from);
    expect(told.map((r) => r.readySpares)).toEqual([0, 1]);
    expect(told[1]!.at - asked).toBeLessThan(30_000);
  });
});

describe('a creation that fails keeps its reason until it is retried', () => {
  // One port: the second instance cannot get one.
  const first = 21000 + crypto.randomInt(0, 400) * 10 + 5;
  const env = connectedAgent('h-ports', undefined, { first, last: first });

  it('reports no free port, not an instance gone missing, between its retries', async () => {
    const a = uniqueTenantId('p');
    const b = uniqueTenantId('p');
    await env.coordinator.desired({ full: true, instances: [ownerSpec(a, 'owner-p-secret')] });
    await waitFor('a realized', () => env.coordinator.running(a));
    await env.coordinator.desired({ instances: [ownerSpec(b, 'owner-p-secret')] });
    await waitFor('b failed for want of a port', () => /no free port/.test(env.coordinator.latest(b)?.reason ?? ''));
    // Health rounds between the retries (the loop's own run every 200 ms) leave the reason alone.
    for (let i = 0; i < 5; i++) {
      await env.agent.manager.healthRound();
      await new Promise((r) => setTimeout(r, 200));
    }
    // A full report goes every 500 ms in these tests.
    await new Promise((r) => setTimeout(r, 1000));
    const told = env.coordinator.statuses.filter((x) => x.tenantId === b && x.realization === Realization.FAILED).map((x) => x.reason);
    expect(told.length).toBeGreaterThan(0);
    expect(told.filter((r) => !/no free port/.test(r))).toEqual([]);
    expect(env.agent.manager.status(b)?.reason).not.toMatch(/missing/);
  }, 90_000);
});
