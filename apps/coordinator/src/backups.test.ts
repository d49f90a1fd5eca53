/**
 * Backups and restores end to end: a real coordinator with a posix repository, fake agents on real
 * agent streams that answer RunBackup and report recovery like the host agent does, operator calls
 * over gRPC and REST.
 */
import fs from 'node:fs';
import path from 'node:path';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { BackupStatus, BackupType, RestoreState, RouteState, TenantStatus } from '@pgs/proto';
import { Code, RpcError } from '@pgs/rpc';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DB_FILE } from './store/open-store.js';
import { FakeAgent } from './testing/fake-agent.js';
import { eventually, startHarness, type Harness } from './testing/harness.js';

let h: Harness;
let repoDir: string;
const agents: FakeAgent[] = [];
let hostSeq = 0;

async function agent(options: Partial<ConstructorParameters<typeof FakeAgent>[0]> = {}): Promise<FakeAgent> {
  hostSeq++;
  const a = new FakeAgent({ hostId: `b${hostSeq}`, address: `127.0.0.${40 + hostSeq}`, coordinator: h.coordinator.grpcAddress, autoRealize: true, ...options });
  agents.push(a);
  await a.connect();
  await eventually(
    async () => a.welcomed && (await h.coordinator.ctx.store.read.hosts.get(a.options.hostId))?.state === 'READY',
    3000,
    `${a.options.hostId} registered`,
  );
  return a;
}

async function rpcError(p: Promise<unknown>): Promise<RpcError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RpcError);
  return err as RpcError;
}

const status = async (id: string): Promise<TenantStatus | undefined> => (await h.operator.getTenant({ id })).tenant?.status;

/** A tenant on `label`'s hosts, ACTIVE, with its first (scheduled) full backup SUCCEEDED. */
async function backedUp(id: string, label: string, nodes = 1): Promise<void> {
  await h.operator.createTenant({ id, spec: { nodes, placement: { pool: label } } });
  await eventually(async () => (await status(id)) === TenantStatus.ACTIVE, 5000, `${id} ACTIVE`);
  await eventually(
    async () => (await h.operator.listBackups({ tenantId: id })).backups.some((b) => b.status === BackupStatus.SUCCEEDED),
    5000,
    `${id} backed up`,
  );
}

/** Every status the tenant went through, from its events. */
async function statusesOf(id: string): Promise<string[]> {
  return (await h.operator.listEvents({ tenantId: id, limit: 1000 })).events.filter((e) => e.action === 'tenant.status').map((e) => e.details.to ?? '');
}

beforeAll(async () => {
  repoDir = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'pgs-repo-'));
  h = await startHarness(['--backup-repo', `posix:${repoDir}`, '--backup-retry-after', '60s']);
});
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
});
afterAll(async () => {
  await h?.stop();
});

describe('scheduled backups', () => {
  it('take a full backup at once on the primary host only, record its result and archive on every node', async () => {
    const pool = { pool: 'sched' };
    const a = await agent({ labels: pool });
    const b = await agent({ labels: pool });
    await backedUp('sched', 'sched', 2);
    const got = await h.operator.getTenant({ id: 'sched' });
    const primary = got.tenant?.placements.find((p) => p.role === 1)?.hostId;
    const [onPrimary, onReplica] = primary === a.options.hostId ? [a, b] : [b, a];
    expect(onPrimary.received('sched', 'runBackup')).toHaveLength(1);
    expect(onReplica.received('sched', 'runBackup')).toHaveLength(0);
    const [backup] = (await h.operator.listBackups({ tenantId: 'sched' })).backups;
    expect(backup).toMatchObject({
      type: BackupType.FULL,
      status: BackupStatus.SUCCEEDED,
      hostId: primary,
      trigger: 'schedule',
      sizeBytes: 23_000_000n,
      lsnStop: '0/2000100',
    });
    expect(backup?.label).toMatch(/F-\d+$/);
    expect(backup?.stanza).toMatch(/^sched-\d+$/);
    // Both nodes archive into the tenant's stanza (a replica does once promoted).
    for (const x of [onPrimary, onReplica])
      expect(x.instances.get('sched')?.backup).toMatchObject({ stanza: backup?.stanza, archiveTimeoutSeconds: 60, retentionDays: 7 });
    // The overview: policy with defaults filled in, window, last good, no problems.
    expect(got.backup?.policy).toMatchObject({
      fullIntervalSeconds: 604_800n,
      diffIntervalSeconds: 86_400n,
      incrIntervalSeconds: 0n,
      retentionSeconds: 604_800n,
      archiveTimeoutSeconds: 60,
    });
    expect(got.backup?.lastGood?.id).toBe(backup?.id);
    expect(got.backup?.window?.earliest).toBeDefined();
    const actions = (await h.operator.listEvents({ tenantId: 'sched', limit: 1000 })).events.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['backup.started', 'backup.succeeded']));
    // Nothing else is due: no second backup while the schedule is not up.
    await new Promise((r) => setTimeout(r, 200));
    expect(onPrimary.received('sched', 'runBackup')).toHaveLength(1);
  });

  it('sends agents the repository with the fleet key only in Welcome, and keeps that key sealed in the store', async () => {
    const a = await agent();
    await eventually(() => a.welcome !== undefined, 3000, 'welcome');
    const repo = a.welcome?.backupRepository;
    expect(repo?.kind).toEqual({ case: 'posix', value: expect.objectContaining({ path: repoDir }) });
    expect(repo?.cipherPass).toMatch(/^[A-Za-z0-9_-]{64}$/);
    expect(repo?.keyId).toMatch(/^bk-\d{8}-[0-9a-f]{8}$/);
    const db = fs.readFileSync(path.join(h.dataDir, DB_FILE));
    const wal = fs.existsSync(path.join(h.dataDir, `${DB_FILE}-wal`)) ? fs.readFileSync(path.join(h.dataDir, `${DB_FILE}-wal`)) : Buffer.alloc(0);
    for (const file of [db, wal]) expect(file.includes(Buffer.from(repo?.cipherPass ?? 'x'))).toBe(false);
    expect(await h.coordinator.ctx.store.read.tenants.get('nobody')).toBeUndefined();
  });

  it('marks a running backup FAILED when its host goes down', async () => {
    const a = await agent({ labels: { pool: 'down' } });
    a.backupMode = 'hang';
    await h.operator.createTenant({ id: 'lost-backup', spec: { placement: { pool: 'down' } } });
    const running = await eventually(async () => (await h.operator.getTenant({ id: 'lost-backup' })).backup?.running, 5000, 'a running backup');
    expect(running.status).toBe(BackupStatus.RUNNING);
    // While it runs, an operator's backup is refused.
    const busy = await rpcError(h.operator.createBackup({ tenantId: 'lost-backup' }));
    expect(busy.code).toBe(Code.FAILED_PRECONDITION);
    expect(busy.message).toContain('is running');
    a.hang();
    const failed = await eventually(
      async () => {
        const b = (await h.operator.getBackup({ tenantId: 'lost-backup', backupId: running.id })).backup;
        return b?.status === BackupStatus.FAILED ? b : undefined;
      },
      5000,
      'backup failed',
    );
    expect(failed.reason).toBe(`host ${a.options.hostId} went down during the backup`);
    // With no running primary, an operator's backup is refused too.
    const none = await rpcError(h.operator.createBackup({ tenantId: 'lost-backup' }));
    expect(none.code).toBe(Code.FAILED_PRECONDITION);
    expect(none.message).toContain('no running primary');
    // Lost with no good backup: only accept_data_loss can bring it back.
    await eventually(async () => (await status('lost-backup')) === TenantStatus.UNAVAILABLE, 5000, 'UNAVAILABLE');
    const nothing = await rpcError(h.operator.recreateTenant({ id: 'lost-backup', fromBackup: true }));
    expect(nothing.code).toBe(Code.FAILED_PRECONDITION);
    expect(nothing.message).toContain('only accept_data_loss can re-create it (EMPTY)');
  });

  it("records a failed backup with the agent's words and counts growing archive failures as events", async () => {
    const a = await agent({ labels: { pool: 'fail' } });
    a.backupMode = 'fail';
    await h.operator.createTenant({ id: 'flaky', spec: { placement: { pool: 'fail' } } });
    const failed = await eventually(
      async () => (await h.operator.listBackups({ tenantId: 'flaky', all: true })).backups.find((b) => b.status === BackupStatus.FAILED),
      5000,
      'failed backup',
    );
    expect(failed.reason).toContain('WAL segment was not archived');
    a.archive.set('flaky', { enabled: true, failedCount: 1n, lastFailedWal: '000000010000000000000003' });
    await a.reportAll();
    a.archive.set('flaky', {
      enabled: true,
      failedCount: 3n,
      lastFailedWal: '000000010000000000000004',
      lagSeconds: 900,
      pendingSegments: 2,
      lastFailedAt: timestampFromMs(Date.now()),
    });
    await a.reportAll();
    const event = await eventually(
      async () => (await h.operator.listEvents({ tenantId: 'flaky', limit: 1000 })).events.find((e) => e.action === 'backup.archive_failed'),
      3000,
      'archive event',
    );
    expect(event.message).toContain('2 more time(s)');
    const overview = (await h.operator.getTenant({ id: 'flaky' })).backup;
    expect(overview?.archive?.failedCount).toBe(3n);
    expect(overview?.problems.join('\n')).toContain('WAL archiving is failing');
    // The fleet status names it, and the metrics carry its numbers.
    await eventually(
      async () => (await h.operator.getFleetStatus({})).problems.some((p) => p.startsWith('tenant flaky backups: ') && p.includes('WAL archiving is failing')),
      3000,
      'fleet problem',
    );
    const metrics = await (await fetch(`http://${h.coordinator.httpAddress}/metrics`)).text();
    expect(metrics).toMatch(/pgs_coordinator_backup_archive_failures\{tenant="flaky"[^}]*\} 3\n/);
    expect(metrics).toMatch(/pgs_coordinator_backup_archive_lag_seconds\{tenant="flaky"[^}]*\} 900\n/);
    expect(metrics).toMatch(/pgs_coordinator_backup_last_good_age_seconds\{tenant="flaky"[^}]*\} -1\n/);
    expect(metrics).toMatch(/pgs_coordinator_backups\{status="FAILED"[^}]*\} \d+\n/);
  });
});

describe('tenant policy', () => {
  it('disabled: no archiving and no scheduled backup; bounds are checked; a change reaches the agents; REST shows and takes it', async () => {
    const a = await agent({ labels: { pool: 'pol' } });
    await h.operator.createTenant({ id: 'quiet', spec: { placement: { pool: 'pol' }, backup: { disabled: true } } });
    await eventually(async () => (await status('quiet')) === TenantStatus.ACTIVE, 5000, 'quiet ACTIVE');
    await new Promise((r) => setTimeout(r, 300));
    expect(a.instances.get('quiet')?.backup).toBeUndefined();
    expect(a.received('quiet', 'runBackup')).toEqual([]);
    expect((await h.operator.getTenant({ id: 'quiet' })).backup?.policy?.disabled).toBe(true);
    const bad = await rpcError(h.operator.createTenant({ id: 'too-short', spec: { backup: { retentionSeconds: 3600n } } }));
    expect(bad.code).toBe(Code.INVALID_ARGUMENT);
    expect(bad.message).toContain('spec.backup.retention_seconds');
    // Turned on with its own retention and archive_timeout: the agent archives with them, and the first backup runs.
    const current = (await h.operator.getTenant({ id: 'quiet' })).tenant!;
    await h.operator.updateTenant({
      id: 'quiet',
      revision: current.revision,
      spec: { placement: { pool: 'pol' }, backup: { retentionSeconds: 2n * 86_400n + 1n, archiveTimeoutSeconds: 30 } },
    });
    await eventually(() => a.instances.get('quiet')?.backup?.retentionDays === 3, 3000, 'policy at the agent');
    expect(a.instances.get('quiet')?.backup?.archiveTimeoutSeconds).toBe(30);
    await eventually(() => a.received('quiet', 'runBackup').length === 1, 3000, 'first backup');
    const rest = (await (
      await fetch(`http://${h.coordinator.httpAddress}/v1/postgres/instances/quiet`, { headers: { authorization: `Bearer ${h.adminToken}` } })
    ).json()) as { backup_policy: Record<string, unknown> };
    expect(rest.backup_policy).toEqual({
      disabled: false,
      full_interval_seconds: 0,
      diff_interval_seconds: 0,
      incr_interval_seconds: 0,
      retention_seconds: 172_801,
      archive_timeout_seconds: 30,
    });
    const put = await fetch(`http://${h.coordinator.httpAddress}/v1/postgres/instances/quiet`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${h.adminToken}` },
      body: JSON.stringify({ revision: Number(current.revision) + 1, backup_policy: { archive_timeout_seconds: 5000 } }),
    });
    expect(put.status).toBe(400);
  });
});

describe('primary moves', () => {
  it('a switchover fails the backup running on the old primary and takes one at once on the new one', async () => {
    const a = await agent({ labels: { pool: 'sw' } });
    const b = await agent({ labels: { pool: 'sw' } });
    await backedUp('moving', 'sw', 2);
    const primaryHost = (await h.operator.getTenant({ id: 'moving' })).tenant?.placements.find((p) => p.role === 1)?.hostId;
    const [primary, replica] = primaryHost === a.options.hostId ? [a, b] : [b, a];
    primary.backupMode = 'hang';
    const running = (await h.operator.createBackup({ tenantId: 'moving' })).backup;
    expect(running?.hostId).toBe(primary.options.hostId);
    primary.fenceLsn = '0/3000148';
    replica.lsn.set('moving', '0/3000148');
    await replica.reportAll();
    await eventually(() => h.coordinator.ctx.health.get('moving', replica.options.hostId)?.lsn === '0/3000148', 3000, 'replica caught up');
    const call = h.operator.switchoverTenant({ id: 'moving', toHostId: replica.options.hostId });
    // The target's position counts only when reported after the old primary was fenced.
    await eventually(() => primary.received('moving', 'fence').length > 0, 3000, 'Fence sent');
    await eventually(() => replica.received('moving', 'promote').length > 0, 3000, 'Promote sent to the target');
    await replica.reportAll();
    await call;
    const failed = await eventually(
      async () => {
        const x = (await h.operator.getBackup({ tenantId: 'moving', backupId: running?.id ?? '' })).backup;
        return x?.status === BackupStatus.FAILED ? x : undefined;
      },
      5000,
      'running backup failed',
    );
    expect(failed.reason).toBe(`primary moved to ${replica.options.hostId} during the backup`);
    const next = await eventually(
      async () =>
        (await h.operator.listBackups({ tenantId: 'moving' })).backups.find((x) => x.hostId === replica.options.hostId && x.status === BackupStatus.SUCCEEDED),
      5000,
      'a backup on the new primary',
    );
    expect(next).toMatchObject({ type: BackupType.DIFF, trigger: 'after-failover' });
    expect(replica.received('moving', 'runBackup')).toHaveLength(1);
  });
});

describe('a live move during a backup', () => {
  it('waits for the running backup to finish before it switches, so the backup is not cut', async () => {
    const a = await agent({ labels: { pool: 'mvb' } });
    const b = await agent({ labels: { pool: 'mvb' } });
    await backedUp('mover', 'mvb');
    const fromId = (await h.operator.getTenant({ id: 'mover' })).tenant?.placements[0]?.hostId;
    const [from, to] = fromId === a.options.hostId ? [a, b] : [b, a];
    from.backupMode = 'hang';
    from.fenceLsn = '0/1000000';
    const running = (await h.operator.createBackup({ tenantId: 'mover' })).backup;
    expect(running?.status).toBe(BackupStatus.RUNNING);
    await h.operator.moveTenant({ id: 'mover', toHostId: to.options.hostId });
    await eventually(
      async () => (await h.operator.getTenant({ id: 'mover' })).tenant?.statusReason.includes('waiting for the running backup'),
      5000,
      'the move waits for the backup',
    );
    // Held back: the old primary is not fenced while its backup runs.
    expect(from.received('mover', 'fence')).toEqual([]);
    await from.finishHungBackups();
    await eventually(
      async () => {
        const t = (await h.operator.getTenant({ id: 'mover' })).tenant;
        return t?.status === TenantStatus.ACTIVE && t.placements.length === 1 && t.placements[0]?.hostId === to.options.hostId;
      },
      10_000,
      'moved to the target',
    );
    expect((await h.operator.getBackup({ tenantId: 'mover', backupId: running?.id ?? '' })).backup?.status).toBe(BackupStatus.SUCCEEDED);
    // Fenced once, by the switch: its last report before the fence is no stray primary.
    expect(from.received('mover', 'fence')).toHaveLength(1);
  });
});

describe('operator backups', () => {
  it('CreateBackup picks diff after a full; ListBackups is newest first; DeleteBackup keeps the window unless forced', async () => {
    const a = await agent({ labels: { pool: 'ops' } });
    await backedUp('ops', 'ops');
    const diff = (await h.operator.createBackup({ tenantId: 'ops' })).backup;
    expect(diff).toMatchObject({ type: BackupType.DIFF, status: BackupStatus.RUNNING, trigger: expect.stringMatching(/^operator:/) });
    await eventually(
      async () => (await h.operator.getBackup({ tenantId: 'ops', backupId: diff?.id ?? '' })).backup?.status === BackupStatus.SUCCEEDED,
      3000,
      'diff done',
    );
    const listed = await h.operator.listBackups({ tenantId: 'ops' });
    expect(listed.backups.map((b) => b.type)).toEqual([BackupType.DIFF, BackupType.FULL]);
    expect(listed.backups[0]?.priorLabel).toBe(listed.backups[1]?.label);
    const full = listed.backups[1]!;
    const refused = await rpcError(h.operator.deleteBackup({ tenantId: 'ops', backupId: full.id }));
    expect(refused.code).toBe(Code.FAILED_PRECONDITION);
    expect(refused.message).toContain('below the retention of 7 day(s)');
    const deleted = (await h.operator.deleteBackup({ tenantId: 'ops', backupId: full.id, force: true })).backup;
    expect(deleted?.status).toBe(BackupStatus.EXPIRED);
    // The diff depended on the full: it goes too; the agent is asked to expire the full's label.
    expect((await h.operator.getBackup({ tenantId: 'ops', backupId: diff?.id ?? '' })).backup?.status).toBe(BackupStatus.EXPIRED);
    await eventually(() => a.received('ops', 'expireBackup').length === 1, 3000, 'ExpireBackup');
    expect(a.received('ops', 'expireBackup')[0]?.command.action.value).toMatchObject({ label: full.label, stanza: full.stanza });
    // Listed only with `all`; and with no restorable full left, the schedule takes a new one at once.
    expect((await h.operator.listBackups({ tenantId: 'ops' })).backups.map((b) => b.id)).not.toEqual(expect.arrayContaining([full.id]));
    const all = (await h.operator.listBackups({ tenantId: 'ops', all: true })).backups;
    expect(
      all
        .filter((b) => b.status === BackupStatus.EXPIRED)
        .map((b) => b.id)
        .sort(),
    ).toEqual([full.id, diff?.id].sort());
    await eventually(
      async () =>
        (await h.operator.listBackups({ tenantId: 'ops' })).backups.some((b) => b.type === BackupType.FULL && b.trigger === 'schedule' && b.id !== full.id),
      3000,
      'a new full',
    );
    expect((await rpcError(h.operator.getBackup({ tenantId: 'ops', backupId: 'b-nope' }))).code).toBe(Code.NOT_FOUND);
  });
});

describe('restore into a new tenant', () => {
  it('copies spec (access off), users and databases, restores with its own stanza, turns ACTIVE without ERROR, then backs up at once', async () => {
    await agent({ labels: { pool: 'rn' } });
    await agent({ labels: { pool: 'rn' } });
    await backedUp('orig', 'rn');
    await h.operator.setTenantAccess({ id: 'orig', externalAccess: true });
    await h.operator.createUser({ tenantId: 'orig', name: 'app', password: 'app-password-1' });
    await eventually(async () => (await h.operator.getTenant({ id: 'orig' })).users.length === 2, 3000, 'user');
    const window = (await h.operator.listBackups({ tenantId: 'orig' })).window!;
    // A time before the window is refused, naming the window in RFC 3339.
    const early = await rpcError(h.operator.restoreTenant({ id: 'orig', target: { case: 'toTime', value: timestampFromMs(Date.now() - 86_400_000) } }));
    expect(early.code).toBe(Code.FAILED_PRECONDITION);
    expect(early.message).toMatch(/the recovery window is \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ to \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(window.earliest).toBeDefined();

    const { tenant, restore } = await h.operator.restoreTenant({ id: 'orig', target: { case: 'latest', value: true } });
    expect(tenant?.id).toBe('orig-restore-1');
    expect(tenant?.status).toBe(TenantStatus.RESTORING);
    expect(tenant?.spec?.externalAccess).toBe(false);
    expect(restore).toMatchObject({ sourceTenantId: 'orig', targetTenantId: 'orig-restore-1', state: RestoreState.RUNNING, latest: true });
    const done = await eventually(
      async () => {
        const r = (await h.operator.getRestore({ tenantId: 'orig-restore-1', id: restore?.id ?? '' })).restore;
        return r?.state === RestoreState.SUCCEEDED ? r : undefined;
      },
      5000,
      'restore succeeded',
    );
    expect(done).toMatchObject({ recoveredLsn: '0/5000028', timeline: 2 });
    expect(done.recoveredTime).toBeDefined();
    await eventually(async () => (await status('orig-restore-1')) === TenantStatus.ACTIVE, 5000, 'restored ACTIVE');
    expect(await statusesOf('orig-restore-1')).not.toContain('ERROR');
    // Its primary was created from the source's stanza; it archives into its own.
    const host = agents.find((x) => x.instances.has('orig-restore-1'))!;
    const spec = host.instances.get('orig-restore-1');
    const sourceStanza = (await h.coordinator.ctx.store.read.backups.getStanza('orig'))?.stanza;
    expect(sourceStanza).toMatch(/^orig-\d+$/);
    expect(spec?.restore).toMatchObject({ restoreId: restore?.id, stanza: sourceStanza, target: { case: 'latest', value: true } });
    expect(spec?.backup?.stanza).toMatch(/^orig-restore-1-\d+$/);
    expect(spec?.backup?.stanza).not.toBe(sourceStanza);
    // The source's users with their verifiers, and its databases.
    const copied = await h.operator.getTenant({ id: 'orig-restore-1' });
    expect(copied.users.map((u) => u.name).sort()).toEqual(['app', 'orig']);
    expect(copied.databases.map((d) => d.name)).toEqual(['orig']);
    const verifiers = async (id: string) => (await h.coordinator.ctx.store.read.users.list(id)).map((u) => `${u.name}:${u.scramVerifier}`).sort();
    expect(await verifiers('orig-restore-1')).toEqual(await verifiers('orig'));
    expect(copied.route?.state).toBe(RouteState.ROUTABLE);
    // Its first backup at once.
    await eventually(
      async () => (await h.operator.listBackups({ tenantId: 'orig-restore-1' })).backups.some((b) => b.status === BackupStatus.SUCCEEDED),
      5000,
      'first backup of the copy',
    );
  });

  it('refuses a second restore into a target while one runs, and marks a failed recovery FAILED with the tenant in ERROR', async () => {
    const a = await agent({ labels: { pool: 'rc' } });
    await backedUp('twice', 'rc');
    a.recoveryMode = { hang: true };
    const first = await h.operator.restoreTenant({ id: 'twice', target: { case: 'latest', value: true }, asTenantId: 'twice-copy' });
    await eventually(() => a.instances.has('twice-copy'), 3000, 'restore sent');
    const second = await rpcError(h.operator.restoreTenant({ id: 'twice', target: { case: 'latest', value: true }, asTenantId: 'twice-copy' }));
    expect(second.code).toBe(Code.FAILED_PRECONDITION);
    expect(second.message).toContain('is running');
    expect((await h.operator.getTenant({ id: 'twice-copy' })).tenant).toMatchObject({
      status: TenantStatus.RESTORING,
      statusReason: expect.stringContaining(': restoring on '),
    });
    // The agent's recovery fails.
    a.recovery.set('twice-copy', {
      restoreId: first.restore?.id ?? '',
      ok: false,
      errorCode: 'RESTORE_FAILED',
      message: 'pgbackrest: unable to find a valid backup',
    });
    await a.reportAll();
    const failed = await eventually(
      async () => {
        const r = (await h.operator.getRestore({ tenantId: 'twice-copy', id: first.restore?.id ?? '' })).restore;
        return r?.state === RestoreState.FAILED ? r : undefined;
      },
      3000,
      'restore failed',
    );
    expect(failed.reason).toBe('pgbackrest: unable to find a valid backup');
    const t = (await h.operator.getTenant({ id: 'twice-copy' })).tenant;
    expect(t?.status).toBe(TenantStatus.ERROR);
    expect(t?.statusReason).toContain('unable to find a valid backup');
    // No target, or a backup id that is not restorable, is refused.
    expect((await rpcError(h.operator.restoreTenant({ id: 'twice' }))).code).toBe(Code.INVALID_ARGUMENT);
    const bad = await rpcError(h.operator.restoreTenant({ id: 'twice', target: { case: 'toBackupId', value: 'b-none' } }));
    expect(bad.code).toBe(Code.NOT_FOUND);
  });
});

describe('restore in place and recreate from backup', () => {
  it('in place: builds the restored primary on another host, switches the route when it serves, then removes the old instance', async () => {
    const a = await agent({ labels: { pool: 'ip' } });
    const b = await agent({ labels: { pool: 'ip' } });
    await backedUp('inplace', 'ip');
    const oldHost = (await h.operator.getTenant({ id: 'inplace' })).tenant?.placements[0]?.hostId;
    const [oldAgent, newAgent] = oldHost === a.options.hostId ? [a, b] : [b, a];
    const { restore } = await h.operator.restoreTenant({ id: 'inplace', target: { case: 'latest', value: true }, inPlace: true });
    expect(restore?.inPlace).toBe(true);
    await eventually(
      async () => (await h.operator.getRestore({ tenantId: 'inplace', id: restore?.id ?? '' })).restore?.state === RestoreState.SUCCEEDED,
      5000,
      'in place done',
    );
    await eventually(async () => (await status('inplace')) === TenantStatus.ACTIVE, 5000, 'ACTIVE again');
    const got = await h.operator.getTenant({ id: 'inplace' });
    expect(got.tenant?.placements.map((p) => p.hostId)).toEqual([newAgent.options.hostId]);
    expect(got.route).toMatchObject({ hostId: newAgent.options.hostId, state: RouteState.ROUTABLE });
    expect(newAgent.instances.get('inplace')?.restore?.restoreId).toBe(restore?.id);
    // The old instance was deleted only after the restored one served.
    await eventually(() => !oldAgent.instances.has('inplace'), 3000, 'old instance removed');
    const actions = (await h.operator.listEvents({ tenantId: 'inplace', limit: 1000 })).events.map((e) => e.action);
    expect(actions.indexOf('restore.old_removed')).toBeGreaterThan(actions.indexOf('restore.succeeded'));
    expect(await statusesOf('inplace')).not.toContain('ERROR');
    // The primary moved: a backup at once.
    await eventually(
      async () =>
        (await h.operator.listBackups({ tenantId: 'inplace' })).backups.some(
          (x) => x.hostId === newAgent.options.hostId && x.status === BackupStatus.SUCCEEDED,
        ),
      5000,
      'backup on the new host',
    );
  });

  it('recreate: a tenant whose host is down comes back from its stanza on another host, with the WAL it may have lost', async () => {
    const a = await agent({ labels: { pool: 'rec' } });
    await backedUp('phoenix', 'rec');
    const stanza = a.instances.get('phoenix')?.backup?.stanza;
    a.lsn.set('phoenix', '0/6000000');
    await a.reportAll();
    await eventually(() => h.coordinator.ctx.health.get('phoenix', a.options.hostId)?.lsn === '0/6000000', 3000, 'lsn heard');
    a.hang();
    await eventually(async () => (await status('phoenix')) === TenantStatus.UNAVAILABLE, 5000, 'UNAVAILABLE');
    const both = await rpcError(h.operator.recreateTenant({ id: 'phoenix', acceptDataLoss: true, fromBackup: true }));
    expect(both.code).toBe(Code.INVALID_ARGUMENT);
    const b = await agent({ labels: { pool: 'rec' } });
    const { restore } = await h.operator.recreateTenant({ id: 'phoenix', fromBackup: true });
    expect(restore?.state).toBe(RestoreState.RUNNING);
    const done = await eventually(
      async () => {
        const r = (await h.operator.getRestore({ tenantId: 'phoenix', id: restore?.id ?? '' })).restore;
        return r?.state === RestoreState.SUCCEEDED ? r : undefined;
      },
      5000,
      'recreated',
    );
    expect(done.hostId).toBe(b.options.hostId);
    expect(done.missingWalBytes).toBe(BigInt(0x6000000 - 0x5000028));
    expect(b.instances.get('phoenix')?.restore?.stanza).toBe(stanza);
    expect(b.instances.get('phoenix')?.backup?.stanza).toBe(stanza);
    await eventually(async () => (await status('phoenix')) === TenantStatus.ACTIVE, 5000, 'ACTIVE');
    const recreate = (await h.operator.listEvents({ tenantId: 'phoenix', limit: 1000 })).events.find((e) => e.action === 'tenant.recreate');
    expect(recreate?.details).toMatchObject({ from_backup: 'true', abandoned_hosts: a.options.hostId });
  });
});

describe('a major upgrade of a tenant with backups', () => {
  const major = (m: string, pgbackrest: boolean) => ({ major: m, serverVersion: `${m}.1`, pgBasebackup: true, pgRewind: true, pgbackrest, pgDump: true });
  const stanzaOf = async (id: string): Promise<string | undefined> => (await h.coordinator.ctx.store.read.backups.getStanza(id))?.stanza;

  it('is refused where pgBackRest cannot back up the target; otherwise the new major archives into a stanza of its own with a full backup at once, and a rollback goes back', async () => {
    const old = await agent({ labels: { pool: 'upg' }, postgresMajors: [major('15', true)] });
    const next = await agent({ labels: { pool: 'upg' }, postgresMajors: [major('16', true), major('18', false)] });
    await h.operator.createTenant({ id: 'upgb', spec: { version: '15', placement: { pool: 'upg' } } });
    await eventually(async () => (await status('upgb')) === TenantStatus.ACTIVE, 5000, 'upgb ACTIVE');
    await eventually(
      async () => (await h.operator.listBackups({ tenantId: 'upgb' })).backups.some((b) => b.status === BackupStatus.SUCCEEDED),
      5000,
      'upgb backed up on 15',
    );
    const before = await stanzaOf('upgb');
    const first = (await h.operator.listBackups({ tenantId: 'upgb' })).backups[0];

    // 18 runs on b-next but its pgBackRest cannot back it up: refused up front, with the version rules' reason.
    const refused = await rpcError(h.operator.upgradeTenant({ id: 'upgb', action: { case: 'toMajor', value: 18 } }));
    expect(refused.message).toMatch(/PostgreSQL 18 cannot be backed up here.*\[TARGET_UNSUPPORTED\]/);

    await h.operator.upgradeTenant({ id: 'upgb', action: { case: 'toMajor', value: 16 }, wait: true });
    const after = await stanzaOf('upgb');
    expect(after).toMatch(new RegExp(`^${before}-pg16-\\d+$`));
    // The new instance archives there, and its first full backup runs there at once.
    await eventually(
      async () => (await h.coordinator.ctx.store.read.backups.list('upgb')).some((b) => b.stanza === after && b.type === 'FULL' && b.status === 'SUCCEEDED'),
      5000,
      'a full backup in the new stanza',
    );
    const onNext = next.instances.get('upgb');
    expect(onNext?.backup?.stanza).toBe(after);
    // Nothing restores across the upgrade point: the old major's backup is refused by name.
    const across = await rpcError(h.operator.restoreTenant({ id: 'upgb', target: { case: 'toBackupId', value: first?.id ?? '' } }));
    expect(across.code).toBe(Code.FAILED_PRECONDITION);
    expect(across.message).toMatch(/before the tenant's last major upgrade; a restore does not cross the upgrade point/);

    // The rollback gives the old major its stanza back.
    await eventually(async () => (await h.operator.getTenant({ id: 'upgb' })).tenant?.upgrade?.phase === 'kept', 5000, 'kept');
    await h.operator.upgradeTenant({ id: 'upgb', action: { case: 'rollback', value: true }, wait: true });
    expect(await stanzaOf('upgb')).toBe(before);
    await eventually(() => old.instances.get('upgb')?.backup?.stanza === before, 5000, 'the old instance archives into its stanza again');
  }, 30_000);
});

describe('REST', () => {
  const url = (p: string) => `http://${h.coordinator.httpAddress}${p}`;
  const call = (p: string, init: RequestInit = {}) => fetch(url(p), { ...init, headers: { authorization: `Bearer ${h.adminToken}`, ...init.headers } });

  it('serves backups and restores in the public REST API shape, and documents them', async () => {
    await agent({ labels: { pool: 'rest' } });
    await backedUp('restful-b', 'rest');
    const created = await call('/v1/postgres/instances/restful-b/backups', { method: 'POST', body: JSON.stringify({ type: 'diff' }) });
    expect(created.status).toBe(201);
    const backup = (await created.json()) as { id: string; type: string; status: string };
    expect(backup).toMatchObject({ type: 'diff', status: 'running' });
    await eventually(
      async () => ((await (await call(`/v1/postgres/instances/restful-b/backups/${backup.id}`)).json()) as { status: string }).status === 'succeeded',
      3000,
      'diff',
    );
    const list = (await (await call('/v1/postgres/instances/restful-b/backups')).json()) as {
      backups: { id: string; type: string }[];
      window: { earliest: string };
    };
    expect(list.backups.map((b) => b.type)).toEqual(['diff', 'full']);
    expect(Date.parse(list.window.earliest)).toBeGreaterThan(0);
    const full = list.backups[1]!.id;
    const refused = await call(`/v1/postgres/instances/restful-b/backups/${full}`, { method: 'DELETE' });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { error_code: string } }).error.error_code).toBe('BACKUP_INSIDE_RETENTION');
    const bad = await call('/v1/postgres/instances/restful-b/restore', { method: 'POST', body: JSON.stringify({ latest: true, backup_id: 'x' }) });
    expect(bad.status).toBe(400);
    const restored = await call('/v1/postgres/instances/restful-b/restore', {
      method: 'POST',
      body: JSON.stringify({ backup_id: full, as_instance: 'restful-c' }),
    });
    expect(restored.status).toBe(202);
    const body = (await restored.json()) as { instance: { name: string; status: string }; restore: { id: string; to_backup_id: string } };
    expect(body.instance).toMatchObject({ name: 'restful-c', status: 'RESTORING' });
    expect(body.restore.to_backup_id).toBe(full);
    await eventually(
      async () => ((await (await call(`/v1/postgres/instances/restful-c/restores/${body.restore.id}`)).json()) as { state: string }).state === 'succeeded',
      5000,
      'REST restore',
    );
    expect((await fetch(url('/v1/postgres/instances/restful-b/backups'))).status).toBe(401);
    const doc = (await (await fetch(url('/openapi.json'))).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/postgres/instances/{uuid}/backups',
        '/v1/postgres/instances/{uuid}/backups/{backup_id}',
        '/v1/postgres/instances/{uuid}/restore',
        '/v1/postgres/instances/{uuid}/restores/{restore_id}',
      ]),
    );
  });
});

describe('without a repository', () => {
  it('answers every backup call FAILED_PRECONDITION with what to do, and GetTenant shows no backup overview', async () => {
    const plain = await startHarness();
    try {
      const a = new FakeAgent({ hostId: 'nb1', address: '127.0.0.90', coordinator: plain.coordinator.grpcAddress, autoRealize: true });
      agents.push(a);
      await a.connect();
      await plain.operator.createTenant({ id: 'nobackup' });
      await eventually(async () => (await plain.operator.getTenant({ id: 'nobackup' })).tenant?.status === TenantStatus.ACTIVE, 5000, 'ACTIVE');
      expect((await plain.operator.getTenant({ id: 'nobackup' })).backup).toBeUndefined();
      expect(a.welcome?.backupRepository).toBeUndefined();
      expect(a.instances.get('nobackup')?.backup).toBeUndefined();
      for (const p of [
        plain.operator.createBackup({ tenantId: 'nobackup' }),
        plain.operator.listBackups({ tenantId: 'nobackup' }),
        plain.operator.restoreTenant({ id: 'nobackup', target: { case: 'latest', value: true } }),
        plain.operator.recreateTenant({ id: 'nobackup', fromBackup: true }),
      ]) {
        const err = await rpcError(p);
        expect(err.code).toBe(Code.FAILED_PRECONDITION);
        expect(err.message).toBe('no backup repository is configured; start the coordinator with --backup-repo');
      }
      expect(a.received('nobackup', 'runBackup')).toEqual([]);
    } finally {
      await plain.stop();
    }
  });
});

describe('restores resume', () => {
  it('survive a coordinator restart, and move off a host that died before the restored instance ran', async () => {
    const dir = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'pgs-repo-'));
    const flags = ['--backup-repo', `posix:${dir}`];
    let first: Harness | undefined = await startHarness(flags);
    const dataDir = first.dataDir;
    const connect = async (hx: Harness, hostId: string, address: string): Promise<FakeAgent> => {
      const a = new FakeAgent({ hostId, address, coordinator: hx.coordinator.grpcAddress, autoRealize: true, labels: { pool: 'resume' } });
      agents.push(a);
      await a.connect();
      await eventually(async () => (await hx.coordinator.ctx.store.read.hosts.get(hostId))?.state === 'READY', 3000, `${hostId} READY`);
      return a;
    };
    let second: Harness | undefined;
    try {
      const x = await connect(first, 'rs1', '127.0.0.101');
      const y = await connect(first, 'rs2', '127.0.0.102');
      await first.operator.createTenant({ id: 'resume', spec: { placement: { pool: 'resume' } } });
      await eventually(
        async () => (await first!.operator.listBackups({ tenantId: 'resume' })).backups.some((b) => b.status === BackupStatus.SUCCEEDED),
        5000,
        'backed up',
      );
      x.recoveryMode = { hang: true };
      y.recoveryMode = { hang: true };
      const { restore } = await first.operator.restoreTenant({ id: 'resume', target: { case: 'latest', value: true }, asTenantId: 'resume-copy' });
      const target = restore?.hostId ?? '';
      await eventually(() => [x, y].some((a) => a.instances.has('resume-copy')), 3000, 'restore sent');
      await x.close();
      await y.close();
      await first.stop();
      first = undefined;
      // The restarted coordinator has only the other host back: the restore's host never returns.
      second = await startHarness(flags, dataDir);
      const other = target === 'rs1' ? 'rs2' : 'rs1';
      const survivor = await connect(second, other, other === 'rs1' ? '127.0.0.101' : '127.0.0.102');
      const done = await eventually(
        async () => {
          const r = (await second!.operator.getRestore({ tenantId: 'resume-copy', id: restore?.id ?? '' })).restore;
          return r?.state === RestoreState.SUCCEEDED ? r : undefined;
        },
        8000,
        'restore resumed elsewhere',
      );
      expect(done.hostId).toBe(other);
      expect(survivor.instances.get('resume-copy')?.restore?.restoreId).toBe(restore?.id);
      const actions = (await second.operator.listEvents({ tenantId: 'resume-copy', limit: 1000 })).events.map((e) => e.action);
      expect(actions).toContain('restore.replaced');
    } finally {
      await first?.stop();
      await second?.stop();
    }
  });
});
