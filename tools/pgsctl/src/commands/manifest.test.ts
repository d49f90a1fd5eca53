import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type CoordinatorProcess } from '../testing/coordinator-process.js';
import { runPgsctl } from '../testing/run-pgsctl.js';

interface TenantJson {
  id: string;
  revision: number;
  spec: { resources: { memoryMib: number }; labels: Record<string, string>; externalAccess: boolean; description: string };
}

describe('apply, diff and delete -f against the real coordinator', () => {
  let coordinator: CoordinatorProcess;
  let dir: string;
  const id = `m${Date.now().toString(36)}`;
  const file = (): string => path.join(dir, 'tenants.yaml');
  const run = (...args: string[]) =>
    runPgsctl(args, {
      cwd: dir,
      env: { PGS_COORDINATOR: coordinator.grpc, PGS_CA: coordinator.caFile, PGS_TOKEN_FILE: coordinator.tokenFile, OWNER_PW: 'owner-pass-123' },
    });
  const write = (memory: string, extra = ''): void =>
    fs.writeFileSync(
      file(),
      `# yaml-language-server: $schema=../manifest.schema.json
apiVersion: pgs.dev/v1
kind: Tenant
metadata:
  name: ${id}
spec:
  resources: { memory: ${memory} }
  labels: { env: test }
  access: enabled
  ownerPassword: { fromEnv: OWNER_PW }
  users:
    - name: app
      password: { fromFile: secrets/app.pw }
  databases:
    - name: orders
      owner: app
  initSql:
    - file: sql/orders.sql
      database: orders
    - grant select on all tables in schema public to app
${extra}---
apiVersion: pgs.dev/v1
kind: Tenant
metadata: { name: ${id}-b }
spec:
  description: second
---
apiVersion: pgs.dev/v1
kind: Tenant
metadata: { name: ${id}-c }
spec:
  users: [{ name: reader, password: { fromFile: secrets/app.pw } }]
  initSql: ["create table notes (body text)"]
`,
    );

  beforeAll(async () => {
    coordinator = await startCoordinator();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsctl-manifest-'));
    fs.mkdirSync(path.join(dir, 'secrets'));
    fs.writeFileSync(path.join(dir, 'secrets', 'app.pw'), 'app-pass-1234\n', { mode: 0o600 });
    fs.mkdirSync(path.join(dir, 'sql'));
    fs.writeFileSync(path.join(dir, 'sql', 'orders.sql'), 'create table orders (id int primary key);\n');
  });
  afterAll(async () => {
    await coordinator?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('goes apply -> diff (empty) -> change -> diff (shows it) -> apply -> delete', async () => {
    write('2Gi');
    const dry = await run('apply', '-f', 'tenants.yaml', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`tenant ${id}: create (tenants.yaml, document 1)`);
    expect(dry.stdout).toContain('  + init script sql/orders.sql in database orders (runs once, after the users and databases)\n');
    expect(dry.stdout).toContain('  + init script inline #2 (runs once');
    expect(dry.stderr).toContain('dry run: nothing changed');
    expect((await run('tenant', 'get', id)).code).toBe(3);

    const applied = await run('apply', '-f', 'tenants.yaml');
    expect(applied.stderr).toContain(`tenant ${id}: created (revision 1)`);
    expect(applied.stderr).toContain(`tenant ${id}: user app created`);
    expect(applied.stderr).toContain(`tenant ${id}: database orders created (owner app)`);
    expect(applied.code).toBe(0);
    // The second tenant names no owner password: the coordinator's generated one is shown once.
    expect(applied.stdout).toMatch(new RegExp(`owner password for user ${id}-b \\(shown once`));
    const got = JSON.parse((await run('tenant', 'get', id, '-o', 'json')).stdout) as {
      tenant: TenantJson;
      users: { name: string }[];
      databases: { name: string; owner: string }[];
    };
    expect(got.tenant.spec).toMatchObject({ resources: { memoryMib: 2048 }, labels: { env: 'test' }, externalAccess: true });
    expect(got.users.map((u) => u.name).sort()).toEqual(['app', id]);
    expect(got.databases).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'orders', owner: 'app' })]));
    // Released after its users and databases were made: PENDING until a primary runs them (no host in this test).
    const scripts = (await run('tenant', 'get', id, '-o', 'json')).stdout;
    expect(JSON.parse(scripts)).toMatchObject({ tenant: { initSql: { state: 'PENDING', scripts: ['sql/orders.sql', 'inline-2'], applied: 0 } } });
    expect((await run('tenant', 'get', id)).stdout).toMatch(/Init SQL: +PENDING \(2 script\(s\)\): run once the primary runs/);
    expect(applied.stderr).toContain(`tenant ${id}-c: 1 init script(s) will run once its primary runs`);
    expect(JSON.parse((await run('tenant', 'get', `${id}-b`, '-o', 'json')).stdout)).toMatchObject({ tenant: { initSql: null } });

    const again = await run('apply', '-f', 'tenants.yaml');
    expect([again.code, again.stdout]).toEqual([0, expect.stringContaining('no changes: everything is as the manifests say')]);
    const clean = await run('diff', '-f', 'tenants.yaml');
    expect(clean.code).toBe(0);

    write('3Gi', '  description: resized\n');
    const changed = await run('diff', '-f', 'tenants.yaml');
    expect(changed.code).toBe(1);
    expect(changed.stdout).toContain(`tenant ${id}: update from revision 1 (tenants.yaml, document 1)`);
    expect(changed.stdout).toContain('  ~ spec.resources.memory: 2Gi -> 3Gi\n');
    expect(changed.stdout).toContain('  ~ spec.description: "" -> "resized"\n');
    expect(changed.stdout).toContain(`tenant ${id}-b: unchanged`);
    // Init scripts belong to creation: an existing tenant never shows them as a change.
    expect(changed.stdout).not.toContain('init script');
    const asJson = JSON.parse((await run('diff', '-f', 'tenants.yaml', '-o', 'json')).stdout) as { changes: number };
    expect(asJson.changes).toBe(1);

    const update = await run('apply', '-f', 'tenants.yaml');
    expect(update.code).toBe(0);
    expect(update.stderr).toContain(`tenant ${id}: updated (revision 1 -> 2): spec.resources.memory, spec.description`);
    expect((await run('diff', '-f', 'tenants.yaml')).code).toBe(0);
    const after = JSON.parse((await run('tenant', 'get', id, '-o', 'json')).stdout) as { tenant: TenantJson };
    expect(after.tenant).toMatchObject({ revision: 2, spec: { resources: { memoryMib: 3072 }, description: 'resized' } });

    const unconfirmed = await run('delete', '-f', 'tenants.yaml');
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('needs a confirmation');
    const deleted = await run('delete', '-f', 'tenants.yaml', '--yes', '--wait', '--timeout', '30s');
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toBe(`deleted: ${id}, ${id}-b, ${id}-c\n`);
    expect((await run('tenant', 'get', id)).code).toBe(3);
    const missing = await run('delete', '-f', 'tenants.yaml', '--yes');
    expect([missing.code, missing.stderr]).toEqual([0, expect.stringContaining(`tenant ${id}: not found, nothing to delete`)]);
  }, 240_000);

  it('refuses a bad manifest before any change, naming the file, document and path (exit 2)', async () => {
    fs.writeFileSync(
      path.join(dir, 'bad.yaml'),
      `apiVersion: pgs.dev/v1\nkind: Tenant\nmetadata: { name: ${id}-c }\nspec:\n  users: [{ name: app, password: { fromEnv: NOT_SET_ANYWHERE } }]\n`,
    );
    const res = await run('apply', '-f', 'bad.yaml');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`error: bad.yaml, document 1 (tenant ${id}-c): spec.users[0].password: environment variable NOT_SET_ANYWHERE is not set`);
    expect((await run('tenant', 'get', `${id}-c`)).code).toBe(3);
  }, 60_000);

  it('prints the JSON Schema', async () => {
    const res = await run('manifest', 'schema');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({
      title: expect.stringContaining('pgs tenant manifest'),
      properties: { apiVersion: { const: 'pgs.dev/v1' } },
    });
  }, 60_000);
});
