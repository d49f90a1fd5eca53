import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InstanceState, Realization, RunState } from '@pgs/proto';
import { FakeCoordinator, ownerSpec } from './testing/fake-coordinator.js';
import { scramVerifier } from './testing/scram-verifier.js';
import { startTestAgent, type TestAgent } from './testing/test-agent.js';
import { tempDataRoot, uniqueTenantId, waitFor } from './testing/test-env.js';

async function query<T extends pg.QueryResultRow>(port: number, user: string, password: string, database: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ host: '127.0.0.1', port, user, password, database });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('agent loop against a fake coordinator (real gRPC, real PostgreSQL)', () => {
  const dataRoot = tempDataRoot();
  let coordinator: FakeCoordinator;
  let agent: TestAgent;

  beforeAll(async () => {
    coordinator = await FakeCoordinator.start();
    agent = await startTestAgent({ coordinator: coordinator.address, dataRoot, hostId: 'h-loop' });
    await waitFor('the agent to connect', () => coordinator.connected);
  });

  afterAll(async () => {
    await agent?.stop({ removeInstances: true });
    await coordinator?.stop();
    fs.rmSync(dataRoot, { recursive: true, force: true });
  });

  it('says hello with its identity, capacity and labels, then heartbeats', async () => {
    const hello = coordinator.hellos[0];
    expect(hello).toMatchObject({ hostId: 'h-loop', address: '127.0.0.1', runtime: 'process', labels: { zone: 'a', region: 'eu' }, appliedGeneration: 0n });
    expect(hello?.capacity).toMatchObject({ cpuMillis: 4000, memoryMib: 8192, diskMib: 102_400 });
    await waitFor('two heartbeats', () => coordinator.heartbeats >= 2);
    // The process runtime's ready spares ride on each heartbeat (the test runtime keeps one).
    await waitFor('a heartbeat with the ready spare', () => coordinator.readySpares === 1);
  });

  it('realizes a desired instance, stops and starts it, ignores stale generations, leaves absent tenants alone, deletes only when told', async () => {
    const a = uniqueTenantId('a');
    const b = uniqueTenantId('b');
    await coordinator.desired({ full: true, instances: [ownerSpec(a, 'owner-a-secret')] });
    const realized = await waitFor('a realized', () => coordinator.running(a));
    expect(realized.port).toBeGreaterThan(0);
    expect(realized.address).toBe('127.0.0.1');
    expect(realized.pid).toBeGreaterThan(0);
    await query(realized.port, a, 'owner-a-secret', a, 'create table t (v int); insert into t values (42)');

    // A stale generation asking to stop is ignored; a newer one (with b) is applied.
    await coordinator.desired({ instances: [ownerSpec(a, 'owner-a-secret', { specRevision: 2n, runState: RunState.STOPPED })], generation: coordinator.generation });
    await coordinator.desired({ instances: [ownerSpec(b, 'owner-b-secret')] });
    await waitFor('b realized', () => coordinator.running(b));
    expect(coordinator.running(a)?.pid).toBe(realized.pid);

    // Stop, then start: data kept, port kept.
    await coordinator.desired({ instances: [ownerSpec(a, 'owner-a-secret', { specRevision: 2n, runState: RunState.STOPPED })] });
    await waitFor('a stopped', () => {
      const s = coordinator.latest(a);
      return s?.state === InstanceState.STOPPED && s.realization === Realization.REALIZED && s.specRevision === 2n;
    });
    await coordinator.desired({ instances: [ownerSpec(a, 'owner-a-secret', { specRevision: 3n })] });
    const restarted = await waitFor('a running again', () => coordinator.running(a, 3));
    expect(restarted.port).toBe(realized.port);
    expect(await query<{ v: number }>(restarted.port, a, 'owner-a-secret', a, 'select v from t')).toEqual([{ v: 42 }]);

    // A full set without b leaves b alone.
    await coordinator.desired({ full: true, instances: [ownerSpec(a, 'owner-a-secret', { specRevision: 3n })] });
    const bBefore = coordinator.running(b);
    await agent.manager.healthRound();
    expect(agent.manager.status(b)).toMatchObject({ state: 'RUNNING', pid: bBefore?.pid });

    // Explicit removal deletes b and its data, and is reported.
    await coordinator.desired({ removed: [b] });
    await waitFor('b deleted', () => coordinator.latest(b)?.state === InstanceState.DELETED);
    expect(fs.existsSync(path.join(dataRoot, 'instances', b))).toBe(false);
    expect(agent.manager.status(a)?.state).toBe('RUNNING');
  }, 90_000);

  it('runs commands: users and databases from verifiers, clear errors for bad input', async () => {
    const t = uniqueTenantId('c');
    await coordinator.desired({ instances: [ownerSpec(t, 'owner-c-secret')] });
    const s = await waitFor('c realized', () => coordinator.running(t));
    await coordinator.command({ commandId: 'cmd-1', tenantId: t, action: { case: 'createRole', value: { role: { name: 'app_user', scramVerifier: scramVerifier('app-user-secret'), login: true } } } });
    await coordinator.command({ commandId: 'cmd-2', tenantId: t, action: { case: 'createDatabase', value: { database: { name: 'app_db', owner: 'app_user' } } } });
    await coordinator.command({ commandId: 'cmd-3', tenantId: t, action: { case: 'setRolePassword', value: { name: 'app_user', scramVerifier: 'plain-text-password' } } });
    await coordinator.command({ commandId: 'cmd-4', tenantId: 'nosuch', action: { case: 'dropDatabase', value: { name: 'x' } } });
    await waitFor('four command results', () => coordinator.commandResults.length >= 4);
    const byId = Object.fromEntries(coordinator.commandResults.map((r) => [r.commandId, r]));
    expect(byId['cmd-1']).toMatchObject({ ok: true });
    expect(byId['cmd-2']).toMatchObject({ ok: true });
    expect(byId['cmd-3']).toMatchObject({ ok: false, errorCode: 'INVALID_VERIFIER' });
    expect(byId['cmd-4']).toMatchObject({ ok: false, errorCode: 'INSTANCE_NOT_FOUND' });
    expect(await query<{ d: string }>(s.port, 'app_user', 'app-user-secret', 'app_db', 'select current_database() as d')).toEqual([{ d: 'app_db' }]);
  });

  it('reconnects after the stream breaks and says hello with the instances it runs, touching none', async () => {
    const t = uniqueTenantId('r');
    await coordinator.desired({ instances: [ownerSpec(t, 'owner-r-secret')] });
    const before = await waitFor('r realized', () => coordinator.running(t));
    const streams = coordinator.streams;
    const applied = coordinator.generation;
    coordinator.dropStream();
    await waitFor('a new stream', () => coordinator.streams > streams && coordinator.connected);
    const hello = coordinator.hellos.at(-1);
    expect(hello?.appliedGeneration).toBe(BigInt(applied));
    const mine = hello?.instances.find((i) => i.tenantId === t);
    expect(mine).toMatchObject({ state: InstanceState.RUNNING, pid: before.pid, port: before.port });
    expect(agent.manager.status(t)?.pid).toBe(before.pid);
  });
});

describe('ready spares are told at once, not at the next heartbeat', () => {
  const dataRoot = tempDataRoot();
  let coordinator: FakeCoordinator;
  let agent: TestAgent;

  beforeAll(async () => {
    // A heartbeat interval of a minute: every heartbeat seen here was sent because the pool changed.
    coordinator = await FakeCoordinator.start(60_000);
    agent = await startTestAgent({ coordinator: coordinator.address, dataRoot, hostId: 'h-spares' });
    await waitFor('the agent to connect', () => coordinator.connected);
  });

  afterAll(async () => {
    await agent?.stop({ removeInstances: true });
    await coordinator?.stop();
    fs.rmSync(dataRoot, { recursive: true, force: true });
  });

  it('a spare taken by a create and the copy that replaces it each send a heartbeat', async () => {
    // The first fill's own heartbeat has arrived too (else it could land after `from`).
    await waitFor('the pool full, and told', () => agent.runtime.readySpares() === 1 && coordinator.readySpares === 1);
    const from = coordinator.spareReports.length;
    const t = uniqueTenantId('s');
    const asked = Date.now();
    await coordinator.desired({ full: true, instances: [ownerSpec(t, 'owner-s-secret')] });
    await waitFor('created', () => coordinator.running(t));
    await waitFor('the refill told', () => coordinator.spareReports.slice(from).some((r) => r.readySpares === 1));
    const told = coordinator.spareReports.slice(from);
    expect(told.map((r) => r.readySpares)).toEqual([0, 1]);
    expect(told[1]!.at - asked).toBeLessThan(30_000);
  });
});
