/**
 * The times a tenant can be restored to, and the rules that guard it: a restore target must lie in
 * the window (or name a restorable backup), and deleting a backup must not shrink the window below
 * the retention the policy promises. A restore to time T needs a backup that was consistent before
 * T, so the window runs from the second after the end of the oldest restorable backup to the time
 * through which the archive holds every commit (not the time the archiver last finished a file: a
 * commit just before that may still wait in the open or a queued segment).
 */
import type { BackupView } from './backup-types.js';
import { PgsError } from './errors.js';

/** From `earliest` to `latest`, epoch ms, inclusive. */
export interface RecoveryWindow {
  earliest: number;
  latest: number;
}

/** The window, or undefined when no backup is restorable. `archivedThrough` 0 = unknown. */
export function recoveryWindow(backups: readonly BackupView[], archivedThrough: number): RecoveryWindow | undefined {
  const good = backups.filter((b) => b.status === 'SUCCEEDED' && b.finishedAt > 0);
  if (good.length === 0) return undefined;
  // pgBackRest keeps a backup's stop time in whole seconds and restores to a time only from a backup
  // that stopped in an earlier second: the window opens at the second after the oldest one's stop.
  const earliest = Math.min(...good.map((b) => Math.floor(b.finishedAt / 1000) * 1000 + 1000));
  return { earliest, latest: Math.max(archivedThrough, ...good.map((b) => b.finishedAt)) };
}

/** The backup and every restorable backup that depends on it (pgBackRest expires them together). */
export function dependentsOf(backups: readonly BackupView[], id: string): BackupView[] {
  const root = backups.find((b) => b.id === id);
  if (root === undefined) return [];
  const out = [root];
  const labels = new Set(root.label === '' ? [] : [root.label]);
  for (let grew = true; grew;) {
    grew = false;
    for (const b of backups) {
      if (out.includes(b) || b.priorLabel === '' || !labels.has(b.priorLabel)) continue;
      out.push(b);
      if (b.label !== '') labels.add(b.label);
      grew = true;
    }
  }
  return out;
}

/** What deleting a backup would do to the window. */
export interface DeleteImpact {
  /** Backups that go with it (itself first). */
  removed: string[];
  before: RecoveryWindow | undefined;
  after: RecoveryWindow | undefined;
  /** True when the window would start later than before and then cover less than the retention. */
  shrinksBelowRetention: boolean;
}

/** Judges deleting backup `id` at `now` under a retention of `retentionMs`. */
export function deleteImpact(backups: readonly BackupView[], id: string, archivedThrough: number, retentionMs: number, now: number): DeleteImpact {
  const removed = dependentsOf(backups, id).map((b) => b.id);
  const gone = new Set(removed);
  const before = recoveryWindow(backups, archivedThrough);
  const after = recoveryWindow(
    backups.filter((b) => !gone.has(b.id)),
    archivedThrough,
  );
  const required = now - retentionMs;
  const later = before !== undefined && (after === undefined || after.earliest > before.earliest);
  return { removed, before, after, shrinksBelowRetention: later && (after === undefined || after.earliest > required) };
}

/** What a restore asks for, before validation. */
export type RestoreTarget = { kind: 'time'; time: number } | { kind: 'backup'; backupId: string } | { kind: 'latest' };

/** A validated target: a time, a backup (with its pgBackRest label) or everything archived. */
export type ResolvedTarget = { kind: 'time'; time: number } | { kind: 'backup'; backupId: string; label: string } | { kind: 'latest' };

/** RFC 3339 in UTC, to the second, as operators type it back. */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** The window in words ("2026-12-01T10:00:00Z to 2026-12-06T09:59:00Z"), rounded inwards so both ends can be typed back. */
export function describeWindow(w: RecoveryWindow): string {
  return `${rfc3339(Math.ceil(w.earliest / 1000) * 1000)} to ${rfc3339(w.latest)}`;
}

/** Checks a restore target against the tenant's backups and window; throws PgsError (kind user) with what is possible. */
export function validateRestoreTarget(target: RestoreTarget, backups: readonly BackupView[], archivedThrough: number): ResolvedTarget {
  const window = recoveryWindow(backups, archivedThrough);
  if (target.kind === 'backup') {
    const b = backups.find((x) => x.id === target.backupId);
    if (b === undefined)
      throw new PgsError('BACKUP_NOT_FOUND', `backup "${target.backupId}" does not exist for this tenant; list them with ListBackups`, { kind: 'user' });
    if (b.status !== 'SUCCEEDED' || b.label === '') {
      throw new PgsError('BACKUP_NOT_RESTORABLE', `backup "${b.id}" is ${b.status} and cannot be restored; pick a SUCCEEDED one (ListBackups)`, {
        kind: 'user',
      });
    }
    return { kind: 'backup', backupId: b.id, label: b.label };
  }
  if (window === undefined)
    throw new PgsError('NO_RESTORABLE_BACKUP', 'the tenant has no restorable backup yet; take one with CreateBackup first', { kind: 'user' });
  if (target.kind === 'latest') return target;
  if (!Number.isFinite(target.time) || target.time < window.earliest || target.time > window.latest) {
    const asked = Number.isFinite(target.time) ? rfc3339(target.time) : String(target.time);
    throw new PgsError('RESTORE_TARGET_OUTSIDE_WINDOW', `cannot restore to ${asked}: the recovery window is ${describeWindow(window)}`, { kind: 'user' });
  }
  return { kind: 'time', time: target.time };
}

/**
 * The backups pgBackRest's time-based retention removes after a backup (repo-retention-full-type
 * time): every full backup that finished more than `days` ago except the newest of those (it keeps
 * the start of the window restorable), and every backup that depends on a removed one. The
 * coordinator mirrors it so its rows and window say what the repository holds.
 */
export function expiredByRetention(backups: readonly BackupView[], days: number, now: number): string[] {
  const cutoff = now - days * 86_400_000;
  const oldFulls = backups
    .filter((b) => b.status === 'SUCCEEDED' && b.type === 'FULL' && b.finishedAt > 0 && b.finishedAt < cutoff)
    .sort((a, b) => b.finishedAt - a.finishedAt)
    .slice(1);
  const out = new Set<string>();
  for (const full of oldFulls) for (const b of dependentsOf(backups, full.id)) if (b.status === 'SUCCEEDED') out.add(b.id);
  return [...out];
}
