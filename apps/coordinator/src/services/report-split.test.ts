import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { InstanceStatusSchema } from '@pgs/proto';
import type { Store, StoreTx } from '../store/contract.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { eventually, startHarness, type Harness } from '../testing/harness.js';
import { aHealthView, aPlacement, aTenant } from '../testing/records.js';
import { fromInstanceStatus, type HelloView, type InstanceReportView } from '../transport/mappers/agent-mapper.js';
import { onReports, registerHost } from '../transport/agent-service.js';
import type { CoordinatorContext } from './context.js';
import { reportChangesStored } from './report-split.js';

const healthy = aHealthView();
const tenant = aTenant('t1', { instanceRevision: 2, status: 'ACTIVE' });
const placement = aPlacement('t1', 'h1', {
  realization: 'REALIZED',
  instanceState: 'RUNNING',
  address: '127.0.0.11',
  port: 20000,
  realizedRevision: 2,
  realizedOnce: true,
});
const report = (over: Partial<InstanceReportView> = {}): InstanceReportView => ({
  tenantId: 't1',
  realization: 'REALIZED',
  state: 'RUNNING',
  reason: '',
  address: '127.0.0.11',
  port: 20000,
  specRevision: 2,
  health: healthy,
  recovery: undefined,
  ...over,
});

describe('reportChangesStored', () => {
  it('a Hello listing the instance exactly as stored changes nothing, with or without health', () => {
    expect(reportChangesStored(tenant, placement, report(), undefined)).toBe(false);
    expect(reportChangesStored(tenant, placement, report({ health: undefined }), undefined)).toBe(false);
    expect(reportChangesStored(tenant, placement, report({ health: { ...healthy, connections: 40, lsn: '0/9000' } }), healthy)).toBe(false);
  });
  it('any fact a report sets, a failure, a deletion, a recovery result or a deleting tenant is applied', () => {
    for (const r of [
      report({ port: 20001 }),
      report({ address: '127.0.0.12' }),
      report({ specRevision: 3 }),
      report({ state: 'STOPPED' }),
      report({ reason: 'restarted' }),
      report({ realization: 'FAILED' }),
      report({ realization: 'PENDING' }),
      report({ state: 'DELETED' }),
      report({ recovery: { restoreId: 'r1', ok: true, errorCode: '', message: '', lsn: '0/1', commitTime: 0, timeline: 2 } }),
    ])
      expect(reportChangesStored(tenant, placement, r, undefined)).toBe(true);
    expect(reportChangesStored({ ...tenant, deleting: true }, placement, report(), undefined)).toBe(true);
    // A placement whose retry was pending is cleared by a REALIZED report.
    expect(reportChangesStored(tenant, { ...placement, failures: 2 }, report(), undefined)).toBe(true);
  });
  it('a flip of the health verdict the tenant was derived with is applied; a repeat of it is not', () => {
    const down = { ...healthy, acceptingConnections: false };
    expect(reportChangesStored(tenant, placement, report({ health: down }), undefined)).toBe(true);
    expect(reportChangesStored(tenant, placement, report({ health: down }), down)).toBe(false);
    expect(reportChangesStored(tenant, placement, report(), down)).toBe(true);
  });
  it('with no health seen since start, only an ACTIVE tenant with no reason was derived healthy: any other status is derived again', () => {
    expect(reportChangesStored(tenant, placement, report(), undefined)).toBe(false);
    for (const stored of [
      { status: 'IN_PROGRESS' as const, statusReason: 'waiting for the primary on host h1 to accept connections' },
      { status: 'ERROR' as const, statusReason: 'primary on host h1 is not healthy: it runs but does not accept connections' },
      { status: 'ACTIVE' as const, statusReason: 'replica on host h2 is not healthy' },
    ]) {
      expect(reportChangesStored({ ...tenant, ...stored }, placement, report(), undefined)).toBe(true);
      // With health seen since start, the cache tells the verdict.
      expect(reportChangesStored({ ...tenant, ...stored }, placement, report(), healthy)).toBe(false);
    }
  });
  it("a primary's archiving is always applied (its last-archived time comes from reports)", () => {
    const archive = {
      enabled: true,
      archivedCount: 1,
      lastArchivedWal: '000000010000000000000001',
      lastArchivedAt: 5,
      archivedThrough: 4,
      failedCount: 0,
      lastFailedWal: '',
      lastFailedAt: 0,
      pendingSegments: 0,
      pendingBytes: 0,
      lagSeconds: 0,
    };
    const archiving = { ...healthy, archive };
    expect(reportChangesStored(tenant, placement, report({ health: archiving }), undefined)).toBe(true);
    expect(reportChangesStored(tenant, { ...placement, role: 'REPLICA' }, report({ health: { ...archiving, role: 'REPLICA' } }), undefined)).toBe(false);
  });
});

describe('registerHost on a reconnect', () => {
  let h: Harness;
  let agent: FakeAgent;
  beforeAll(async () => {
    h = await startHarness();
    agent = new FakeAgent({ hostId: 'hello-h1', address: '127.0.0.21', coordinator: h.coordinator.grpcAddress, autoRealize: true });
    await agent.connect();
  });
  afterAll(async () => {
    await agent?.close();
    await h?.stop();
  });

  /** The context with a store whose transactions count the tenant, route, host and event writes made in them. */
  function counting(ctx: CoordinatorContext): { ctx: CoordinatorContext; writes: { tenants: number; routes: number; hosts: number; events: number } } {
    const writes = { tenants: 0, routes: 0, hosts: 0, events: 0 };
    const store: Store = Object.create(ctx.store) as Store;
    store.transaction = <T>(fn: (tx: StoreTx) => Promise<T>, options?: Parameters<Store['transaction']>[1]): Promise<T> =>
      ctx.store.transaction((tx) => {
        // Tenants and routes written one by one or in a batch: each counts.
        const tenants = {
          ...tx.tenants,
          update: (t: Parameters<StoreTx['tenants']['update']>[0]) => (writes.tenants++, tx.tenants.update(t)),
          updateMany: (list: Parameters<StoreTx['tenants']['updateMany']>[0]) => ((writes.tenants += list.length), tx.tenants.updateMany(list)),
        };
        const routes = {
          ...tx.routes,
          put: (r: Parameters<StoreTx['routes']['put']>[0]) => (writes.routes++, tx.routes.put(r)),
          putMany: (list: Parameters<StoreTx['routes']['putMany']>[0]) => ((writes.routes += list.length), tx.routes.putMany(list)),
        };
        const hosts = { ...tx.hosts, put: (x: Parameters<StoreTx['hosts']['put']>[0]) => (writes.hosts++, tx.hosts.put(x)) };
        const events = {
          ...tx.events,
          append: (e: Parameters<StoreTx['events']['append']>[0]) => (writes.events++, tx.events.append(e)),
          appendMany: (list: Parameters<StoreTx['events']['appendMany']>[0]) => ((writes.events += list.length), tx.events.appendMany(list)),
        };
        return fn(Object.assign(Object.create(tx) as StoreTx, { tenants, routes, hosts, events }));
      }, options);
    return { ctx: { ...ctx, store }, writes };
  }

  it('a READY host saying Hello with its instances as stored writes nothing (no row, no event, no tenant re-derived); a changed instance is applied', async () => {
    const ctx = h.coordinator.ctx;
    await h.operator.createTenant({ id: 'hello-same' });
    const placed = await eventually(
      async () => {
        const p = (await ctx.store.read.placements.list({ tenantId: 'hello-same' }))[0];
        return p?.realization === 'REALIZED' && (await ctx.store.read.tenants.get('hello-same'))?.status === 'ACTIVE' ? p : undefined;
      },
      10_000,
      'hello-same ACTIVE',
    );
    const spec = agent.instances.get('hello-same')!;
    const hello = (port: number): HelloView => ({
      hostId: 'hello-h1',
      address: '127.0.0.21',
      capacity: { cpuMillis: 8000, memoryMib: 16384, diskMib: 204800 },
      labels: {},
      runtime: 'process',
      agentVersion: 'fake',
      instances: [fromInstanceStatus(create(InstanceStatusSchema, agent.statusOf('hello-same', spec.specRevision, port)))],
      appliedGeneration: 0,
      postgresMajors: [],
      pgbackrestVersion: '',
      instanceSlots: 100,
    });
    const routeBefore = await ctx.store.read.routes.get('hello-same');

    const same = counting(ctx);
    await registerHost(same.ctx, hello(placed.port));
    expect(same.writes).toEqual({ tenants: 0, routes: 0, hosts: 0, events: 0 });
    expect((await ctx.store.read.routes.get('hello-same'))?.revision).toBe(routeBefore?.revision);
    // A Hello that says something new about the host (its agent's version) writes the row and the reconnect.
    const upgraded = counting(ctx);
    await registerHost(upgraded.ctx, { ...hello(placed.port), agentVersion: 'fake-2' });
    expect(upgraded.writes).toMatchObject({ hosts: 1, events: 1, tenants: 0 });
    expect((await ctx.store.read.hosts.get('hello-h1'))?.agentVersion).toBe('fake-2');
    expect((await ctx.store.read.events.list({ hostId: 'hello-h1', limit: 5 })).map((e) => e.action)).toContain('host.connected');
    // While a failover found the host's primary gone with its agent, its return is written with its
    // time (a coordinator restarted later tells the return from the gone point by it).
    const goneAt = ctx.clock() - 1;
    await ctx.store.transaction((tx) =>
      tx.operations.put({
        tenantId: 'hello-same',
        kind: 'failover',
        cause: 'host_down',
        phase: 'fencing',
        failedAt: goneAt,
        startedAt: goneAt,
        oldPrimary: 'hello-h1',
        toHostId: '',
        fencedAt: 0,
        fenceSentAt: 0,
        fenceAckedAt: 0,
        goneAt,
        finalLsn: '',
        candidate: '',
        chosenAt: 0,
        promoteSentAt: 0,
        deadline: 0,
        updatedAt: goneAt,
      }),
    );
    const returned = counting(ctx);
    await registerHost(returned.ctx, { ...hello(placed.port), agentVersion: 'fake-2' });
    await ctx.store.transaction((tx) => tx.operations.delete('hello-same'));
    expect(returned.writes.hosts).toBe(1);
    expect((await ctx.store.read.hosts.get('hello-h1'))?.lastHeartbeatAt).toBeGreaterThan(goneAt);
    // The next full report repeating the Hello is answered from memory.
    expect(ctx.unchangedReports.unchanged('hello-h1', hello(placed.port).instances[0]!, ctx.clock())).toBe(true);

    const moved = counting(ctx);
    await registerHost(moved.ctx, hello(placed.port + 7));
    expect(moved.writes.routes).toBe(1);
    expect((await ctx.store.read.placements.list({ tenantId: 'hello-same' }))[0]?.port).toBe(placed.port + 7);
    expect((await ctx.store.read.routes.get('hello-same'))?.port).toBe(placed.port + 7);
  });

  it("an instance's first report since start that repeats the store re-derives nothing and is learnt; one that changes a fact is applied", async () => {
    const ctx = h.coordinator.ctx;
    await h.operator.createTenant({ id: 'first-report' });
    const placed = await eventually(
      async () => {
        const p = (await ctx.store.read.placements.list({ tenantId: 'first-report' }))[0];
        return p?.realization === 'REALIZED' && (await ctx.store.read.tenants.get('first-report'))?.status === 'ACTIVE' ? p : undefined;
      },
      10_000,
      'first-report ACTIVE',
    );
    const spec = agent.instances.get('first-report')!;
    const reported = (port: number): InstanceReportView =>
      fromInstanceStatus(create(InstanceStatusSchema, agent.statusOf('first-report', spec.specRevision, port)));
    const routeBefore = await ctx.store.read.routes.get('first-report');

    const same = counting(ctx);
    // As after a start (a first start, or the agents restarted): no health seen, nothing remembered.
    ctx.unchangedReports.forgetHost('hello-h1');
    ctx.health.delete('first-report', 'hello-h1');
    await onReports(same.ctx, 'hello-h1', [reported(placed.port)], new Set());
    expect(same.writes).toEqual({ tenants: 0, routes: 0, hosts: 0, events: 0 });
    expect((await ctx.store.read.routes.get('first-report'))?.revision).toBe(routeBefore?.revision);
    expect(ctx.health.get('first-report', 'hello-h1')?.acceptingConnections).toBe(true);
    expect(ctx.unchangedReports.unchanged('hello-h1', reported(placed.port), ctx.clock())).toBe(true);

    const moved = counting(ctx);
    ctx.unchangedReports.forgetHost('hello-h1');
    await onReports(moved.ctx, 'hello-h1', [reported(placed.port + 9)], new Set());
    expect(moved.writes.routes).toBe(1);
    expect((await ctx.store.read.routes.get('first-report'))?.port).toBe(placed.port + 9);
  });
});
