/**
 * Integration tests: a real coordinator (in process) with real gRPC clients, fake agents on real
 * agent streams, and a real route watcher.
 */
import { HostState, PoolMode, RouteState, TenantStatus, ObjectStatus, type WatchRoutesResponse } from '@pgs/proto';
import { Code, RpcError } from '@pgs/rpc';
import { verifyScramPassword } from '@pgs/security';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeAgent } from './testing/fake-agent.js';
import { eventually, startHarness, type Harness } from './testing/harness.js';

let h: Harness;
const agents: FakeAgent[] = [];
let hostSeq = 0;

async function agent(options: Partial<ConstructorParameters<typeof FakeAgent>[0]> = {}): Promise<FakeAgent> {
  hostSeq++;
  const a = new FakeAgent({ hostId: `h${hostSeq}`, address: `127.0.0.${10 + hostSeq}`, coordinator: h.coordinator.grpcAddress, autoRealize: true, ...options });
  agents.push(a);
  await a.connect();
  return a;
}

async function tenantStatus(id: string): Promise<TenantStatus> {
  return (await h.operator.getTenant({ id })).tenant?.status ?? TenantStatus.UNSPECIFIED;
}

async function rpcError(p: Promise<unknown>): Promise<RpcError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RpcError);
  return err as RpcError;
}

beforeAll(async () => {
  h = await startHarness();
});
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
});
afterAll(async () => {
  await h?.stop();
});

describe('provisioning', () => {
  it('create -> placed -> realized -> ACTIVE, with owner user and database named after the tenant', async () => {
    const a = await agent();
    const created = await h.operator.createTenant({ id: 'acme' });
    expect(created.tenant?.status).toBe(TenantStatus.NEW);
    expect(created.generatedPassword).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(created.tenant?.spec?.externalAccess).toBe(false);
    await eventually(async () => (await tenantStatus('acme')) === TenantStatus.ACTIVE, 5000, 'acme ACTIVE');
    const got = await h.operator.getTenant({ id: 'acme' });
    expect(got.tenant?.placements.map((p) => p.hostId)).toEqual([a.options.hostId]);
    expect(got.users.map((u) => [u.name, u.owner, u.status])).toEqual([['acme', true, ObjectStatus.ACTIVE]]);
    expect(got.databases.map((d) => [d.name, d.owner, d.status])).toEqual([['acme', 'acme', ObjectStatus.ACTIVE]]);
    expect(got.route?.state).toBe(RouteState.ROUTABLE);
    expect(got.route?.address).toBe(a.options.address);
    expect(got.route?.port).toBe(a.instances.get('acme')?.port);
    expect(got.route?.externalAccess).toBe(false);
    // The agent got the owner role as a SCRAM verifier, never a password.
    const spec = a.instances.get('acme');
    expect(spec?.roles[0]?.scramVerifier).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(JSON.stringify(a.desired, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(created.generatedPassword);
    expect(got.recentEvents.map((e) => e.action)).toContain('tenant.create');
  });

  it('a new tenant goes to a host with a ready spare (from its heartbeats) before the best fit without one', async () => {
    const pool = { pool: 'spares' };
    // Bin-packing alone picks `dry` (less memory free), whose spares ran out.
    const dry = await agent({ labels: pool, capacity: { cpuMillis: 8000, memoryMib: 8192, diskMib: 204800 }, readySpares: 0 });
    const wet = await agent({ labels: pool, readySpares: 2 });
    await eventually(
      () => h.coordinator.ctx.spares.get(wet.options.hostId) === 2 && h.coordinator.ctx.spares.get(dry.options.hostId) === 0,
      3000,
      'spares heard',
    );
    await h.operator.createTenant({ id: 'warm', spec: { placement: pool } });
    const placed = await eventually(async () => (await h.operator.getTenant({ id: 'warm' })).tenant?.placements[0]?.hostId, 3000, 'warm placed');
    expect(placed).toBe(wet.options.hostId);
    // Operators see each host's pool (ListHosts / GetHost, pgsctl host list -o wide).
    const listed = (await h.operator.listHosts({})).hosts.filter((x) => x.labels.pool === 'spares');
    expect(Object.fromEntries(listed.map((x) => [x.id, x.readySpares]))).toEqual({ [dry.options.hostId]: 0, [wet.options.hostId]: 2 });
    await wet.close();
    // A closed stream's count is forgotten.
    await eventually(() => h.coordinator.ctx.spares.get(wet.options.hostId) === undefined, 3000, 'spares forgotten');
  });

  it('a user and a database reach the instance and turn ACTIVE; external access can be enabled', async () => {
    const a = await agent();
    await h.operator.createTenant({ id: 'shop', ownerPassword: 'owner-password-1', spec: { placement: {} } });
    await eventually(async () => (await tenantStatus('shop')) === TenantStatus.ACTIVE);
    await h.operator.createUser({ tenantId: 'shop', name: 'app_user', password: 'secure_password_123' });
    await h.operator.createDatabase({ tenantId: 'shop', name: 'app_db', owner: 'app_user' });
    await eventually(async () => (await h.operator.getDatabase({ tenantId: 'shop', name: 'app_db' })).database?.status === ObjectStatus.ACTIVE);
    expect((await h.operator.getUser({ tenantId: 'shop', name: 'app_user' })).user?.status).toBe(ObjectStatus.ACTIVE);
    expect(
      a.instances
        .get('shop')
        ?.databases.map((d) => d.name)
        .sort(),
    ).toEqual(['app_db', 'shop']);
    const before = (await h.operator.getTenant({ id: 'shop' })).route!;
    await h.operator.setTenantAccess({ id: 'shop', externalAccess: true });
    const after = (await h.operator.getTenant({ id: 'shop' })).route!;
    expect(after.externalAccess).toBe(true);
    expect(after.revision).toBeGreaterThan(before.revision);
    const owned = await rpcError(h.operator.deleteUser({ tenantId: 'shop', name: 'app_user' }));
    expect(owned.code).toBe(Code.FAILED_PRECONDITION);
    await h.operator.deleteDatabase({ tenantId: 'shop', name: 'app_db' });
    await eventually(async () => (await h.operator.listDatabases({ tenantId: 'shop' })).databases.length === 1, 5000, 'database dropped');
  });

  it('a deleted tenant is removed from its host, then from the store and the route table', async () => {
    const a = await agent();
    await h.operator.createTenant({ id: 'gone' });
    await eventually(async () => (await tenantStatus('gone')) === TenantStatus.ACTIVE);
    await h.operator.deleteTenant({ id: 'gone' });
    await eventually(async () => (await rpcError(h.operator.getTenant({ id: 'gone' }))).code === Code.NOT_FOUND, 5000, 'tenant gone');
    expect(a.desired.some((d) => d.removedTenantIds.includes('gone'))).toBe(true);
    expect((await h.operator.listRoutes({})).routes.find((r) => r.tenantId === 'gone')).toBeUndefined();
  });
});

describe('host liveness', () => {
  it('TTL expiry -> DOWN -> tenant UNAVAILABLE, never re-created empty elsewhere -> host back -> ACTIVE', async () => {
    // Only `home` carries the label the tenant asks for; `spare` could take it if anything tried.
    const home = await agent({ labels: { only: 'durable-host' } });
    const spare = await agent();
    await h.operator.createTenant({ id: 'durable', spec: { placement: { only: 'durable-host' } } });
    await eventually(async () => (await tenantStatus('durable')) === TenantStatus.ACTIVE, 5000, 'durable ACTIVE');
    expect((await h.operator.getTenant({ id: 'durable' })).tenant?.placements[0]?.hostId).toBe(home.options.hostId);

    home.stopHeartbeats();
    await eventually(async () => (await h.operator.getHost({ id: home.options.hostId })).host?.state === HostState.UNREACHABLE, 10_000, 'UNREACHABLE');
    await eventually(async () => (await h.operator.getHost({ id: home.options.hostId })).host?.state === HostState.DOWN, 10_000, 'DOWN');
    await eventually(async () => (await tenantStatus('durable')) === TenantStatus.UNAVAILABLE, 10_000, 'UNAVAILABLE');
    const down = await h.operator.getTenant({ id: 'durable' });
    expect(down.route?.state).toBe(RouteState.HOST_DOWN);
    expect(down.route?.reason).toContain(home.options.hostId);
    // Well past the DOWN point: still one placement, on the dead host; nothing sent to the spare.
    await new Promise((r) => setTimeout(r, 300));
    expect((await h.operator.getTenant({ id: 'durable' })).tenant?.placements.map((p) => p.hostId)).toEqual([home.options.hostId]);
    expect(spare.desired.some((d) => d.instances.some((i) => i.tenantId === 'durable'))).toBe(false);

    home.startHeartbeats();
    await eventually(async () => (await tenantStatus('durable')) === TenantStatus.ACTIVE, 3000, 'ACTIVE again');
    expect((await h.operator.getTenant({ id: 'durable' })).route?.state).toBe(RouteState.ROUTABLE);
  });

  it('a tenant that never ran is placed again when its host goes down', async () => {
    const lazy = await agent({ autoRealize: false, labels: { pool: 'x' } });
    await h.operator.createTenant({ id: 'fresh', spec: { placement: { pool: 'x' } } });
    await eventually(async () => (await h.operator.getTenant({ id: 'fresh' })).tenant?.placements[0]?.hostId === lazy.options.hostId, 3000, 'placed on lazy');
    const healthy = await agent({ labels: { pool: 'x' } });
    await lazy.disconnect();
    await eventually(async () => (await tenantStatus('fresh')) === TenantStatus.ACTIVE, 5000, 'ACTIVE on the other host');
    expect((await h.operator.getTenant({ id: 'fresh' })).tenant?.placements.map((p) => p.hostId)).toEqual([healthy.options.hostId]);
    const events = (await h.operator.listEvents({ tenantId: 'fresh' })).events.map((e) => e.action);
    expect(events).toContain('scheduler.replace');
  });

  it('recreate needs accept_data_loss, needs UNAVAILABLE, and is audited', async () => {
    const home = await agent({ labels: { pool: 'rc' } });
    await h.operator.createTenant({ id: 'lost', spec: { placement: { pool: 'rc' } } });
    await eventually(async () => (await tenantStatus('lost')) === TenantStatus.ACTIVE);
    expect((await rpcError(h.operator.recreateTenant({ id: 'lost', acceptDataLoss: true }))).code).toBe(Code.FAILED_PRECONDITION);
    await home.disconnect();
    await eventually(async () => (await tenantStatus('lost')) === TenantStatus.UNAVAILABLE, 3000);
    const refused = await rpcError(h.operator.recreateTenant({ id: 'lost' }));
    expect(refused.code).toBe(Code.INVALID_ARGUMENT);
    expect(refused.details.field).toBe('accept_data_loss');
    const other = await agent({ labels: { pool: 'rc' } });
    await h.operator.recreateTenant({ id: 'lost', acceptDataLoss: true });
    await eventually(async () => (await tenantStatus('lost')) === TenantStatus.ACTIVE, 5000);
    expect((await h.operator.getTenant({ id: 'lost' })).tenant?.placements.map((p) => p.hostId)).toEqual([other.options.hostId]);
    const audit = (await h.operator.listEvents({ tenantId: 'lost' })).events.find((e) => e.action === 'tenant.recreate');
    expect(audit?.details.accept_data_loss).toBe('true');
  });

  it('cordon keeps new tenants off a host; drain plans a live move of what held data, and shows what it cannot move with why', async () => {
    const a = await agent({ labels: { pool: 'cd', disk: 'nvme' } });
    await h.operator.createTenant({ id: 'stay', spec: { placement: { pool: 'cd' } } });
    await h.operator.createTenant({ id: 'pinned', spec: { placement: { pool: 'cd', disk: 'nvme' } } });
    await eventually(async () => (await tenantStatus('stay')) === TenantStatus.ACTIVE);
    await eventually(async () => (await tenantStatus('pinned')) === TenantStatus.ACTIVE);
    await h.operator.cordonHost({ id: a.options.hostId });
    await h.operator.createTenant({ id: 'waits', spec: { placement: { pool: 'cd' } } });
    await eventually(async () => (await h.operator.getTenant({ id: 'waits' })).tenant?.statusReason.startsWith('waiting for a host'), 3000);
    const b = await agent({ labels: { pool: 'cd' } });
    await eventually(async () => (await tenantStatus('waits')) === TenantStatus.ACTIVE, 3000, 'waits placed on the new host');
    expect((await h.operator.getTenant({ id: 'waits' })).tenant?.placements[0]?.hostId).toBe(b.options.hostId);
    const drained = await h.operator.drainHost({ id: a.options.hostId });
    expect(drained.host?.draining).toBe(true);
    expect(drained.blocked.map((x) => x.tenantId)).toEqual(['pinned']);
    expect(drained.moves.map((m) => ({ tenantId: m.tenantId, toHostId: m.toHostId }))).toEqual([{ tenantId: 'stay', toHostId: b.options.hostId }]);
    expect(drained.host?.drainTotal).toBe(2);
    // The progress, with each tenant the drain cannot move and why, in gRPC and REST.
    const got = await h.operator.getHost({ id: a.options.hostId });
    expect(got.host?.drainBlocked).toBe(1);
    expect(got.host?.drainBlockedTenants.map((x) => x.tenantId)).toEqual(['pinned']);
    const reason = got.host?.drainBlockedTenants[0]?.reason ?? '';
    expect(reason).not.toBe('');
    const rest = await fetch(`http://${h.coordinator.httpAddress}/v1/hosts/${a.options.hostId}`, { headers: { authorization: `Bearer ${h.adminToken}` } });
    expect(rest.status).toBe(200);
    const body = (await rest.json()) as { draining: boolean; drain: { total: number; blocked: number; blocked_tenants: unknown[] }; tenants: { id: string }[] };
    expect(body.draining).toBe(true);
    expect(body.drain).toMatchObject({ total: 2, blocked: 1, blocked_tenants: [{ tenant: 'pinned', reason }] });
    expect(body.tenants.map((t) => t.id).sort()).toContain('pinned');
    const missing = await fetch(`http://${h.coordinator.httpAddress}/v1/hosts/no-such-host`, { headers: { authorization: `Bearer ${h.adminToken}` } });
    expect(missing.status).toBe(404);
  });
});

describe('a backlog that cannot be placed', () => {
  // A coordinator of its own: hosts of the other tests going down would end the parking meanwhile.
  let own: Harness;
  let shared: Harness;
  beforeAll(async () => {
    own = await startHarness();
    shared = h;
    h = own;
  });
  afterAll(async () => {
    h = shared;
    await own?.stop();
  });

  async function walks(outcome: string): Promise<number> {
    const text = await (await fetch(`http://${h.coordinator.httpAddress}/metrics`)).text();
    const m = new RegExp(`^pgs_coordinator_backlog_walks_total\\{outcome="${outcome}"[^}]*\\} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  }

  it('is parked instead of walked on every tick; new tenants are still placed by id; an uncordon ends the parking', async () => {
    const a = await agent({ labels: { pool: 'park' } });
    await eventually(() => h.operator.cordonHost({ id: a.options.hostId }), 3000, 'the host registered and cordoned');
    await h.operator.createTenant({ id: 'park-1', spec: { placement: { pool: 'park' } } });
    await eventually(async () => (await h.operator.getTenant({ id: 'park-1' })).tenant?.statusReason.startsWith('waiting for a host'), 3000);
    await eventually(async () => (await walks('skipped')) > 0, 3000, 'a tick skipping the parked backlog');
    const walked = async (): Promise<number> => (await walks('parked')) + (await walks('placed'));
    const [walkedBefore, skippedBefore] = [await walked(), await walks('skipped')];
    await new Promise((r) => setTimeout(r, 600)); // ~20 ticks of 30 ms
    expect(await walks('skipped')).toBeGreaterThan(skippedBefore + 5);
    expect(await walked()).toBe(walkedBefore);
    // A tenant created while parked is still considered at once (by id).
    await h.operator.createTenant({ id: 'park-2', spec: { placement: { pool: 'park' } } });
    await eventually(
      async () => (await h.operator.getTenant({ id: 'park-2' })).tenant?.statusReason.startsWith('waiting for a host'),
      1000,
      'park-2 considered',
    );
    // The uncordon event frees room: both are placed well before the parked re-walk (5 s) is due.
    const uncordonedAt = Date.now();
    await h.operator.uncordonHost({ id: a.options.hostId });
    await eventually(
      async () => (await tenantStatus('park-1')) === TenantStatus.ACTIVE && (await tenantStatus('park-2')) === TenantStatus.ACTIVE,
      4000,
      'both placed after the uncordon',
    );
    expect(Date.now() - uncordonedAt).toBeLessThan(4000);
  });
});

describe('operator API contract', () => {
  it('refuses bad input with the field, unknown things, duplicates and stale revisions', async () => {
    const bad = await rpcError(h.operator.createTenant({ id: 'Not_Valid' }));
    expect(bad.code).toBe(Code.INVALID_ARGUMENT);
    expect(bad.details.field).toBe('id');
    const mem = await rpcError(h.operator.createTenant({ id: 'tiny', spec: { resources: { memoryMib: 100 } } }));
    expect(mem.code).toBe(Code.INVALID_ARGUMENT);
    expect(mem.details.field).toBe('spec.resources.memory_mib');
    expect((await rpcError(h.operator.getTenant({ id: 'nobody' }))).code).toBe(Code.NOT_FOUND);
    await h.operator.createTenant({ id: 'rev', spec: { resources: { diskMib: 10240 } } });
    expect((await rpcError(h.operator.createTenant({ id: 'rev' }))).code).toBe(Code.ALREADY_EXISTS);
    const t = (await h.operator.getTenant({ id: 'rev' })).tenant!;
    const updated = await h.operator.updateTenant({ id: 'rev', revision: t.revision, spec: { description: 'first' } });
    expect(updated.tenant?.revision).toBe(t.revision + 1n);
    expect(updated.tenant?.spec?.description).toBe('first');
    expect(updated.tenant?.spec?.resources?.diskMib).toBe(10240);
    const stale = await rpcError(h.operator.updateTenant({ id: 'rev', revision: t.revision, spec: { description: 'second' } }));
    expect(stale.code).toBe(Code.ABORTED);
    const shrink = await rpcError(h.operator.updateTenant({ id: 'rev', revision: t.revision + 1n, spec: { resources: { diskMib: 9216 } } }));
    expect(shrink.code).toBe(Code.INVALID_ARGUMENT);
    expect(shrink.details.field).toBe('spec.resources.disk_mib');
    // An operator token needs a role.
    expect((await rpcError(h.operator.createOperatorToken({ name: 'x' }))).code).toBe(Code.INVALID_ARGUMENT);
  });

  it('honours idempotency keys, including the generated password, and refuses a reused key', async () => {
    const first = await h.operator.createTenant({ id: 'idem', idempotencyKey: 'k-1' });
    const retry = await h.operator.createTenant({ id: 'idem', idempotencyKey: 'k-1' });
    expect(retry.tenant?.id).toBe('idem');
    expect(retry.tenant?.createdAt).toEqual(first.tenant?.createdAt);
    expect(retry.generatedPassword).toBe(first.generatedPassword);
    const other = await rpcError(h.operator.createTenant({ id: 'idem-2', idempotencyKey: 'k-1' }));
    expect(other.code).toBe(Code.FAILED_PRECONDITION);
    const u1 = await h.operator.createUser({ tenantId: 'idem', name: 'u1', password: 'password-123', idempotencyKey: 'u' });
    const u2 = await h.operator.createUser({ tenantId: 'idem', name: 'u1', password: 'password-123', idempotencyKey: 'u' });
    expect(u2.user?.createdAt).toEqual(u1.user?.createdAt);
  });

  it('pages ListTenants by id with a total, filters by labels, and refuses a malformed label filter', async () => {
    for (let i = 0; i < 7; i++) await h.operator.createTenant({ id: `page-${i}`, spec: { labels: { suite: 'paging', parity: i % 2 === 0 ? 'even' : 'odd' } } });
    const ids: string[] = [];
    let token = '';
    do {
      const res = await h.operator.listTenants({ labels: { suite: 'paging' }, page: { pageSize: 3, pageToken: token } });
      expect(res.page?.totalSize).toBe(7);
      expect(res.tenants.length).toBeLessThanOrEqual(3);
      ids.push(...res.tenants.map((t) => t.id));
      token = res.page?.nextPageToken ?? '';
    } while (token !== '');
    expect(ids).toEqual(Array.from({ length: 7 }, (_, i) => `page-${i}`));
    const even = await h.operator.listTenants({ labels: { suite: 'paging', parity: 'even' } });
    expect(even.tenants.map((t) => t.id)).toEqual(['page-0', 'page-2', 'page-4', 'page-6']);
    const bad = await rpcError(h.operator.listTenants({ labels: { 'bad"key': 'x' } }));
    expect(bad.code).toBe(Code.INVALID_ARGUMENT);
    expect(bad.message).toMatch(/label/);
  });
});

describe('route sync', () => {
  it('snapshot for a new router, deltas as they commit, and only the deltas after a reconnect', async () => {
    await agent();
    const first = h.routes.watchRoutes({ sinceRevision: 0n, routerId: 'r1', cancelAddress: '127.0.0.1:6000' });
    const it1 = first[Symbol.asyncIterator]();
    const snap = (await it1.next()).value as WatchRoutesResponse;
    expect(snap.snapshot).toBe(true);
    expect(snap.routers.map((r) => r.routerId)).toContain('r1');
    let revision = snap.revision;
    const started = performance.now();
    await h.operator.createTenant({ id: 'routed' });
    let delta: WatchRoutesResponse | undefined;
    for (;;) {
      delta = (await it1.next()).value as WatchRoutesResponse;
      if (delta.upserts.some((r) => r.tenantId === 'routed')) break;
    }
    const latencyMs = performance.now() - started;
    expect(delta.snapshot).toBe(false);
    expect(delta.revision).toBeGreaterThan(revision);
    expect(latencyMs).toBeLessThan(1000);
    revision = delta.revision;
    first.cancel();
    await h.operator.setTenantAccess({ id: 'routed', externalAccess: true });
    const second = h.routes.watchRoutes({ sinceRevision: revision, routerId: 'r1' });
    const catchUp = (await second[Symbol.asyncIterator]().next()).value as WatchRoutesResponse;
    second.cancel();
    expect(catchUp.snapshot).toBe(false);
    expect(catchUp.upserts.every((r) => r.revision > revision)).toBe(true);
    expect(catchUp.upserts.find((r) => r.tenantId === 'routed')?.externalAccess).toBe(true);
  });

  it("routes carry the pool mode and every user's verifier; a password change is a new route revision", async () => {
    await agent();
    const watch = h.routes.watchRoutes({ sinceRevision: 0n, routerId: 'r1', cancelAddress: '127.0.0.1:6001' });
    const it1 = watch[Symbol.asyncIterator]();
    await it1.next();
    /** The next route of `tenantId` on the feed that satisfies `check`. */
    const nextRoute = async (tenantId: string, check: (r: WatchRoutesResponse['upserts'][number]) => boolean) => {
      for (;;) {
        const batch = (await it1.next()).value as WatchRoutesResponse;
        const r = batch.upserts.find((u) => u.tenantId === tenantId);
        if (r && check(r)) return r;
      }
    };
    try {
      await h.operator.createTenant({ id: 'pooled' });
      const created = await nextRoute('pooled', () => true);
      expect(created.poolMode).toBe(PoolMode.SESSION);
      await h.operator.createUser({ tenantId: 'pooled', name: 'app', password: 'first-password-1' });
      const withUser = await nextRoute('pooled', (r) => r.users.some((u) => u.name === 'app'));
      const first = withUser.users.find((u) => u.name === 'app')!.scramVerifier;
      expect(verifyScramPassword('first-password-1', first)).toBe(true);
      await h.operator.updateUserPassword({ tenantId: 'pooled', name: 'app', password: 'second-password-2' });
      const changed = await nextRoute('pooled', (r) => r.users.find((u) => u.name === 'app')?.scramVerifier !== first);
      expect(changed.revision).toBeGreaterThan(withUser.revision);
      expect(verifyScramPassword('second-password-2', changed.users.find((u) => u.name === 'app')!.scramVerifier)).toBe(true);
      const tenant = (await h.operator.getTenant({ id: 'pooled' })).tenant!;
      const { $typeName: _, ...spec } = tenant.spec!;
      await h.operator.updateTenant({ id: 'pooled', spec: { ...spec, poolMode: PoolMode.NONE }, revision: tenant.revision });
      expect((await nextRoute('pooled', (r) => r.poolMode !== PoolMode.SESSION)).poolMode).toBe(PoolMode.NONE);
    } finally {
      watch.cancel();
    }
  });
});

describe('REST API', () => {
  const url = (p: string) => `http://${h.coordinator.httpAddress}${p}`;
  // Every /v1 call carries the operator token (security/rest-auth.ts); the refusals are tested in security.test.ts.
  const fetch = (input: string, init: RequestInit = {}) =>
    globalThis.fetch(input, { ...init, headers: { authorization: `Bearer ${h.adminToken}`, ...init.headers } });
  it('creates, reads and refuses in the public REST API shape, and serves the OpenAPI document', async () => {
    const created = await fetch(url('/v1/postgres/instances'), {
      method: 'POST',
      body: JSON.stringify({ name: 'restful', cpu: 2, ram: 2048, disk_size: 10, password: 'rest-password-1' }),
    });
    expect(created.status).toBe(201);
    const body = (await created.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      uuid: 'restful',
      cpu: 2,
      ram: 2048,
      disk_size: 10,
      status: 'NEW',
      external_access: false,
      version: '/v1/types/postgres/versions/15',
    });
    expect(body.generated_password).toBeUndefined();
    const got = await fetch(url('/v1/postgres/instances/restful'));
    expect(got.status).toBe(200);
    const users = (await (await fetch(url('/v1/postgres/instances/restful/users'))).json()) as { users: { name: string }[] };
    expect(users.users.map((u) => u.name)).toEqual(['restful']);
    const bad = await fetch(url('/v1/postgres/instances'), { method: 'POST', body: JSON.stringify({ name: 'cpu-bad', cpu: 500 }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { field: string } }).error.field).toMatch(/cpu/);
    expect((await fetch(url('/v1/postgres/instances/nobody'))).status).toBe(404);
    const stale = await fetch(url('/v1/postgres/instances/restful'), { method: 'PUT', body: JSON.stringify({ revision: 99, description: 'x' }) });
    expect(stale.status).toBe(409);
    const versions = (await (await fetch(url('/v1/types/postgres/versions'))).json()) as { versions: { uuid: string }[] };
    expect(versions.versions.map((v) => v.uuid)).toEqual(['15']);
    const doc = (await (await fetch(url('/openapi.json'))).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.0.3');
    expect(Object.keys(doc.paths)).toContain('/v1/postgres/instances/{uuid}/databases');
    expect((await fetch(url('/metrics'))).status).toBe(200);
  });
});
