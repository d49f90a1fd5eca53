import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  BackupSchema,
  BackupStatus,
  BackupType,
  RestoreSchema,
  RestoreState,
  TenantSchema,
  TenantStatus,
  type Backup,
  type CreateBackupRequest,
  type DeleteBackupRequest,
  type RecreateTenantRequest,
  type Restore,
  type RestoreTenantRequest,
  type Tenant,
  type UpdateTenantRequest,
} from '@pgs/proto';
import { Code, RpcError } from '@pgs/rpc';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeCoordinator, type FakeCoordinator } from '../testing/fake-coordinator.js';
import { runInProcess } from '../testing/run-in-process.js';

const at = (iso: string) => timestampFromDate(new Date(iso));
const started = create(BackupSchema, {
  id: 'b-1',
  tenantId: 'acme',
  type: BackupType.FULL,
  status: BackupStatus.RUNNING,
  hostId: 'h1',
  startedAt: at('2026-12-06T10:15:00Z'),
  trigger: 'operator:admin',
});

/** Answers with each of `answers` in turn, then the last one forever. */
function sequence<T>(answers: T[]): () => T {
  let i = 0;
  return () => answers[Math.min(i++, answers.length - 1)] as T;
}

describe('backup and restore commands against a coordinator answering over gRPC', () => {
  let fake: FakeCoordinator | undefined;
  afterEach(async () => {
    await fake?.stop();
    fake = undefined;
  });

  it('backup create --wait follows the backup to SUCCEEDED and sums it up', async () => {
    const next = sequence<Backup>([
      started,
      started,
      create(BackupSchema, {
        ...started,
        status: BackupStatus.SUCCEEDED,
        finishedAt: at('2026-12-06T10:15:42Z'),
        sizeBytes: 1_288_490_189n,
        repoSizeBytes: 327_155_712n,
      }),
    ]);
    fake = await startFakeCoordinator({ createBackup: async () => ({ backup: started }), getBackup: async () => ({ backup: next() }) });
    const res = await runInProcess(fake.address, ['backup', 'create', 'acme', '--type', 'full', '--wait']);
    expect(res.code).toBe(0);
    expect((fake.requests.createBackup?.[0] as CreateBackupRequest).type).toBe(BackupType.FULL);
    expect(res.stdout).toBe('full backup b-1 of tenant acme started on h1\nfull backup b-1 SUCCEEDED, 1.2 GiB (312 MiB in the repository) in 42.0s\n');
    expect(res.stderr).toMatch(/^backup b-1 of tenant acme: RUNNING on h1 \(/m);
    expect(res.stderr).toMatch(/^backup b-1 SUCCEEDED \(/m);
  });

  it('backup create --wait exits 8 with the reason when the backup FAILED, and -o json still prints it', async () => {
    const failed = create(BackupSchema, {
      ...started,
      status: BackupStatus.FAILED,
      reason: 'pgBackRest: unable to find primary cluster',
      finishedAt: at('2026-12-06T10:16:00Z'),
    });
    fake = await startFakeCoordinator({ createBackup: async () => ({ backup: started }), getBackup: async () => ({ backup: failed }) });
    const res = await runInProcess(fake.address, ['backup', 'create', 'acme', '--wait', '-o', 'json']);
    expect(res.code).toBe(8);
    expect(JSON.parse(res.stdout)).toMatchObject({ id: 'b-1', status: 'FAILED', reason: 'pgBackRest: unable to find primary cluster' });
    expect(res.stderr).toContain(
      'error: backup b-1 of tenant acme FAILED: pgBackRest: unable to find primary cluster\nhint: see `pgsctl events --tenant acme`',
    );
  });

  it('backup list prints the recovery window above the table, and both as JSON', async () => {
    const done = create(BackupSchema, {
      ...started,
      status: BackupStatus.SUCCEEDED,
      finishedAt: at('2026-12-06T10:15:42Z'),
      lsnStart: '0/2000028',
      lsnStop: '0/2000138',
    });
    fake = await startFakeCoordinator({
      listBackups: async () => ({ backups: [done], window: { earliest: at('2026-12-06T10:15:42Z'), latest: at('2026-12-06T11:00:00Z') } }),
    });
    const table = await runInProcess(fake.address, ['backup', 'list', 'acme', '--all']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^restorable from 2026-12-06T10:15:42Z to 2026-12-06T11:00:00Z \(44m18s\)\n\nID\s+TYPE\s+STATUS/);
    expect(table.stdout).toContain('0/2000028..0/2000138');
    expect(fake.requests.listBackups?.[0]).toMatchObject({ tenantId: 'acme', all: true });
    const json = JSON.parse((await runInProcess(fake.address, ['backup', 'list', 'acme', '-o', 'json'])).stdout);
    expect(json).toMatchObject({
      window: { earliest: '2026-12-06T10:15:42.000Z', latest: '2026-12-06T11:00:00.000Z' },
      backups: [{ id: 'b-1', status: 'SUCCEEDED', type: 'FULL' }],
    });
  });

  it('backup delete needs --yes off a terminal, and says to add --force when the window would shrink', async () => {
    fake = await startFakeCoordinator({
      deleteBackup: async (req: DeleteBackupRequest) => {
        if (!req.force) throw new RpcError(Code.FAILED_PRECONDITION, 'deleting b-1 leaves tenant acme restorable for 2d; the policy wants 7d');
        return { backup: create(BackupSchema, { ...started, status: BackupStatus.EXPIRED }) };
      },
    });
    const unconfirmed = await runInProcess(fake.address, ['backup', 'delete', 'acme', 'b-1']);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('pass --yes');
    expect(fake.requests.deleteBackup).toBeUndefined();
    const refused = await runInProcess(fake.address, ['backup', 'delete', 'acme', 'b-1', '--yes']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('error: deleting b-1 leaves tenant acme restorable for 2d; the policy wants 7d\nhint: add --force to delete it anyway');
    const forced = await runInProcess(fake.address, ['backup', 'delete', 'acme', 'b-1', '--yes', '--force']);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toBe('backup b-1 of tenant acme deleted (status EXPIRED)\n');
  });

  it('tenant restore --wait follows the restore and the new tenant, then tells the recovery point and how to connect', async () => {
    const running = create(RestoreSchema, {
      id: 'r-1',
      sourceTenantId: 'acme',
      targetTenantId: 'acme-before',
      state: RestoreState.RUNNING,
      toTime: at('2026-12-06T10:30:00Z'),
      reason: 'restoring on h2',
      hostId: 'h2',
    });
    const done = create(RestoreSchema, {
      ...running,
      state: RestoreState.SUCCEEDED,
      reason: 'serving',
      recoveredLsn: '0/3000060',
      recoveredTime: at('2026-12-06T10:29:58Z'),
      timeline: 2,
    });
    const target = (status: TenantStatus): Tenant =>
      create(TenantSchema, { id: 'acme-before', status, statusReason: status === TenantStatus.RESTORING ? 'recovering WAL' : '', spec: { nodes: 1 } });
    const nextRestore = sequence<Restore>([running, done]);
    const nextTenant = sequence<Tenant>([target(TenantStatus.RESTORING), target(TenantStatus.ACTIVE)]);
    fake = await startFakeCoordinator({
      restoreTenant: async () => ({ restore: running, tenant: target(TenantStatus.RESTORING) }),
      getRestore: async () => ({ restore: nextRestore() }),
      getTenant: async () => ({ tenant: nextTenant(), users: [], databases: [], recentEvents: [] }),
    });
    const res = await runInProcess(fake.address, ['tenant', 'restore', 'acme', '--to-time', '2026-12-06T11:30:00+01:00', '--as', 'acme-before', '--wait'], () =>
      Date.parse('2026-12-06T12:00:00Z'),
    );
    expect(res.code).toBe(0);
    const req = fake.requests.restoreTenant?.[0] as RestoreTenantRequest;
    expect(req).toMatchObject({ id: 'acme', asTenantId: 'acme-before', inPlace: false, target: { case: 'toTime' } });
    expect(req.target.case === 'toTime' && req.target.value.seconds).toBe(BigInt(Date.parse('2026-12-06T10:30:00Z') / 1000));
    expect(fake.requests.getRestore?.[0]).toMatchObject({ tenantId: 'acme-before', id: 'r-1' });
    expect(res.stderr).toContain('restore r-1 into acme-before: RUNNING on h2 (restoring on h2); tenant RESTORING (recovering WAL)');
    expect(res.stdout).toContain('restore r-1 started: tenant acme as of the time 2026-12-06T10:30:00Z into new tenant acme-before\n');
    expect(res.stdout).toContain('recovery point: LSN 0/3000060, last commit 2026-12-06T10:29:58Z, timeline 2\n');
    expect(res.stdout).toContain('external access is off: pgsctl tenant access enable acme-before\n');
    expect(res.stdout).toContain('(its users log in as <user>.acme-before, e.g. acme.acme-before)');
  });

  it('tenant restore without --wait says how to follow it, and restore-status shows it', async () => {
    const running = create(RestoreSchema, {
      id: 'r-4',
      sourceTenantId: 'acme',
      targetTenantId: 'acme-restore-1',
      state: RestoreState.RUNNING,
      toBackupId: 'b-1',
      reason: 'restoring on h2',
      hostId: 'h2',
    });
    const done = create(RestoreSchema, { ...running, state: RestoreState.SUCCEEDED, recoveredLsn: '0/2000138', recoveredTime: at('2026-12-06T10:15:40Z') });
    const nextRestore = sequence<Restore>([running, done]);
    fake = await startFakeCoordinator({
      restoreTenant: async () => ({ restore: running }),
      getRestore: async () => ({ restore: nextRestore() }),
      getTenant: async () => ({
        tenant: create(TenantSchema, { id: 'acme-restore-1', status: TenantStatus.RESTORING, spec: { nodes: 1 } }),
        users: [],
        databases: [],
        recentEvents: [],
      }),
    });
    const res = await runInProcess(fake.address, ['tenant', 'restore', 'acme', '--to-backup', 'b-1']);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      'restore r-4 started: tenant acme as of backup b-1 into new tenant acme-restore-1\nfollow it: pgsctl tenant restore-status acme-restore-1 r-4 --wait\n',
    );
    const status = await runInProcess(fake.address, ['tenant', 'restore-status', 'acme-restore-1', 'r-4']);
    expect(status.stdout).toBe('restore r-4 into acme-restore-1: RUNNING on h2 (restoring on h2); tenant RESTORING\n');
    const finished = await runInProcess(fake.address, ['tenant', 'restore-status', 'acme-restore-1', 'r-4', '-o', 'json']);
    expect(JSON.parse(finished.stdout)).toMatchObject({
      restore: { id: 'r-4', state: 'SUCCEEDED', recoveredLsn: '0/2000138', recoveredTime: '2026-12-06T10:15:40.000Z' },
      tenant: { id: 'acme-restore-1' },
    });
  });

  it('tenant restore --wait exits 8 with the reason when the restore FAILED', async () => {
    const failed = create(RestoreSchema, {
      id: 'r-2',
      sourceTenantId: 'acme',
      targetTenantId: 'acme-restore-1',
      state: RestoreState.FAILED,
      latest: true,
      reason: 'pgBackRest restore failed: no backup set found',
    });
    fake = await startFakeCoordinator({
      restoreTenant: async () => ({ restore: create(RestoreSchema, { ...failed, state: RestoreState.RUNNING, reason: '' }) }),
      getRestore: async () => ({ restore: failed }),
      getTenant: async () => {
        throw new RpcError(Code.NOT_FOUND, 'tenant acme-restore-1 not found');
      },
    });
    const res = await runInProcess(fake.address, ['tenant', 'restore', 'acme', '--latest', '--wait']);
    expect(res.code).toBe(8);
    expect(res.stderr).toContain('error: restore r-2 into tenant acme-restore-1 FAILED: pgBackRest restore failed: no backup set found\nhint: ');
  });

  it('tenant recreate --from-backup asks for the restore and tells what WAL was lost', async () => {
    const done = create(RestoreSchema, {
      id: 'r-3',
      sourceTenantId: 'lost',
      targetTenantId: 'lost',
      state: RestoreState.SUCCEEDED,
      latest: true,
      hostId: 'h3',
      recoveredLsn: '0/7000000',
      recoveredTime: at('2026-12-06T11:50:00Z'),
      missingWalBytes: 8192n,
    });
    fake = await startFakeCoordinator({
      recreateTenant: async () => ({
        tenant: create(TenantSchema, { id: 'lost', status: TenantStatus.RESTORING, spec: { nodes: 1 } }),
        restore: create(RestoreSchema, { ...done, state: RestoreState.RUNNING }),
      }),
      getRestore: async () => ({ restore: done }),
      getTenant: async () => ({
        tenant: create(TenantSchema, { id: 'lost', status: TenantStatus.ACTIVE, spec: { nodes: 1, externalAccess: true } }),
        users: [],
        databases: [],
        recentEvents: [],
      }),
    });
    const res = await runInProcess(fake.address, ['tenant', 'recreate', 'lost', '--from-backup', '--wait']);
    expect(res.code).toBe(0);
    expect(fake.requests.recreateTenant?.[0]).toMatchObject({ id: 'lost', fromBackup: true, acceptDataLoss: false } satisfies Partial<RecreateTenantRequest>);
    expect(res.stdout).toContain('restore r-3 SUCCEEDED: tenant lost re-created on h3 from its backup');
    expect(res.stdout).toContain('missing WAL: 8.0 KiB (8192 bytes) the old primary had written never reached the repository');
  });

  it('tenant update sends the backup policy it read back, with only the flags given changed', async () => {
    const tenant = create(TenantSchema, {
      id: 'acme',
      revision: 4n,
      status: TenantStatus.ACTIVE,
      spec: {
        nodes: 1,
        resources: { cpuMillis: 1000, memoryMib: 1024, diskMib: 8192 },
        version: '15',
        backup: { fullIntervalSeconds: 604_800n, retentionSeconds: 1_209_600n, archiveTimeoutSeconds: 30 },
      },
    });
    fake = await startFakeCoordinator({
      getTenant: async () => ({ tenant, users: [], databases: [], recentEvents: [] }),
      updateTenant: async (req: UpdateTenantRequest) => ({ tenant: create(TenantSchema, { ...tenant, spec: req.spec, revision: 5n }) }),
    });
    const memory = await runInProcess(fake.address, ['tenant', 'update', 'acme', '--memory', '2Gi']);
    expect(memory.code).toBe(0);
    const kept = (fake.requests.updateTenant?.[0] as UpdateTenantRequest).spec?.backup;
    expect(kept).toMatchObject({ disabled: false, fullIntervalSeconds: 604_800n, retentionSeconds: 1_209_600n, archiveTimeoutSeconds: 30 });
    const changed = await runInProcess(fake.address, ['tenant', 'update', 'acme', '--backup-schedule', 'incr=6h', '--no-backups', '-o', 'json']);
    expect(changed.code).toBe(0);
    expect((fake.requests.updateTenant?.[1] as UpdateTenantRequest).spec?.backup).toMatchObject({
      disabled: true,
      fullIntervalSeconds: 604_800n,
      incrIntervalSeconds: 21_600n,
      archiveTimeoutSeconds: 30,
    });
    expect(JSON.parse(changed.stdout).spec.backup).toEqual({
      disabled: true,
      fullIntervalSeconds: 604_800,
      diffIntervalSeconds: 0,
      incrIntervalSeconds: 21_600,
      retentionSeconds: 1_209_600,
      archiveTimeoutSeconds: 30,
    });
  });

  it('says clearly, without a stack, when the coordinator does not serve backups (exit 5)', async () => {
    fake = await startFakeCoordinator({});
    const res = await runInProcess(fake.address, ['backup', 'list', 'acme']);
    expect(res.code).toBe(5);
    expect(res.stderr).toBe(
      `error: the coordinator at ${fake.address} does not serve this call yet (ListBackups: not in this coordinator)\n` +
        `hint: the coordinator at ${fake.address} is older than this pgsctl: upgrade it to use this command\n`,
    );
  });
});
