import { validateTenantId, ValidationError } from '@pgs/tenancy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { freePort } from '@pgs/pg-testkit';
import { startCoordinator, type CoordinatorProcess } from './testing/coordinator-process.js';
import { runPgsctl } from './testing/run-pgsctl.js';

interface TenantJson {
  id: string;
  status: string;
  revision: number;
  spec: { resources: { cpuMillis: number; memoryMib: number; diskMib: number }; labels: Record<string, string>; externalAccess: boolean };
}

function ruleMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err.message;
    throw err;
  }
  throw new Error('expected the rule to refuse the value');
}

// Each case runs pgsctl several times as a process; on a loaded CI machine a start can take seconds.
describe('pgsctl as a child process against the real coordinator', { timeout: 120_000 }, () => {
  let coordinator: CoordinatorProcess;
  // Each run gets its own tenant ids, so the suite can run beside others.
  const id = `t${Date.now().toString(36)}`;
  const run = (...args: string[]) =>
    runPgsctl(args, { env: { PGS_COORDINATOR: coordinator.grpc, PGS_CA: coordinator.caFile, PGS_TOKEN_FILE: coordinator.tokenFile } });

  beforeAll(async () => {
    coordinator = await startCoordinator();
  });
  afterAll(async () => {
    await coordinator?.stop();
  });

  it('creates a tenant and refuses a second one with the same id (exit 4)', async () => {
    const res = await run('tenant', 'create', id, '--password', 'secret-pw-1', '--memory', '2Gi', '--label', 'env=test', '-o', 'json');
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const created = JSON.parse(res.stdout) as { tenant: TenantJson };
    expect(created.tenant).toMatchObject({ id, revision: 1, spec: { resources: { memoryMib: 2048 }, labels: { env: 'test' } } });
    const again = await run('tenant', 'create', id, '--password', 'secret-pw-1');
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(/^error: .*already exists/m);
  });

  it('lists it (table and JSON) and gets it (table and YAML)', async () => {
    const table = await run('tenant', 'list');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+STATUS\s+HOST/);
    expect(table.stdout).toContain(id);
    const list = JSON.parse((await run('tenant', 'list', '-o', 'json', '--label', 'env=test')).stdout) as TenantJson[];
    expect(list.map((t) => t.id)).toContain(id);
    const get = await run('tenant', 'get', id);
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(new RegExp(`^Name:\\s+${id}$`, 'm'));
    expect(get.stdout).toContain('Placements:');
    expect(get.stdout).toContain('Recent events:');
    const yaml = parseYaml((await run('tenant', 'get', id, '-o', 'yaml')).stdout) as { tenant: TenantJson; users: Array<{ name: string; owner: boolean }> };
    expect(yaml.tenant.spec.resources.memoryMib).toBe(2048);
    expect(yaml.users).toContainEqual(expect.objectContaining({ name: id, owner: true }));
  });

  it('updates with the revision it read, and a stale revision is a conflict (exit 4)', async () => {
    const res = await run('tenant', 'update', id, '--cpu', '2', '-o', 'json');
    expect(res.code).toBe(0);
    const updated = JSON.parse(res.stdout) as TenantJson;
    expect(updated).toMatchObject({ revision: 2, spec: { resources: { cpuMillis: 2000, memoryMib: 2048 } } });
    const stale = await run('tenant', 'update', id, '--cpu', '3', '--revision', '1');
    expect(stale.code).toBe(4);
    expect(stale.stderr).toMatch(/revision/);
  });

  it('gives up --wait with exit 6 when no host can take the tenant', async () => {
    const res = await run('tenant', 'create', `${id}-w`, '--password', 'secret-pw-1', '--wait', '--timeout', '2s');
    expect(res.code).toBe(6);
    expect(res.stderr).toMatch(new RegExp(`tenant ${id}-w is not ACTIVE after`));
    expect(res.stderr).toMatch(/^hint: /m);
  });

  it("refuses bad input before calling, with the rule's own message (exit 2)", async () => {
    const badId = await run('tenant', 'create', 'Bad_Name');
    expect(badId.code).toBe(2);
    expect(badId.stderr).toContain(ruleMessage(() => validateTenantId('Bad_Name')));
    const tooSmall = await run('tenant', 'create', 'small', '--memory', '100Mi');
    expect(tooSmall.code).toBe(2);
    expect(tooSmall.stderr).toContain('invalid spec.resources.memory_mib: got 100');
    const badStatus = await run('tenant', 'list', '--status', 'HAPPY');
    expect(badStatus.code).toBe(2);
    expect(badStatus.stderr).toContain('use one of NEW, IN_PROGRESS, ACTIVE');
    const unknown = await run('tenant', 'frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
  });

  it('refuses bad backup and restore input before calling (exit 2)', async () => {
    const noTarget = await run('tenant', 'restore', id);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toContain('say what to restore to: --to-time <RFC 3339 time>, --to-backup <backup id> or --latest');
    const noZone = await run('tenant', 'restore', id, '--to-time', '2026-12-06T10:15:00');
    expect(noZone.code).toBe(2);
    expect(noZone.stderr).toContain('it has no time zone (add Z for UTC, or an offset like +01:00)');
    const inPlace = await run('tenant', 'restore', id, '--latest', '--in-place');
    expect(inPlace.code).toBe(2);
    expect(inPlace.stderr).toContain('pass --yes too to confirm');
    const recreate = await run('tenant', 'recreate', id);
    expect(recreate.code).toBe(2);
    expect(recreate.stderr).toContain('--from-backup (its backup and archived WAL) or --accept-data-loss');
    const retention = await run('tenant', 'create', `${id}-b`, '--backup-retention', '14');
    expect(retention.code).toBe(2);
    expect(retention.stderr).toContain('invalid --backup-retention "14": expected a whole number and a unit');
    const schedule = await run('tenant', 'create', `${id}-b`, '--backup-schedule', 'weekly=1d');
    expect(schedule.code).toBe(2);
    expect(schedule.stderr).toContain('"weekly" is not a backup kind');
    const type = await run('backup', 'create', id, '--type', 'weekly');
    expect(type.code).toBe(2);
    expect(type.stderr).toContain('Allowed choices are full, diff, incr');
    expect((await run('tenant', 'get', `${id}-b`)).code).toBe(3);
  });

  it('answers not found with exit 3', async () => {
    const res = await run('tenant', 'get', `${id}-missing`);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(new RegExp(`^error: .*${id}-missing`, 'm'));
    expect(res.stderr).toContain('hint: list what exists');
  });

  it('deletes only with confirmation (--yes when stdin is not a terminal)', async () => {
    const refused = await run('tenant', 'delete', id);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('pass --yes');
    const deleted = await run('tenant', 'delete', id, '--yes', '--wait', '--timeout', '30s');
    expect(deleted.stderr).toContain(`tenant ${id} deleted`);
    expect(deleted.code).toBe(0);
    expect((await run('tenant', 'get', id)).code).toBe(3);
  });

  it('says which address it tried and how to start a fleet when the coordinator is unreachable (exit 5)', async () => {
    const closed = `127.0.0.1:${await freePort()}`;
    const res = await runPgsctl(['status', '--request-timeout', '3s'], { env: { PGS_COORDINATOR: closed, PGS_CA: coordinator.caFile } });
    expect(res.code).toBe(5);
    expect(res.stderr).toContain(`cannot reach the coordinator at ${closed}`);
    expect(res.stderr).toContain('npm start');
  });

  it('creates, uses, lists and revokes operator tokens; a reader may read but not write (exit 7)', async () => {
    const created = await run('token', 'create', '--kind', 'operator', '--name', `${id}-ro`, '--role', 'reader', '--ttl', '1h');
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^pgso_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('shown only now');
    const asReader = (...args: string[]) => runPgsctl(args, { env: { PGS_COORDINATOR: coordinator.grpc, PGS_CA: coordinator.caFile, PGS_TOKEN: token } });
    expect((await asReader('tenant', 'list')).code).toBe(0);
    const refused = await asReader('tenant', 'create', `${id}-no`, '--password', 'secret-pw-9');
    expect(refused.code).toBe(7);
    expect(refused.stderr).toMatch(/lacks tenant:admin/);
    const listed = JSON.parse((await run('token', 'list', '-o', 'json')).stdout) as { name: string; role: string }[];
    expect(listed).toContainEqual(expect.objectContaining({ name: `${id}-ro`, role: 'reader' }));
    expect((await run('token', 'revoke', `${id}-ro`)).code).toBe(0);
    const revoked = await asReader('tenant', 'list');
    expect(revoked.code).toBe(7);
    expect(revoked.stderr).toContain('revoked');
  });

  it('creates join tokens, rotates the key, and needs a CA and a token', async () => {
    const join = await run('token', 'create', '--kind', 'host', '--id', 'h42', '--ttl', '10m', '-o', 'json');
    expect(join.code).toBe(0);
    expect((JSON.parse(join.stdout) as { token: string }).token).toMatch(/^pgsj_[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/);
    const rotate = JSON.parse((await run('admin', 'rotate-key', '-o', 'json')).stdout) as { keyId: string; secretsReencrypted: number };
    expect(rotate.keyId).not.toBe('');
    const noCa = await runPgsctl(['tenant', 'list'], { env: { PGS_COORDINATOR: coordinator.grpc, PGS_TOKEN_FILE: coordinator.tokenFile } });
    expect(noCa.code).toBe(2);
    expect(noCa.stderr).toContain('no CA');
    const noToken = await runPgsctl(['tenant', 'list'], { env: { PGS_COORDINATOR: coordinator.grpc, PGS_CA: coordinator.caFile } });
    expect(noToken.code).toBe(7);
    expect(noToken.stderr).toContain('--token');
  });

  it('shows every command in --help, and a completion script that knows them', async () => {
    const help = await runPgsctl(['--help']);
    expect(help.code).toBe(0);
    for (const command of [
      'tenant',
      'backup',
      'user',
      'db',
      'host',
      'route',
      'events',
      'status',
      'connect',
      'apply',
      'diff',
      'delete',
      'manifest',
      'completion',
    ])
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    expect(help.stdout).toContain('Exit codes:');
    const tenantHelp = await runPgsctl(['tenant', '--help']);
    for (const sub of ['create', 'list', 'get', 'update', 'delete', 'start', 'stop', 'access', 'restore', 'restore-status', 'recreate'])
      expect(tenantHelp.stdout).toMatch(new RegExp(`^  ${sub}\\b`, 'm'));
    const completion = await runPgsctl(['completion', 'bash']);
    expect(completion.stdout).toContain(
      "'/tenant') words='create list get update delete start stop suspend resume switchover init-sql move upgrade restore restore-status recreate access",
    );
    expect(completion.stdout).toContain("'/backup') words='create list get delete");
  });
});
