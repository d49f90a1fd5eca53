/**
 * Decisions of a restore, pure: whether the source stanza can serve the target at all (so a
 * restore that cannot work fails at once with a reason, before anything is copied), the
 * `pgbackrest restore` options for the target, and the words of a recovery that ended early.
 * Docs: https://pgbackrest.org/command.html#command-restore
 */
import { AgentError } from '../errors.js';
import type { BackupRepository, RestoreTarget } from './backup-types.js';
import type { InfoBackup, StanzaInfo } from './pgbackrest-info.js';
import { keyMessage } from './pgbackrest.js';

/** A time as pgBackRest takes it: "YYYY-MM-DD HH:MM:SS.mmm+00" (milliseconds at most; UTC). */
export function pgBackRestTime(ms: number): string {
  return `${new Date(ms).toISOString().replace('T', ' ').replace('Z', '')}+00`;
}

/**
 * Whether pgBackRest takes `b` for a restore to `time`: it picks the newest backup whose stop time is
 * before the target, comparing in whole seconds (its stop timestamps have no fraction), so a backup
 * that stopped in the target's second does not count.
 */
export function endedBefore(b: InfoBackup, time: number): boolean {
  return Math.floor(b.finishedAtMs / 1000) < Math.floor(time / 1000);
}

/** Throws the reason the stanza cannot be restored to `target`; returns when it can. */
export function checkRestorable(info: StanzaInfo, target: RestoreTarget, repo: BackupRepository): void {
  if (info.state === 'unreadable') throw new AgentError('BACKUP_KEY', keyMessage(repo, info.name, info.message));
  if (info.state === 'missing')
    throw new AgentError('BACKUP_NOT_FOUND', `the repository has no stanza ${info.name} (no backup of it was ever taken)`, { kind: 'user' });
  if (info.state === 'other') throw new AgentError('RESTORE_FAILED', `pgbackrest info of stanza ${info.name} failed: ${info.message}`);
  const usable = info.backups.filter((b) => !b.error);
  if (usable.length === 0) throw new AgentError('BACKUP_NOT_FOUND', `stanza ${info.name} has no complete backup to restore from`, { kind: 'user' });
  if (target.kind === 'backup' && !usable.some((b) => b.label === target.label)) {
    throw new AgentError('BACKUP_NOT_FOUND', `stanza ${info.name} has no backup ${target.label} (it has ${usable.map((b) => b.label).join(', ')})`, {
      kind: 'user',
    });
  }
  if (target.kind === 'time') {
    const oldest = usable[0];
    if (oldest && !usable.some((b) => endedBefore(b, target.time))) {
      throw new AgentError(
        'NO_BACKUP_BEFORE_TARGET',
        `no backup of stanza ${info.name} ended before ${new Date(target.time).toISOString()}: the oldest (${oldest.label}) ended at ${new Date(oldest.finishedAtMs).toISOString()} (pgBackRest counts whole seconds); pick a later time`,
        { kind: 'user' },
      );
    }
  }
}

/** The `pgbackrest restore` options for `target` (latest: pgBackRest's default, recovery to the end of the archive). */
export function restoreOptions(target: RestoreTarget): string[] {
  switch (target.kind) {
    case 'time':
      return ['--type=time', `--target=${pgBackRestTime(target.time)}`, '--target-action=promote'];
    case 'backup':
      return [`--set=${target.label}`, '--type=immediate', '--target-action=promote'];
    case 'latest':
      return [];
  }
}

/** The backup pgBackRest restores for `target`: the named one, else the newest complete one that ended before the time (or at all). */
export function chosenBackup(info: StanzaInfo, target: RestoreTarget): InfoBackup | undefined {
  const usable = info.backups.filter((b) => !b.error);
  if (target.kind === 'backup') return usable.find((b) => b.label === target.label);
  const candidates = target.kind === 'time' ? usable.filter((b) => endedBefore(b, target.time)) : usable;
  return candidates[candidates.length - 1];
}

/**
 * The message of a recovery that reached the end of the archive before its target time: how far
 * the archive reaches (its last replayed commit, or the end of the restored backup when no commit
 * was archived after it).
 */
export function targetNotReachedMessage(target: RestoreTarget, lastCommitMs: number, archiveMaxWal: string, backup?: InfoBackup): string {
  const wanted = target.kind === 'time' ? ` ${new Date(target.time).toISOString()}` : '';
  const reaches =
    lastCommitMs > 0
      ? `the archive reaches ${new Date(lastCommitMs).toISOString()} (its last commit)`
      : backup
        ? `the archive reaches ${new Date(backup.finishedAtMs).toISOString()} (the end of backup ${backup.label}; no commit after it is archived)`
        : 'the archive holds no commit after the backup';
  return `recovery ended before configured recovery target was reached: the target${wanted} is after the end of the archive; ${reaches}, last archived WAL ${archiveMaxWal || 'unknown'}; pick an earlier time or wait until the source's WAL is archived`;
}
