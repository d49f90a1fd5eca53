// Operators' tools on a real fleet: `tenant create --wait` ends within a round trip of ACTIVE, a
// replicated tenant never reads ERROR on its way to ACTIVE, init scripts run once inside the tenant
// (failing ones visible and retried), and the manifest round trip with three tenants, users,
// databases and init scripts.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { queryOnce } from '../harness/pg-clients.js';
import { waitFor } from '../harness/poll.js';
import { REPO_ROOT } from '../harness/repo.js';
import { ownerLogin } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';

interface EventJson {
  time: string;
  action: string;
  outcome: string;
  message: string;
  details: Record<string, string>;
}

interface InitSqlJson {
  state: string;
  scripts: string[];
  applied: number;
  failedScript: string;
  error: string;
}

const BIN = path.join(REPO_ROOT, 'tools', 'pgsctl', 'bin', 'pgsctl.js');

describe('operators: --wait, statuses, init scripts, manifests', () => {
  const fleet = useFleet({ name: 'operators', block: 36, agents: 2, routers: 1 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-operators-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const events = async (id: string): Promise<EventJson[]> => (await fleet().pgsctlJson<EventJson[]>(['events', '--tenant', id, '--limit', '500'])).reverse();
  const initSql = async (id: string): Promise<InitSqlJson | null> =>
    (await fleet().pgsctlJson<{ tenant: { initSql: InitSqlJson | null } }>(['tenant', 'get', id])).tenant.initSql;

  /** Runs the bundled pgsctl as a user would; resolves with when its result reached stdout. */
  function timedCreate(id: string): Promise<{ code: number; outputAt: number; stderr: string }> {
    const f = fleet();
    return new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [BIN, '-c', f.coordinatorGrpc, '-o', 'json', 'tenant', 'create', id, '--password', 'wait-secret-1', '--wait', '--timeout', '60s'],
        {
          env: { ...process.env, PGS_CA: f.security.caFile, PGS_TOKEN_FILE: f.security.adminTokenFile, NO_COLOR: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let outputAt = 0;
      let stderr = '';
      child.stdout.on('data', () => (outputAt = Date.now()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, outputAt, stderr }));
    });
  }

  it('tenant create --wait returns within 50 ms of the ACTIVE event', async () => {
    const lags: number[] = [];
    for (let i = 0; i < 5; i++) {
      const id = tenantName('wait');
      const run = await timedCreate(id);
      expect(run.code, run.stderr).toBe(0);
      const active = (await events(id)).find((e) => e.action === 'tenant.status' && e.details.to === 'ACTIVE');
      expect(active, 'an ACTIVE event').toBeDefined();
      lags.push(run.outputAt - Date.parse(active!.time));
    }
    console.log(`create --wait: result on stdout ${lags.join(', ')} ms after the ACTIVE event`);
    // The best of five (a loaded machine can delay any one run); polling every 500 ms could not do it.
    expect(Math.min(...lags)).toBeLessThan(50);
    for (const lag of lags) expect(lag).toBeLessThan(1000);
  });

  it('a replicated tenant goes to ACTIVE without ever reading ERROR', async () => {
    const f = fleet();
    const id = tenantName('repl');
    await f.createTenant(id, { password: 'repl-secret-1', replicas: 1, syncReplicas: 1 });
    const all = await events(id);
    const statuses = all.filter((e) => e.action === 'tenant.status').map((e) => e.details.to);
    expect(statuses).toContain('ACTIVE');
    expect(statuses, `statuses: ${statuses.join(' -> ')}`).not.toContain('ERROR');
    expect(all.filter((e) => /\bERROR\b/.test(e.message)).map((e) => e.message)).toEqual([]);
    const details = await f.tenant(id);
    expect(details.tenant.placements.map((p) => p.realization)).toEqual(['REALIZED', 'REALIZED']);
  });

  it('init scripts run once as the owner; a failing one leaves the tenant serving, visible, and is retried', async () => {
    const f = fleet();
    const router = f.routers[0]!;
    const id = tenantName('init');
    const password = 'init-secret-1';
    fs.writeFileSync(path.join(dir, 'schema.sql'), "create table items (id int primary key, body text);\ninsert into items values (1, 'one');\n");
    fs.writeFileSync(path.join(dir, 'more.sql'), "insert into items select id + 1, 'two' from seed;\n");
    const created = await f.pgsctl([
      'tenant',
      'create',
      id,
      '--password',
      password,
      '--access',
      'enabled',
      '--init-sql',
      path.join(dir, 'schema.sql'),
      '--init-sql',
      path.join(dir, 'more.sql'),
      '--wait',
      '--timeout',
      '60s',
    ]);
    // Exit 8: ACTIVE, but the second script failed (relation "seed" does not exist).
    expect(created.code, created.stderr).toBe(8);
    expect(created.stderr).toMatch(/init script .*more\.sql failed: relation "seed" does not exist.*SQLSTATE 42P01/);
    expect(created.stderr).toContain(`pgsctl tenant init-sql retry ${id}`);
    const failed = await initSql(id);
    expect(failed).toMatchObject({ state: 'FAILED', applied: 1 });
    const failure = (await events(id)).find((e) => e.action === 'tenant.init_sql.failed');
    expect(failure).toMatchObject({ outcome: 'FAILURE' });
    // Serving, with the first script committed and nothing of the second.
    await f.waitServing(ownerLogin(id, password));
    expect(await queryOnce(router.endpoint, ownerLogin(id, password), 'select id, body from items order by id')).toEqual([{ id: 1, body: 'one' }]);
    const owner = await queryOnce<{ o: string }>(router.endpoint, ownerLogin(id, password), "select tableowner as o from pg_tables where tablename = 'items'");
    expect(owner).toEqual([{ o: id }]);

    await queryOnce(router.endpoint, ownerLogin(id, password), 'create table seed (id int); insert into seed values (1)');
    const retried = await f.pgsctl(['tenant', 'init-sql', 'retry', id, '--wait', '--timeout', '60s']);
    expect(retried.code, retried.stderr).toBe(0);
    expect(await initSql(id)).toMatchObject({ state: 'SUCCEEDED', applied: 2 });
    // The first script did not run again (its row would clash on the primary key).
    expect(await queryOnce(router.endpoint, ownerLogin(id, password), 'select id, body from items order by id')).toEqual([
      { id: 1, body: 'one' },
      { id: 2, body: 'two' },
    ]);
    const again = await f.pgsctl(['tenant', 'init-sql', 'retry', id]);
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(/never run twice/);
  });

  it('manifest round trip: three tenants, users, databases and init scripts; apply -> diff empty -> change -> diff -> apply -> delete', async () => {
    const f = fleet();
    const router = f.routers[0]!;
    const base = tenantName('mf');
    const file = path.join(dir, 'fleet.yaml');
    fs.mkdirSync(path.join(dir, 'sql'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'app.pw'), 'app-secret-123\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'owner.pw'), 'owner-secret-1\n', { mode: 0o600 });
    fs.writeFileSync(
      path.join(dir, 'sql', 'orders.sql'),
      'create table orders (id int primary key, total numeric not null);\ninsert into orders values (1, 9.5);\ngrant select on orders to app;\n',
    );
    const write = (memory: string): void =>
      fs.writeFileSync(
        file,
        `apiVersion: pgs.dev/v1
kind: Tenant
metadata: { name: ${base}-a }
spec:
  resources: { memory: ${memory} }
  access: enabled
  ownerPassword: { fromFile: owner.pw }
  users:
    - { name: app, password: { fromFile: app.pw } }
  databases:
    - { name: orders }
  initSql:
    - { file: sql/orders.sql, database: orders }
    - "create table notes (body text); grant insert, select on notes to app"
---
apiVersion: pgs.dev/v1
kind: Tenant
metadata: { name: ${base}-b }
spec:
  ownerPassword: { fromFile: owner.pw }
  users: [{ name: app, password: { fromFile: app.pw } }]
---
apiVersion: pgs.dev/v1
kind: Tenant
metadata: { name: ${base}-c }
spec:
  description: third
  ownerPassword: { fromFile: owner.pw }
  initSql: ["create table c_only (x int)"]
`,
      );
    write('1Gi');
    const applied = await f.pgsctl(['apply', '-f', file, '--wait', '--timeout', '90s']);
    expect(applied.code, applied.stderr).toBe(0);
    for (const id of [`${base}-a`, `${base}-c`]) {
      await waitFor(`${id} init scripts`, async () => ((await initSql(id))?.state === 'SUCCEEDED' ? true : undefined), { timeoutMs: 30_000 });
    }
    expect(await initSql(`${base}-b`)).toBeNull();
    // What the scripts made, as the manifest's user sees it through the router.
    const app = { user: `app.${base}-a`, password: 'app-secret-123', database: 'orders' };
    await f.waitServing(app);
    expect(await queryOnce(router.endpoint, app, 'select id, total::text as total from orders')).toEqual([{ id: 1, total: '9.5' }]);
    const appDefault = { user: `app.${base}-a`, password: 'app-secret-123', database: `${base}-a` };
    await queryOnce(router.endpoint, appDefault, "insert into notes values ('from app')");

    const clean = await f.pgsctl(['diff', '-f', file]);
    expect(clean.code, clean.stdout).toBe(0);
    write('2Gi');
    const changed = await f.pgsctl(['diff', '-f', file]);
    expect(changed.code).toBe(1);
    const plan = JSON.parse(changed.stdout) as { changes: number; tenants: { name: string; fields: { path: string; to: string }[]; initScripts: string[] }[] };
    expect(plan.changes).toBe(1);
    expect(plan.tenants.find((t) => t.name === `${base}-a`)?.fields).toEqual([expect.objectContaining({ path: 'spec.resources.memory', to: '2Gi' })]);
    expect(plan.tenants.every((t) => t.initScripts.length === 0)).toBe(true);
    const updated = await f.pgsctl(['apply', '-f', file, '--wait', '--timeout', '90s']);
    expect(updated.code, updated.stderr).toBe(0);
    expect((await f.pgsctl(['diff', '-f', file])).code).toBe(0);
    // The scripts ran once: the update did not run them again.
    expect(await queryOnce(router.endpoint, app, 'select count(*)::int as n from orders')).toEqual([{ n: 1 }]);
    expect((await events(`${base}-a`)).filter((e) => e.action === 'tenant.init_sql.succeeded')).toHaveLength(1);

    const deleted = await f.pgsctl(['delete', '-f', file, '--yes', '--wait', '--timeout', '90s']);
    expect(deleted.code, deleted.stderr).toBe(0);
    for (const id of [`${base}-a`, `${base}-b`, `${base}-c`]) expect((await f.pgsctl(['tenant', 'get', id])).code).toBe(3);
    // Three applies and a delete of three tenants, each waited for: minutes on a loaded machine.
  }, 300_000);
});
