// Backups and point-in-time recovery at the agent level, with real PostgreSQL and real pgBackRest:
// an in-process agent (process runtime, instance manager, agent loop) under a fake coordinator on
// real gRPC, a posix repository in a temp dir with encryption on. The coordinator's side is the
// fake: it names the repository in Welcome, sends specs with `backup`/`restore` and RunBackup.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs, timestampMs } from '@bufbuild/protobuf/wkt';
import {
  BackupType,
  InstanceState,
  Realization,
  RunState,
  type BackupRepositorySchema,
  type CommandResult,
  type InstanceSpecSchema,
  type RestoreSourceSchema,
} from '@pgs/proto';
import { postgresRunAs } from '../runtime/os-user.js';
import { FakeCoordinator, ownerSpec } from '../testing/fake-coordinator.js';
import { startTestAgent, type TestAgent } from '../testing/test-agent.js';
import { sql, tempDataRoot, uniqueTenantId, waitFor } from '../testing/test-env.js';

const ADDRESS = `127.0.${100 + crypto.randomInt(0, 100)}.21`;
const CIPHER = `cipher-${crypto.randomBytes(8).toString('hex')}`;

describe('backups and point-in-time recovery (real PostgreSQL, real pgBackRest)', () => {
  const dataRoot = tempDataRoot();
  const repoDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-backup-repo-'));
  const source = uniqueTenantId('b');
  let fake: FakeCoordinator;
  let agent: TestAgent;
  let revision = 1n;
  const repository = (cipherPass: string, keyId: string): MessageInitShape<typeof BackupRepositorySchema> => ({
    kind: { case: 'posix', value: { path: repoDir } },
    cipherPass,
    keyId,
  });
  const withBackup = (
    tenantId: string,
    extra: { specRevision?: bigint; restore?: MessageInitShape<typeof RestoreSourceSchema> } = {},
  ): MessageInitShape<typeof InstanceSpecSchema> => {
    const overrides: Partial<MessageInitShape<typeof InstanceSpecSchema>> = { backup: { stanza: tenantId, archiveTimeoutSeconds: 60, retentionDays: 7 } };
    if (extra.specRevision !== undefined) overrides.specRevision = extra.specRevision;
    if (extra.restore) overrides.restore = extra.restore;
    return ownerSpec(tenantId, 'owner-secret', overrides);
  };
  const admin = (tenantId: string): pg.ClientConfig => agent.runtime.adminConnection(tenantId, tenantId);

  async function command(tenantId: string, action: Parameters<FakeCoordinator['command']>[0]['action'], timeoutMs = 120_000): Promise<CommandResult> {
    const commandId = crypto.randomUUID();
    await fake.command({ commandId, tenantId, action });
    return waitFor(`command ${commandId}`, () => fake.result(commandId), timeoutMs, 50);
  }

  const backup = (tenantId: string, type: BackupType) =>
    command(tenantId, { case: 'runBackup', value: { backupId: crypto.randomUUID(), type, stanza: tenantId } });

  /** The last report of `tenantId` with a recovery result for `restoreId`. */
  const recoveryOf = (tenantId: string, restoreId: string) => () => {
    const s = fake.latest(tenantId);
    return s?.recovery?.restoreId === restoreId ? s : undefined;
  };

  beforeAll(async () => {
    const pgUser = postgresRunAs('postgres');
    fs.chmodSync(repoDir, 0o700);
    if (pgUser) fs.chownSync(repoDir, pgUser.uid, pgUser.gid);
    fake = await FakeCoordinator.start(200, 60_000);
    fake.backupRepository = repository(CIPHER, 'fleet-key-1');
    agent = await startTestAgent({ coordinator: fake.address, dataRoot, hostId: 'hb', address: ADDRESS });
    await waitFor('agent connected', () => fake.connected);
  });

  afterAll(async () => {
    await agent?.stop({ removeInstances: true });
    await fake?.stop();
    fs.rmSync(dataRoot, { recursive: true, force: true });
    fs.rmSync(repoDir, { recursive: true, force: true });
  }, 120_000);

  let fullLabel = '';
  let fullStoppedMs = 0;
  let before: { n: number }[] = [];
  let targetMs = 0;

  it('archives into the tenant stanza and takes a full backup on RunBackup', async () => {
    await fake.desired({ instances: [withBackup(source)] });
    await waitFor('source running', () => fake.running(source), 60_000);
    const conf = path.join(dataRoot, 'instances', source, 'pgbackrest.conf');
    const st = fs.statSync(conf);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(postgresRunAs('postgres')?.uid ?? process.getuid?.());
    expect(fs.readFileSync(conf, 'utf8')).toContain(`repo1-cipher-pass=${CIPHER}`);
    const [settings] = await sql<{ mode: string; command: string }>(
      admin(source),
      "select current_setting('archive_mode') as mode, current_setting('archive_command') as command",
    );
    expect(settings?.mode).toBe('on');
    expect(settings?.command).toBe(`pgbackrest --config=${conf} --stanza=${source} archive-push %p`);

    const started = performance.now();
    const result = await backup(source, BackupType.FULL);
    const fullMs = performance.now() - started;
    console.log(`full backup of a fresh instance (RunBackup -> CommandResult): ${fullMs.toFixed(0)} ms`);
    expect(result.message).toBe('');
    expect(result.ok).toBe(true);
    const b = result.backup;
    expect(b?.label).toMatch(/^\d{8}-\d{6}F$/);
    expect(b?.type).toBe(BackupType.FULL);
    expect(b?.priorLabel).toBe('');
    expect(Number(b?.sizeBytes)).toBeGreaterThan(1_000_000);
    expect(Number(b?.repoSizeBytes)).toBeGreaterThan(0);
    expect(Number(b?.stanzaRepoSizeBytes)).toBe(Number(b?.repoSizeBytes));
    expect(b?.lsnStart).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(b?.lsnStop).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(b?.timeline).toBe(1);
    expect(b?.archiveMaxWal).toMatch(/^00000001[0-9A-F]{16}$/);
    expect(b && timestampMs(b.finishedAt ?? timestampFromMs(0))).toBeGreaterThanOrEqual(b ? timestampMs(b.startedAt ?? timestampFromMs(0)) : 0);
    fullLabel = b?.label ?? '';
    fullStoppedMs = b?.finishedAt ? timestampMs(b.finishedAt) : 0;
    // The secret never reaches a report.
    expect(JSON.stringify(fake.statuses.map((s) => s.reason))).not.toContain(CIPHER);
  }, 180_000);

  it('writes rows, archives the segment holding them, reports it in the archive status, takes a diff backup', async () => {
    const db = admin(source);
    // pgBackRest restores to a time from a backup that stopped in an earlier second than the target.
    await waitFor('a second after the full backup stopped', () => Date.now() >= fullStoppedMs + 1100, 5000, 10);
    await sql(db, 'create table notes (n int primary key, at timestamptz not null default clock_timestamp())');
    for (let n = 1; n <= 3; n++) await sql(db, `insert into notes (n) values (${n})`);
    before = await sql<{ n: number }>(db, 'select n from notes order by n');
    targetMs = Date.now() + 5;
    await waitFor('the clock past the target', () => Date.now() > targetMs + 20, 2000, 5);
    for (let n = 4; n <= 6; n++) await sql(db, `insert into notes (n) values (${n})`);
    const committedAt = Date.now();
    // Its own statement: inside the same transaction as writes the commit would land in the next segment.
    const [switched] = await sql<{ wal: string }>(db, 'select pg_walfile_name(pg_switch_wal()) as wal');
    const wal = switched?.wal ?? '';
    await waitFor(
      `segment ${wal} archived`,
      async () => {
        const [row] = await sql<{ last: string | null }>(db, 'select last_archived_wal as last from pg_stat_archiver');
        return row?.last !== null && row?.last !== undefined && row.last >= wal;
      },
      60_000,
      100,
    );
    // The window ends at a look at the primary whose commits are all archived: the server is quiet
    // after the switch, so looks after it are covered, whatever records of its own it writes.
    const reported = await waitFor(
      'archive status reported, archived through the commit of rows 4-6',
      () => {
        const a = fake.latest(source)?.health?.archive;
        return a && a.lastArchivedWal >= wal && a.archivedThrough && timestampMs(a.archivedThrough) >= committedAt ? a : undefined;
      },
      30_000,
      500,
    );
    expect(timestampMs(reported.archivedThrough!)).toBeLessThanOrEqual(Date.now());
    expect(reported.enabled).toBe(true);
    expect(Number(reported.archivedCount)).toBeGreaterThan(0);
    expect(reported.lastArchivedAt).toBeDefined();

    const diff = await backup(source, BackupType.DIFF);
    expect(diff.message).toBe('');
    expect(diff.ok).toBe(true);
    expect(diff.backup?.type).toBe(BackupType.DIFF);
    expect(diff.backup?.label).toMatch(/^\d{8}-\d{6}F_\d{8}-\d{6}D$/);
    expect(diff.backup?.priorLabel).toBe(fullLabel);
    expect(Number(diff.backup?.stanzaRepoSizeBytes)).toBeGreaterThan(Number(diff.backup?.repoSizeBytes));
  }, 180_000);

  it('restores to a time into a new instance: exactly the rows before it, archiving into its own stanza', async () => {
    const target = uniqueTenantId('r');
    const restoreId = `restore-${target}`;
    const started = performance.now();
    await fake.desired({
      instances: [withBackup(target, { restore: { restoreId, stanza: source, target: { case: 'time', value: timestampFromMs(targetMs) } } })],
    });
    const outcome = await waitFor('restore outcome', recoveryOf(target, restoreId), 240_000, 50);
    expect(outcome.recovery?.message).toBe('');
    const status = await waitFor('restored instance running', () => fake.running(target), 60_000, 50);
    console.log(`restore to a time + recovery (desired -> running primary): ${(performance.now() - started).toFixed(0)} ms`);
    const r = status.recovery;
    expect(r?.message).toBe('');
    expect(r?.ok).toBe(true);
    expect(r?.restoreId).toBe(restoreId);
    expect(r?.timeline).toBe(2);
    expect(r?.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(r?.archiveMaxWal).toMatch(/^00000001[0-9A-F]{16}$/);
    const lastBefore = await sql<{ ms: string }>(admin(source), 'select floor(extract(epoch from max(at)) * 1000)::bigint::text as ms from notes where n <= 3');
    const commitMs = r?.commitTime ? timestampMs(r.commitTime) : 0;
    expect(commitMs).toBeLessThanOrEqual(targetMs);
    // The commit of row 3 happens just after its clock_timestamp() default was taken.
    expect(commitMs).toBeGreaterThanOrEqual(Number(lastBefore[0]?.ms ?? 0));
    expect(commitMs - Number(lastBefore[0]?.ms ?? 0)).toBeLessThan(1000);
    expect(status.health?.role).toBeDefined();

    // The restored instance has the source's databases (and the one its own spec asks for).
    const restoredDb = agent.runtime.adminConnection(target, source);
    expect(await sql<{ n: number }>(restoredDb, 'select n from notes order by n')).toEqual(before);
    const [settings] = await sql<{ command: string; recovery: boolean; restore: string }>(
      restoredDb,
      "select current_setting('archive_command') as command, pg_is_in_recovery() as recovery, current_setting('restore_command') as restore",
    );
    expect(settings?.command).toContain(`--stanza=${target} `);
    expect(settings?.command).not.toContain(`--stanza=${source} `);
    expect(settings?.recovery).toBe(false);
    // The recovery settings are gone from postgresql.auto.conf (read again at the next start), as is the restore's config.
    const auto = fs.readFileSync(path.join(dataRoot, 'instances', target, 'data', 'postgresql.auto.conf'), 'utf8');
    expect(auto).not.toMatch(/restore_command|recovery_target/);
    expect(fs.existsSync(path.join(dataRoot, 'instances', target, 'restore.conf'))).toBe(false);
    // Its own stanza is made once it runs; the source's archive never gets the new timeline.
    await waitFor('stanza of the restored instance', () => fs.existsSync(path.join(repoDir, 'archive', target, 'archive.info')), 60_000, 100);
    await sql(restoredDb, 'insert into notes (n) values (100)');
    await sql(restoredDb, 'select pg_switch_wal()');
    await waitFor(
      'restored instance archives',
      async () => {
        const [row] = await sql<{ failed: string; last: string | null }>(
          restoredDb,
          'select failed_count::text as failed, last_archived_wal as last from pg_stat_archiver',
        );
        return (row?.last ?? '').startsWith('00000002');
      },
      60_000,
      100,
    );
    const sourceArchive = fs.readdirSync(path.join(repoDir, 'archive', source), { recursive: true }).map(String);
    expect(sourceArchive.filter((f) => path.basename(f).startsWith('00000002'))).toEqual([]);
    expect(
      fs
        .readdirSync(path.join(repoDir, 'archive', target), { recursive: true })
        .map(String)
        .some((f) => path.basename(f).startsWith('00000002')),
    ).toBe(true);
  }, 360_000);

  it('refuses a target after the end of the archive and says how far the archive reaches', async () => {
    const target = uniqueTenantId('r');
    const restoreId = `restore-${target}`;
    await fake.desired({
      instances: [withBackup(target, { restore: { restoreId, stanza: source, target: { case: 'time', value: timestampFromMs(Date.now() + 3600_000) } } })],
    });
    const status = await waitFor('restore failure', recoveryOf(target, restoreId), 120_000, 50);
    expect(status.recovery?.ok).toBe(false);
    expect(status.recovery?.errorCode).toBe('RESTORE_TARGET_NOT_REACHED');
    expect(status.recovery?.message).toContain('recovery ended before configured recovery target was reached');
    expect(status.recovery?.message).toMatch(/the archive reaches \d{4}-\d\d-\d\dT/);
    expect(status.state).toBe(InstanceState.FAILED);
    expect(status.realization).toBe(Realization.FAILED);
    // Nothing half-restored is left behind.
    expect(fs.existsSync(path.join(dataRoot, 'instances', target))).toBe(false);
    // Later reports (health rounds, steady reports) keep saying why, and it is not tried again.
    const seen = fake.statuses.length;
    await waitFor('later reports of the failed restore', () => fake.statuses.slice(seen).filter((s) => s.tenantId === target).length >= 2, 10_000);
    expect(fake.latest(target)?.reason).toMatch(/^restore failed: recovery ended before configured recovery target was reached/);
    expect(fs.existsSync(path.join(dataRoot, 'instances', target))).toBe(false);
  }, 180_000);

  it('refuses a restore onto an instance that exists, and keeps serving it', async () => {
    const restoreId = `restore-onto-${source}`;
    revision += 1n;
    await fake.desired({
      instances: [withBackup(source, { specRevision: revision, restore: { restoreId, stanza: source, target: { case: 'latest', value: true } } })],
    });
    const status = await waitFor('restore refusal', recoveryOf(source, restoreId), 60_000, 50);
    expect(status.recovery?.ok).toBe(false);
    expect(status.recovery?.errorCode).toBe('RESTORE_REFUSED');
    await waitFor('source realized at the new revision', () => fake.running(source, Number(revision)), 30_000);
    expect((await sql<{ n: number }>(admin(source), 'select count(*)::int as n from notes'))[0]?.n).toBe(6);
  }, 120_000);

  it('a wrong repository key fails the restore with BACKUP_KEY naming the key, and archiving fails visibly while the instance stays up', async () => {
    fake.backupRepository = repository('not-the-fleet-key', 'fleet-key-2');
    const streams = fake.streams;
    fake.dropStream();
    await waitFor('agent reconnected', () => fake.streams > streams && fake.connected, 30_000);
    const target = uniqueTenantId('r');
    const restoreId = `restore-${target}`;
    await fake.desired({ instances: [withBackup(target, { restore: { restoreId, stanza: source, target: { case: 'latest', value: true } } })] });
    const status = await waitFor('restore failure', recoveryOf(target, restoreId), 120_000, 50);
    expect(status.recovery?.ok).toBe(false);
    expect(status.recovery?.errorCode, status.recovery?.message).toBe('BACKUP_KEY');
    expect(status.recovery?.message).toContain('fleet-key-2');
    expect(status.recovery?.message).not.toContain('not-the-fleet-key');

    // The source now archives with the wrong key: PostgreSQL keeps the WAL and retries; it is all in the report.
    await waitFor(
      'source config has the new key',
      () => fs.readFileSync(path.join(dataRoot, 'instances', source, 'pgbackrest.conf'), 'utf8').includes('not-the-fleet-key'),
      30_000,
    );
    await sql(admin(source), 'insert into notes (n) values (7)');
    await sql(admin(source), 'select pg_switch_wal()');
    // An async archiver started before the change may still push a segment with the old key: switch
    // again now and then until one fails.
    let switchedAt = Date.now();
    const archive = await waitFor(
      'archive failures reported',
      async () => {
        const a = fake.latest(source)?.health?.archive;
        if (a && Number(a.failedCount) > 0 && a.pendingSegments > 0) return a;
        if (Date.now() - switchedAt > 10_000) {
          switchedAt = Date.now();
          // A WAL record that changes no data, so the switch has a segment to close.
          await sql(admin(source), "select pg_logical_emit_message(false, 'pgs-test', 'x')");
          await sql(admin(source), 'select pg_switch_wal()');
        }
        return undefined;
      },
      120_000,
      100,
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}; last archive status: ${JSON.stringify(fake.latest(source)?.health?.archive, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`,
      );
    });
    expect(archive.lastFailedWal).toMatch(/^[0-9A-F]{24}$/);
    expect(Number(archive.pendingBytes)).toBeGreaterThan(0);
    expect(fake.running(source)).toBeDefined();
    // RunBackup with the wrong key fails with the same code.
    const failed = await backup(source, BackupType.INCR);
    expect(failed.ok).toBe(false);
    expect(failed.errorCode, failed.message).toBe('BACKUP_KEY');

    // The right key again: the waiting WAL goes out.
    fake.backupRepository = repository(CIPHER, 'fleet-key-1');
    const again = fake.streams;
    fake.dropStream();
    await waitFor('agent reconnected', () => fake.streams > again && fake.connected, 30_000);
    await waitFor(
      'waiting WAL archived',
      () => {
        const a = fake.latest(source)?.health?.archive;
        return a && a.pendingSegments === 0 && a.lastArchivedWal >= archive.lastFailedWal ? a : undefined;
      },
      90_000,
      100,
    );
  }, 300_000);

  it('restarts an instance that gains backups once, and answers RunBackup on a stopped one with NOT_PRIMARY', async () => {
    const tenant = uniqueTenantId('g');
    await fake.desired({ instances: [ownerSpec(tenant, 'owner-secret')] });
    const plain = await waitFor('plain instance running', () => fake.running(tenant), 60_000);
    expect((await sql<{ mode: string }>(admin(tenant), "select current_setting('archive_mode') as mode"))[0]?.mode).toBe('off');
    await fake.desired({ instances: [withBackup(tenant, { specRevision: 2n })] });
    const gained = await waitFor('instance restarted with archiving', () => fake.running(tenant, 2), 60_000);
    expect(gained.pid).not.toBe(plain.pid);
    expect((await sql<{ mode: string }>(admin(tenant), "select current_setting('archive_mode') as mode"))[0]?.mode).toBe('on');
    await waitFor('stanza of the instance that gained backups', () => fs.existsSync(path.join(repoDir, 'archive', tenant, 'archive.info')), 60_000, 100);

    const stopped = withBackup(tenant, { specRevision: 3n });
    stopped.runState = RunState.STOPPED;
    await fake.desired({ instances: [stopped] });
    await waitFor('instance stopped', () => fake.latest(tenant)?.state === InstanceState.STOPPED && Number(fake.latest(tenant)?.specRevision) === 3, 60_000);
    const refused = await backup(tenant, BackupType.FULL);
    expect(refused.ok).toBe(false);
    expect(refused.errorCode).toBe('NOT_PRIMARY');
    expect(refused.message).toContain('not a running primary');
  }, 180_000);

  it('restores a backup by its label and to the end of the archive; expires a backup with what depends on it', async () => {
    const byLabel = uniqueTenantId('r');
    const latest = uniqueTenantId('r');
    await fake.desired({
      instances: [
        withBackup(byLabel, { restore: { restoreId: `restore-${byLabel}`, stanza: source, target: { case: 'backupLabel', value: fullLabel } } }),
        withBackup(latest, { restore: { restoreId: `restore-${latest}`, stanza: source, target: { case: 'latest', value: true } } }),
      ],
    });
    const [a, b] = await Promise.all([
      waitFor('restore by label', recoveryOf(byLabel, `restore-${byLabel}`), 240_000, 50),
      waitFor('restore to the end', recoveryOf(latest, `restore-${latest}`), 240_000, 50),
    ]);
    expect(a.recovery?.message).toBe('');
    expect(b.recovery?.message).toBe('');
    expect(a.recovery?.timeline).toBe(2);
    // The full backup was taken before the table existed; the end of the archive has every archived row.
    expect(await sql<{ t: string | null }>(agent.runtime.adminConnection(byLabel, source), "select to_regclass('notes')::text as t")).toEqual([{ t: null }]);
    expect((await sql<{ n: number }>(agent.runtime.adminConnection(latest, source), 'select n from notes order by n')).map((r) => r.n)).toEqual([
      1, 2, 3, 4, 5, 6, 7,
    ]);

    const second = await backup(source, BackupType.FULL);
    expect(second.ok).toBe(true);
    const expired = await command(source, { case: 'expireBackup', value: { stanza: source, label: fullLabel } });
    expect(expired.message).toBe('');
    expect(expired.ok).toBe(true);
    const left = fs.readdirSync(path.join(repoDir, 'backup', source)).filter((f) => /^\d{8}-\d{6}F/.test(f));
    expect(left).toEqual([second.backup?.label]);
  }, 360_000);

  it('answers RunBackup for a tenant it does not run with INSTANCE_NOT_FOUND', async () => {
    const result = await backup(uniqueTenantId('none'), BackupType.FULL);
    expect(result.ok).toBe(false);
    expect(result.errorCode).toBe('INSTANCE_NOT_FOUND');
  });
});
