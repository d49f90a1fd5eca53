import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  ArchiveStatusSchema,
  BackupOverviewSchema,
  BackupSchema,
  BackupStatus,
  BackupType,
  RestoreSchema,
  RestoreState,
  TenantSchema,
  TenantStatus,
} from '@pgs/proto';
import { describe, expect, it } from 'vitest';
import { archiveLine, backupSummary, renderBackup, renderBackupOverview, restoreOutcome, restoreProgress, windowLine } from './backup-details.js';
import { renderTable } from './output.js';
import { backupColumns } from './tables.js';
import { renderTenantDetails } from './tenant-details.js';
import { archiveStatusView, backupOverviewView, backupView, recoveryWindowView, restoreView, tenantView } from './views.js';

const NOW = Date.parse('2026-12-06T12:00:00Z');
const at = (iso: string) => timestampFromDate(new Date(iso));

const full = create(BackupSchema, {
  id: 'b-20261206-101500-acme-1',
  tenantId: 'acme',
  type: BackupType.FULL,
  status: BackupStatus.SUCCEEDED,
  hostId: 'h1',
  label: '20261206-101500F',
  startedAt: at('2026-12-06T10:15:00Z'),
  finishedAt: at('2026-12-06T10:15:42Z'),
  sizeBytes: 1_288_490_189n,
  repoSizeBytes: 327_155_712n,
  lsnStart: '0/2000028',
  lsnStop: '0/2000138',
  timeline: 1,
  trigger: 'schedule',
  stanza: 'acme',
});
const running = create(BackupSchema, {
  id: 'b-20261206-115800-acme-2',
  tenantId: 'acme',
  type: BackupType.DIFF,
  status: BackupStatus.RUNNING,
  hostId: 'h1',
  startedAt: at('2026-12-06T11:58:00Z'),
  lsnStart: '0/5000028',
  trigger: 'operator:admin',
  priorLabel: '20261206-101500F',
});
const failed = create(BackupSchema, {
  id: 'b-20261205-101500-acme-0',
  tenantId: 'acme',
  type: BackupType.INCR,
  status: BackupStatus.FAILED,
  reason: 'the primary moved to h2',
  hostId: 'h1',
  startedAt: at('2026-12-05T10:15:00Z'),
  finishedAt: at('2026-12-05T10:16:00Z'),
  trigger: 'schedule',
});
const window = { earliest: at('2026-12-06T10:15:42Z'), latest: at('2026-12-06T11:59:30.250Z') };

describe('backup list', () => {
  it("tabulates backups: sizes and LSN range once known, a running one's time so far", () => {
    const table = renderTable(backupColumns(NOW), [running, full, failed].map(backupView));
    expect(table.split('\n')).toEqual([
      'ID                        TYPE  STATUS     STARTED               FINISHED              DURATION     SIZE  REPO SIZE  LSN RANGE             TRIGGER',
      'b-20261206-115800-acme-2  diff  RUNNING    2026-12-06T11:58:00Z  -                       2m00s+        -          -  0/5000028..?          operator:admin',
      'b-20261206-101500-acme-1  full  SUCCEEDED  2026-12-06T10:15:00Z  2026-12-06T10:15:42Z     42.0s  1.2 GiB    312 MiB  0/2000028..0/2000138  schedule',
      'b-20261205-101500-acme-0  incr  FAILED     2026-12-05T10:15:00Z  2026-12-05T10:16:00Z     1m00s        -          -  -                     schedule',
      '',
    ]);
    expect(renderTable(backupColumns(NOW), [backupView(failed)], { wide: true })).toContain('the primary moved to h2');
  });

  it('says from when to when a tenant can be restored, keeping the milliseconds a --to-time needs', () => {
    expect(windowLine(recoveryWindowView(create(BackupOverviewSchema, { window }).window), 'acme')).toBe(
      'restorable from 2026-12-06T10:15:42Z to 2026-12-06T11:59:30.250Z (1h43m)',
    );
    expect(recoveryWindowView(undefined)).toBeNull();
    expect(windowLine(null, 'acme')).toBe('not restorable yet: tenant acme has no successful backup (take one: pgsctl backup create acme --wait)');
  });
});

describe('backup get and --wait', () => {
  it('shows every field of a backup', () => {
    const text = renderBackup(backupView(full), NOW);
    expect(text).toMatch(/^Status:\s+SUCCEEDED$/m);
    expect(text).toMatch(/^Finished:\s+2026-12-06T10:15:42Z \(104m ago\)$/m);
    expect(text).toMatch(/^Repository size:\s+312 MiB$/m);
    expect(text).toMatch(/^WAL:\s+0\/2000028\.\.0\/2000138 on timeline 1$/m);
    expect(text).toMatch(/^Depends on:\s+nothing \(full\)$/m);
    expect(renderBackup(backupView(failed), NOW)).toMatch(/^Status:\s+FAILED: the primary moved to h2$/m);
  });

  it('sums up a finished backup in one line', () => {
    expect(backupSummary(backupView(full), NOW)).toBe('full backup b-20261206-101500-acme-1 SUCCEEDED, 1.2 GiB (312 MiB in the repository) in 42.0s');
    expect(backupSummary(backupView(failed), NOW)).toBe('incr backup b-20261205-101500-acme-0 FAILED in 1m00s');
  });
});

describe('the Backups section of tenant get', () => {
  const tenant = tenantView(create(TenantSchema, { id: 'acme', status: TenantStatus.ACTIVE, spec: { nodes: 1 } }));
  const archive = create(ArchiveStatusSchema, {
    enabled: true,
    archivedCount: 42n,
    lastArchivedWal: '000000010000000000000005',
    lastArchivedAt: at('2026-12-06T11:59:30Z'),
    failedCount: 2n,
    lastFailedWal: '000000010000000000000004',
    lastFailedAt: at('2026-12-06T11:00:00Z'),
    pendingSegments: 3,
    pendingBytes: 50_331_648n,
    lagSeconds: 95,
  });

  it('shows the policy in force, the window, the last good and running backups, archiving and problems', () => {
    const overview = backupOverviewView(
      create(BackupOverviewSchema, {
        policy: { fullIntervalSeconds: 604_800n, diffIntervalSeconds: 86_400n, retentionSeconds: 604_800n, archiveTimeoutSeconds: 60 },
        window,
        lastGood: full,
        running,
        archive,
        problems: ['WAL archiving failed 2 times, last at 2026-12-06T11:00:00Z: the repository refused the segment'],
      }),
    );
    expect(renderBackupOverview(overview, tenant, NOW).split('\n')).toEqual([
      'Policy:            full every 1w, diff every 1d, incr never; restorable for 1w; archive_timeout 1m',
      'Recovery window:   restorable from 2026-12-06T10:15:42Z to 2026-12-06T11:59:30.250Z (1h43m)',
      'Last good backup:  b-20261206-101500-acme-1, full, finished 2026-12-06T10:15:42Z (104m ago), 1.2 GiB',
      'Running:           b-20261206-115800-acme-2, diff, started 2026-12-06T11:58:00Z (2m ago) on h1',
      'WAL archiving:     on; last 000000010000000000000005 at 2026-12-06T11:59:30Z (30s ago); 2 failed (last 000000010000000000000004 at 2026-12-06T11:00:00Z (60m ago)); 3 segments (48 MiB) waiting, oldest commit 95s old',
      'Problems:          1',
      '  ! WAL archiving failed 2 times, last at 2026-12-06T11:00:00Z: the repository refused the segment',
      '',
    ]);
  });

  it('says when there is nothing yet, and when the fleet has no repository', () => {
    const empty = backupOverviewView(create(BackupOverviewSchema, { policy: { disabled: true } }));
    const text = renderBackupOverview(empty, tenant, NOW);
    expect(text).toMatch(/^Policy:\s+disabled: no scheduled backups and no WAL archiving$/m);
    expect(text).toMatch(/^Recovery window:\s+not restorable yet/m);
    expect(text).toMatch(/^Last good backup:\s+none$/m);
    expect(text).toMatch(/^WAL archiving:\s+unknown/m);
    expect(text).toMatch(/^Problems:\s+none$/m);
    expect(renderBackupOverview(null, tenant, NOW)).toBe('Policy:  fleet defaults (not in force: the fleet has no backup repository)\n');
    expect(archiveLine(archiveStatusView(create(ArchiveStatusSchema, { enabled: false })), NOW)).toBe('off');
    expect(archiveLine(archiveStatusView(create(ArchiveStatusSchema, { enabled: true })), NOW)).toBe('on; nothing archived yet; 0 failed; nothing waiting');
  });

  it('is part of tenant get, after the databases, and RESTORING reads like any status', () => {
    const restoring = tenantView(
      create(TenantSchema, { id: 'acme-x', status: TenantStatus.RESTORING, statusReason: 'recovering WAL on h2', spec: { nodes: 1 } }),
    );
    const text = renderTenantDetails({ tenant: restoring, route: null, users: [], databases: [], recentEvents: [], backup: null }, NOW, false);
    expect(text).toMatch(/^Status:\s+RESTORING: recovering WAL on h2$/m);
    expect(text).toMatch(/\nDatabases:\n {2}none\n\nBackups:\n {2}Policy: {2}fleet defaults/);
  });
});

describe('restores', () => {
  const restored = create(RestoreSchema, {
    id: 'r-7',
    sourceTenantId: 'acme',
    targetTenantId: 'acme-before',
    state: RestoreState.SUCCEEDED,
    toTime: at('2026-12-06T10:30:00Z'),
    hostId: 'h2',
    recoveredLsn: '0/3000060',
    recoveredTime: at('2026-12-06T10:29:58.120Z'),
    timeline: 2,
  });
  const target = tenantView(create(TenantSchema, { id: 'acme-before', status: TenantStatus.ACTIVE, spec: { nodes: 1, externalAccess: false } }));

  it('tells the recovery point, how to enable access and how users of the new tenant log in', () => {
    expect(restoreOutcome(restoreView(restored), target, { recreate: false })).toBe(
      'restore r-7 SUCCEEDED: tenant acme-before holds the data of tenant acme (asked: the time 2026-12-06T10:30:00Z)\n' +
        'recovery point: LSN 0/3000060, last commit 2026-12-06T10:29:58.120Z, timeline 2\n' +
        'external access is off: pgsctl tenant access enable acme-before\n' +
        'connect: pgsctl connect acme-before --user acme --database acme  (its users log in as <user>.acme-before, e.g. acme.acme-before)\n',
    );
  });

  it('tells a recreate from backup what WAL was lost', () => {
    const recreated = create(RestoreSchema, {
      id: 'r-8',
      sourceTenantId: 'acme',
      targetTenantId: 'acme',
      state: RestoreState.SUCCEEDED,
      latest: true,
      hostId: 'h3',
      recoveredLsn: '0/7000000',
      recoveredTime: at('2026-12-06T11:50:00Z'),
      missingWalBytes: 16_777_216n,
    });
    const acme = tenantView(create(TenantSchema, { id: 'acme', status: TenantStatus.ACTIVE, spec: { nodes: 1, externalAccess: true } }));
    expect(restoreOutcome(restoreView(recreated), acme, { recreate: true })).toBe(
      'restore r-8 SUCCEEDED: tenant acme re-created on h3 from its backup (asked: the latest archived WAL)\n' +
        'recovery point: LSN 0/7000000, last commit 2026-12-06T11:50:00Z\n' +
        'missing WAL: 16 MiB (16777216 bytes) the old primary had written never reached the repository: commits in it are lost\n' +
        'connect: pgsctl connect acme\n',
    );
    const complete = restoreView(create(RestoreSchema, { ...recreated, missingWalBytes: 0n }));
    expect(restoreOutcome(complete, acme, { recreate: true })).toContain('missing WAL: none known (every WAL the old primary reported was archived)\n');
  });

  it("shows progress with the restore's reason and the target tenant's status", () => {
    const runningRestore = restoreView(
      create(RestoreSchema, { id: 'r-7', targetTenantId: 'acme-before', state: RestoreState.RUNNING, reason: 'recovering WAL', hostId: 'h2' }),
    );
    const restoring = tenantView(create(TenantSchema, { id: 'acme-before', status: TenantStatus.RESTORING, statusReason: 'recovering WAL' }));
    expect(restoreProgress(runningRestore, restoring)).toBe('restore r-7 into acme-before: RUNNING on h2 (recovering WAL); tenant RESTORING');
    expect(restoreProgress(runningRestore, undefined)).toBe('restore r-7 into acme-before: RUNNING on h2 (recovering WAL)');
  });
});
