/**
 * The human renderings of backups and restores: the recovery window line of `backup list`, the
 * fields of `backup get`, the Backups section of `tenant get`, and the lines `--wait` prints while
 * a backup or restore runs and once it ends.
 */
import { describeBackupPolicy } from './backup-policy.js';
import { formatAge, formatBytes, formatDuration, formatProblems, formatTime, indent, renderFields } from './output.js';
import { backupDuration, lsnRange } from './tables.js';
import type { ArchiveStatusView, BackupOverviewView, BackupView, RecoveryWindowView, RestoreView, TenantView } from './views.js';

/** Where a time lies from now, for people: "3h ago". */
function ago(iso: string | null, now: number): string {
  return iso === null ? '' : ` (${formatAge(iso, now)} ago)`;
}

/** The recovery window in one line: what `tenant restore --to-time` accepts. */
export function windowLine(window: RecoveryWindowView | null, tenantId: string): string {
  if (window === null || window.earliest === null) {
    return `not restorable yet: tenant ${tenantId} has no successful backup (take one: pgsctl backup create ${tenantId} --wait)`;
  }
  const span = window.latest === null ? '' : ` (${formatDuration(Math.max(0, Date.parse(window.latest) - Date.parse(window.earliest)))})`;
  return `restorable from ${formatTime(window.earliest)} to ${window.latest === null ? 'its last archived WAL' : formatTime(window.latest)}${span}`;
}

/** A backup in a few words: "full b-1 SUCCEEDED, 1.2 GiB (312 MiB in the repository) in 42.0s". */
export function backupSummary(b: BackupView, now: number): string {
  const size = b.status === 'SUCCEEDED' ? `, ${formatBytes(b.sizeBytes)} (${formatBytes(b.repoSizeBytes)} in the repository)` : '';
  const took = backupDuration(b, now);
  return `${b.type.toLowerCase()} backup ${b.id} ${b.status}${size}${took === '-' ? '' : ` in ${took}`}`;
}

/** The progress line of `backup create --wait`. */
export function backupProgress(b: BackupView): string {
  return `backup ${b.id} of tenant ${b.tenantId}: ${b.status}${b.hostId ? ` on ${b.hostId}` : ''}${b.reason ? ` (${b.reason})` : ''}`;
}

/** `backup get` for people. */
export function renderBackup(b: BackupView, now: number): string {
  return renderFields([
    ['Id', b.id],
    ['Tenant', b.tenantId],
    ['Type', b.type.toLowerCase()],
    ['Status', b.reason ? `${b.status}: ${b.reason}` : b.status],
    ['Trigger', b.trigger],
    ['Host', b.hostId],
    ['Started', `${formatTime(b.startedAt)}${ago(b.startedAt, now)}`],
    ['Finished', `${formatTime(b.finishedAt)}${ago(b.finishedAt, now)}`],
    ['Duration', backupDuration(b, now)],
    ['Size', b.status === 'SUCCEEDED' ? formatBytes(b.sizeBytes) : '-'],
    ['Repository size', b.status === 'SUCCEEDED' ? formatBytes(b.repoSizeBytes) : '-'],
    ['WAL', `${lsnRange(b)}${b.timeline > 0 ? ` on timeline ${b.timeline}` : ''}`],
    ['Label', b.label],
    ['Depends on', b.priorLabel || (b.type === 'FULL' ? 'nothing (full)' : '')],
    ['Stanza', b.stanza],
  ]);
}

/** WAL archiving in one line: on/off, the last segment archived and when, failures, what waits. */
export function archiveLine(a: ArchiveStatusView | null, now: number): string {
  if (a === null) return 'unknown (no report from the primary yet)';
  if (!a.enabled) return 'off';
  const last = a.lastArchivedWal ? `last ${a.lastArchivedWal} at ${formatTime(a.lastArchivedAt)}${ago(a.lastArchivedAt, now)}` : 'nothing archived yet';
  const failed =
    a.failedCount > 0 ? `${a.failedCount} failed (last ${a.lastFailedWal || '?'} at ${formatTime(a.lastFailedAt)}${ago(a.lastFailedAt, now)})` : '0 failed';
  const pending =
    a.pendingSegments > 0 || a.pendingBytes > 0
      ? `${a.pendingSegments} segments (${formatBytes(a.pendingBytes)}) waiting, oldest commit ${a.lagSeconds}s old`
      : 'nothing waiting';
  return `on; ${last}; ${failed}; ${pending}`;
}

/** The Backups section of `tenant get` (its body, unindented). */
export function renderBackupOverview(o: BackupOverviewView | null, tenant: TenantView, now: number): string {
  if (o === null) {
    const own = tenant.spec.backup === null ? 'fleet defaults' : describeBackupPolicy(tenant.spec.backup, 'default');
    return renderFields([['Policy', `${own} (not in force: the fleet has no backup repository)`]]);
  }
  const good = o.lastGood;
  const last =
    good === null
      ? 'none'
      : `${good.id}, ${good.type.toLowerCase()}, finished ${formatTime(good.finishedAt)}${ago(good.finishedAt, now)}, ${formatBytes(good.sizeBytes)}`;
  const run = o.running;
  const running =
    run === null
      ? 'none'
      : `${run.id}, ${run.type.toLowerCase()}, started ${formatTime(run.startedAt)}${ago(run.startedAt, now)}${run.hostId ? ` on ${run.hostId}` : ''}`;
  const fields = renderFields([
    ['Policy', o.policy === null ? 'fleet defaults' : describeBackupPolicy(o.policy, 'never')],
    ['Recovery window', windowLine(o.window, tenant.id)],
    ['Last good backup', last],
    ['Running', running],
    ['WAL archiving', archiveLine(o.archive, now)],
    ['Problems', o.problems.length === 0 ? 'none' : String(o.problems.length)],
  ]);
  return fields + indent(formatProblems(o.problems));
}

/** What a restore was asked to reach, in words. */
export function restoreTarget(r: RestoreView): string {
  if (r.toTime !== null) return `the time ${formatTime(r.toTime)}`;
  if (r.toBackupId !== '') return `backup ${r.toBackupId}`;
  return 'the latest archived WAL';
}

/** The progress line of a restore being followed, with the target tenant's status. */
export function restoreProgress(r: RestoreView, tenant: TenantView | undefined): string {
  const status =
    tenant === undefined ? '' : `; tenant ${tenant.status}${tenant.statusReason && tenant.statusReason !== r.reason ? ` (${tenant.statusReason})` : ''}`;
  return `restore ${r.id} into ${r.targetTenantId}: ${r.state}${r.hostId ? ` on ${r.hostId}` : ''}${r.reason ? ` (${r.reason})` : ''}${status}`;
}

/** The recovery point a restore reached: LSN, last replayed commit time, timeline. */
export function recoveryPoint(r: RestoreView): string {
  const parts = [`LSN ${r.recoveredLsn || 'unknown'}`, `last commit ${formatTime(r.recoveredTime)}`];
  if (r.timeline > 0) parts.push(`timeline ${r.timeline}`);
  return parts.join(', ');
}

/** Missing WAL after recovering a lost host: what the old primary wrote that the repository never got. */
export function missingWalLine(r: RestoreView): string {
  return r.missingWalBytes === 0
    ? 'none known (every WAL the old primary reported was archived)'
    : `${formatBytes(r.missingWalBytes)} (${r.missingWalBytes} bytes) the old primary had written never reached the repository: commits in it are lost`;
}

/**
 * What to say once a restore SUCCEEDED: the recovery point, the tenant that holds the data, and
 * how to reach it. A new tenant starts with external access off and the source's users and
 * databases, so its clients log in as `<user>.<new tenant>` to the source's database names.
 */
export function restoreOutcome(r: RestoreView, tenant: TenantView | undefined, options: { recreate: boolean }): string {
  const target = r.targetTenantId;
  const into = options.recreate
    ? `tenant ${target} re-created${r.hostId ? ` on ${r.hostId}` : ''} from its backup`
    : r.inPlace || r.sourceTenantId === target
      ? `tenant ${target} restored in place`
      : `tenant ${target} holds the data of tenant ${r.sourceTenantId}`;
  const lines = [`restore ${r.id} SUCCEEDED: ${into} (asked: ${restoreTarget(r)})`, `recovery point: ${recoveryPoint(r)}`];
  if (options.recreate || r.missingWalBytes > 0) lines.push(`missing WAL: ${missingWalLine(r)}`);
  if (tenant !== undefined && !tenant.spec.externalAccess) lines.push(`external access is off: pgsctl tenant access enable ${target}`);
  const source = r.sourceTenantId;
  lines.push(
    source === target
      ? `connect: pgsctl connect ${target}`
      : `connect: pgsctl connect ${target} --user ${source} --database ${source}  (its users log in as <user>.${target}, e.g. ${source}.${target})`,
  );
  return `${lines.join('\n')}\n`;
}
