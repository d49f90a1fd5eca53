/**
 * What an operator should hear about a tenant's backups: the last good backup older than the
 * policy wants, WAL archiving that falls behind or fails, no backup at all after the first hour.
 * One sentence each, with the numbers in it.
 */
import { shortestInterval, type EffectivePolicy } from './backup-policy.js';
import type { BackupView } from './backup-types.js';

/** The primary's WAL archiving as the rules see it (times epoch ms, 0 = never). */
export interface ArchiveView {
  failedCount: number;
  lastArchivedAt: number;
  lastFailedAt: number;
  lagSeconds: number;
  pendingSegments: number;
}

/** What the problems are judged from. */
export interface ProblemInput {
  policy: EffectivePolicy;
  backups: readonly BackupView[];
  archive: ArchiveView | undefined;
  /** When the tenant (incarnation) began: a new tenant gets its first hour before "no backup" is a problem. */
  since: number;
  now: number;
}

/** A backup may take this long before its absence is a problem. */
const GRACE_MS = 3_600_000;

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s >= 2 * 86_400) return `${Math.floor(s / 86_400)} days`;
  if (s >= 2 * 3600) return `${Math.floor(s / 3600)} hours`;
  if (s >= 120) return `${Math.floor(s / 60)} minutes`;
  return `${s} s`;
}

/** The problems, in words; empty when all is well (or backups are disabled). */
export function backupProblems(input: ProblemInput): string[] {
  const { policy, now } = input;
  if (policy.disabled) return [];
  const out: string[] = [];
  const good = input.backups.filter((b) => b.status === 'SUCCEEDED');
  const lastGood = good.reduce((m, b) => Math.max(m, b.finishedAt), 0);
  const every = shortestInterval(policy) * 1000;
  if (lastGood === 0) {
    if (now - input.since > GRACE_MS) out.push(`no good backup yet (the tenant is ${age(now - input.since)} old)`);
  } else if (every > 0 && now - lastGood > every + GRACE_MS) {
    out.push(`last good backup is ${age(now - lastGood)} old; the policy wants one every ${age(every)}`);
  }
  const a = input.archive;
  if (a !== undefined) {
    if (a.failedCount > 0 && a.lastFailedAt > a.lastArchivedAt)
      out.push(`WAL archiving is failing (${a.failedCount} failures, the last ${age(now - a.lastFailedAt)} ago)`);
    const limit = policy.archiveTimeoutSeconds * 2 + 60;
    if (a.pendingSegments > 0 && a.lagSeconds > limit)
      out.push(`WAL archiving is ${age(a.lagSeconds * 1000)} behind; archive_timeout is ${policy.archiveTimeoutSeconds} s`);
  }
  return out;
}
