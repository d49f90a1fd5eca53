/**
 * Which backup a tenant needs now, from its policy, its backups and the clock: at most one runs at a
 * time; a full one when none is restorable; one at once after the primary moved (a failover, a
 * switchover or a restore put the tenant on a new host or timeline, and the new timeline's WAL is
 * only restorable from a backup taken on it); otherwise each kind when its interval has passed
 * since the last of its kind began. A failed attempt on the same primary waits `failureBackoffMs`
 * before the next.
 */
import type { EffectivePolicy } from './backup-policy.js';
import type { BackupType, BackupView } from './backup-types.js';

/** Why a backup is taken (Backup.trigger). */
export type BackupTrigger = 'schedule' | 'after-failover';

/** What the scheduler knows now. */
export interface DueInput {
  policy: EffectivePolicy;
  backups: readonly BackupView[];
  now: number;
  /** The tenant's running primary: its host and (when reported) timeline. */
  primary: { hostId: string; timeline: number } | undefined;
  /** How long after a failed backup the next attempt waits. */
  failureBackoffMs: number;
}

/** A backup to start now. */
export interface DueBackup {
  type: BackupType;
  trigger: BackupTrigger;
}

const newest = (list: readonly BackupView[]): BackupView | undefined =>
  list.reduce<BackupView | undefined>((a, b) => (a === undefined || b.startedAt > a.startedAt ? b : a), undefined);

/** The type an operator's backup takes when none is named: full without a restorable full, else differential. */
export function defaultBackupType(backups: readonly BackupView[]): BackupType {
  return backups.some((b) => b.status === 'SUCCEEDED' && b.type === 'FULL') ? 'DIFF' : 'FULL';
}

/** True while a backup of the tenant runs (then no other may start). */
export function backupRunning(backups: readonly BackupView[]): boolean {
  return backups.some((b) => b.status === 'RUNNING');
}

/** The backup due now, or undefined. */
export function dueBackup(input: DueInput): DueBackup | undefined {
  const { policy, backups, now, primary } = input;
  if (policy.disabled || primary === undefined || backupRunning(backups)) return undefined;
  const last = newest(backups.filter((b) => b.status !== 'EXPIRED'));
  // A failure on another host (the primary moved during it) says nothing about this one.
  if (last?.status === 'FAILED' && last.hostId === primary.hostId && now - Math.max(last.finishedAt, last.startedAt) < input.failureBackoffMs) return undefined;
  const good = backups.filter((b) => b.status === 'SUCCEEDED');
  const lastFull = newest(good.filter((b) => b.type === 'FULL'));
  if (lastFull === undefined) return { type: 'FULL', trigger: 'schedule' };
  const lastGood = newest(good) as BackupView;
  const moved = lastGood.hostId !== primary.hostId || (primary.timeline > 0 && lastGood.timeline > 0 && primary.timeline > lastGood.timeline);
  if (moved) return { type: policy.diffIntervalSeconds > 0 ? 'DIFF' : 'FULL', trigger: 'after-failover' };
  const since = (b: BackupView | undefined): number => (b === undefined ? Number.POSITIVE_INFINITY : now - b.startedAt);
  if (policy.fullIntervalSeconds > 0 && since(lastFull) >= policy.fullIntervalSeconds * 1000) return { type: 'FULL', trigger: 'schedule' };
  if (policy.diffIntervalSeconds > 0 && since(newest(good.filter((b) => b.type !== 'INCR'))) >= policy.diffIntervalSeconds * 1000)
    return { type: 'DIFF', trigger: 'schedule' };
  if (policy.incrIntervalSeconds > 0 && since(lastGood) >= policy.incrIntervalSeconds * 1000) return { type: 'INCR', trigger: 'schedule' };
  return undefined;
}
