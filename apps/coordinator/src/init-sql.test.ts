/**
 * Init scripts through a real coordinator: stored with the tenant at creation, sent to the agent of
 * the primary once it runs, the outcome in the tenant and its events, a retry after a failure, HELD
 * scripts released later, and runs that survive an agent reconnect and a coordinator restart.
 */
import { Code, RpcError } from '@pgs/rpc';
import { InitSqlState, TenantStatus } from '@pgs/proto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeAgent } from './testing/fake-agent.js';
import { eventually, startHarness, type Harness } from './testing/harness.js';

let h: Harness;
const agents: FakeAgent[] = [];
let hostSeq = 0;

async function agent(hostId = `i${++hostSeq}`): Promise<FakeAgent> {
  const a = new FakeAgent({ hostId, address: `127.0.0.${60 + hostSeq}`, coordinator: h.coordinator.grpcAddress, autoRealize: true });
  agents.push(a);
  await a.connect();
  await eventually(async () => a.welcomed && (await h.coordinator.ctx.store.read.hosts.get(hostId))?.state === 'READY', 3000, `${hostId} registered`);
  return a;
}

const scripts = [
  { name: '001-schema.sql', sql: 'create table items (id int)', database: '' },
  { name: '002-data.sql', sql: 'insert into items values (1)', database: '' },
];

const initSql = async (id: string) => (await h.operator.getTenant({ id })).tenant?.initSql;
const actions = async (id: string) => (await h.operator.listEvents({ tenantId: id, limit: 100 })).events.map((e) => e.action);

beforeAll(async () => {
  h = await startHarness();
});
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
});
afterAll(async () => {
  await h.stop();
});

describe('tenant init scripts', () => {
  it('runs them once the primary runs, and says so in the tenant and its events', async () => {
    const a = await agent();
    const created = await h.operator.createTenant({ id: 'init-ok', initSql: scripts });
    expect(created.tenant?.initSql).toMatchObject({ state: InitSqlState.PENDING, scripts: ['001-schema.sql', '002-data.sql'], applied: 0 });
    await eventually(async () => (await initSql('init-ok'))?.state === InitSqlState.SUCCEEDED, 5000, 'init scripts SUCCEEDED');
    const sent = a.received('init-ok', 'runInitSql');
    expect(sent).toHaveLength(1);
    expect(sent[0]?.command.action.value).toMatchObject({
      attempt: 1,
      owner: 'init-ok',
      scripts: [{ name: '001-schema.sql', sql: 'create table items (id int)' }, { name: '002-data.sql' }],
    });
    expect(await initSql('init-ok')).toMatchObject({ applied: 2, attempt: 1, error: '' });
    expect(await actions('init-ok')).toEqual(expect.arrayContaining(['tenant.init_sql.started', 'tenant.init_sql.succeeded']));
    // Once succeeded, never again.
    const again = await h.operator.runInitSql({ tenantId: 'init-ok' }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(RpcError);
    expect((again as RpcError).code).toBe(Code.FAILED_PRECONDITION);
    expect((again as RpcError).message).toMatch(/never run twice/);
  });

  it('a failed script leaves the tenant ACTIVE with the failure visible; a retry runs again from it', async () => {
    const a = await agent();
    a.initSqlAnswer = () => ({ applied: 1, failedScript: '002-data.sql', error: 'relation "items" does not exist (SQLSTATE 42P01)' });
    await h.operator.createTenant({ id: 'init-fail', initSql: scripts });
    await eventually(async () => (await initSql('init-fail'))?.state === InitSqlState.FAILED, 5000, 'init scripts FAILED');
    const t = (await h.operator.getTenant({ id: 'init-fail' })).tenant;
    expect(t?.status).toBe(TenantStatus.ACTIVE);
    expect(t?.initSql).toMatchObject({ applied: 1, failedScript: '002-data.sql', error: 'relation "items" does not exist (SQLSTATE 42P01)' });
    const failed = (await h.operator.listEvents({ tenantId: 'init-fail', limit: 100 })).events.find((e) => e.action === 'tenant.init_sql.failed');
    expect(failed?.message).toMatch(/002-data\.sql failed: relation "items" does not exist .*pgsctl tenant init-sql retry init-fail/);
    a.initSqlAnswer = (run) => ({ applied: run.scripts.length, failedScript: '', error: '' });
    await h.operator.runInitSql({ tenantId: 'init-fail' });
    await eventually(async () => (await initSql('init-fail'))?.state === InitSqlState.SUCCEEDED, 5000, 'retried SUCCEEDED');
    expect(a.received('init-fail', 'runInitSql').map((c) => (c.command.action.value as { attempt: number }).attempt)).toEqual([1, 2]);
  });

  it('keeps HELD scripts until released, then runs them after the users and databases made meanwhile', async () => {
    const a = await agent();
    await h.operator.createTenant({ id: 'init-held', initSql: scripts, holdInitSql: true });
    await eventually(async () => (await h.operator.getTenant({ id: 'init-held' })).tenant?.status === TenantStatus.ACTIVE, 5000, 'ACTIVE');
    await h.operator.createUser({ tenantId: 'init-held', name: 'app', password: 'app-secret-1' });
    expect((await initSql('init-held'))?.state).toBe(InitSqlState.HELD);
    expect(a.received('init-held', 'runInitSql')).toHaveLength(0);
    await h.operator.runInitSql({ tenantId: 'init-held' });
    await eventually(async () => (await initSql('init-held'))?.state === InitSqlState.SUCCEEDED, 5000, 'released SUCCEEDED');
    // Sent only once the primary had realized the revision with the user.
    const revisionWithUser = (await h.coordinator.ctx.store.read.tenants.get('init-held'))?.instanceRevision ?? 0;
    const sentAt = a.received('init-held', 'runInitSql')[0]?.at ?? 0;
    const specs = a.desired.flatMap((d) => d.instances).filter((i) => i.tenantId === 'init-held');
    expect(specs.some((i) => Number(i.specRevision) === revisionWithUser && i.roles.some((r) => r.name === 'app'))).toBe(true);
    expect(sentAt).toBeGreaterThan(0);
    const refused = await h.operator.runInitSql({ tenantId: 'init-ok-none' }).catch((e: unknown) => e);
    expect((refused as RpcError).code).toBe(Code.NOT_FOUND);
  });

  it('refuses bad scripts with the field named', async () => {
    const err = await h.operator.createTenant({ id: 'init-bad', initSql: [{ name: 'x', sql: '   ', database: '' }] }).catch((e: unknown) => e);
    expect((err as RpcError).code).toBe(Code.INVALID_ARGUMENT);
    expect((err as RpcError).message).toMatch(/init_sql\[0\]\.sql/);
  });

  it('sends a run again to an agent that reconnected, and after a coordinator restart, with the same attempt', async () => {
    const a = await agent('i-restart');
    a.initSqlAnswer = () => 'hang';
    await h.operator.createTenant({ id: 'init-restart', initSql: scripts });
    await eventually(() => a.received('init-restart', 'runInitSql').length === 1, 5000, 'sent once');
    // The agent restarts: a new stream; the unanswered run goes again.
    await a.disconnect();
    await a.connect();
    await eventually(() => a.received('init-restart', 'runInitSql').length === 2, 5000, 'sent again after the reconnect');
    // The coordinator restarts with the run still RUNNING.
    await a.close();
    agents.splice(agents.indexOf(a), 1);
    const dataDir = h.dataDir;
    await h.stop();
    h = await startHarness([], dataDir);
    expect((await initSql('init-restart'))?.state).toBe(InitSqlState.RUNNING);
    const b = new FakeAgent({ hostId: 'i-restart', address: a.options.address, coordinator: h.coordinator.grpcAddress, autoRealize: true });
    agents.push(b);
    await b.connect();
    await eventually(async () => (await initSql('init-restart'))?.state === InitSqlState.SUCCEEDED, 8000, 'SUCCEEDED after the restart');
    expect(b.received('init-restart', 'runInitSql').map((c) => (c.command.action.value as { attempt: number }).attempt)).toEqual([1]);
  });
});
