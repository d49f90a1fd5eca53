/**
 * The backup policy flags of `tenant create` and `tenant update` (--backup-schedule,
 * --backup-retention, --archive-timeout, --backups / --no-backups) -> a BackupPolicyView -> the
 * proto BackupPolicy. In the proto a zero means "the fleet default", so a kind set to `default`
 * goes back to it; an update keeps every part of the policy its flags do not name.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { BackupPolicySchema } from '@pgs/proto';
import { UsageError } from './errors.js';
import { formatSpan, parseSpan } from './spans.js';
import type { BackupPolicyView } from './views.js';

/** The backup flags (all optional: unset keeps the base). `backups` is false for --no-backups. */
export interface BackupFlags {
  backupSchedule?: string;
  backupRetention?: string;
  archiveTimeout?: string;
  backups?: boolean;
}

const KINDS = { full: 'fullIntervalSeconds', diff: 'diffIntervalSeconds', incr: 'incrIntervalSeconds' } as const;
type Kind = keyof typeof KINDS;

// PostgreSQL's archive_timeout is an int of seconds capped at INT_MAX / 2 (its GUC definition).
const MAX_ARCHIVE_TIMEOUT_SECONDS = 1_073_741_823;

/** A policy with every part at the fleet default. */
export const FLEET_DEFAULT_POLICY: Readonly<BackupPolicyView> = Object.freeze({
  disabled: false,
  fullIntervalSeconds: 0,
  diffIntervalSeconds: 0,
  incrIntervalSeconds: 0,
  retentionSeconds: 0,
  archiveTimeoutSeconds: 0,
});

/** Parses `full=7d,diff=1d,incr=6h` (any subset; `kind=default` for the fleet's) into intervals in seconds (0 = default). */
export function parseBackupSchedule(text: string): Partial<Record<Kind, number>> {
  const out: Partial<Record<Kind, number>> = {};
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) throw new UsageError('invalid --backup-schedule "": expected kind=interval pairs, e.g. full=7d,diff=1d,incr=6h');
  for (const part of parts) {
    const eq = part.indexOf('=');
    const kind = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (!(kind in KINDS)) {
      throw new UsageError(
        `invalid --backup-schedule ${JSON.stringify(text)}: ${JSON.stringify(kind)} is not a backup kind; use full, diff or incr, e.g. full=7d,diff=1d,incr=6h`,
      );
    }
    if (eq < 0) throw new UsageError(`invalid --backup-schedule ${JSON.stringify(text)}: ${kind} needs an interval, e.g. ${kind}=1d (or ${kind}=default)`);
    if (kind in out) throw new UsageError(`invalid --backup-schedule ${JSON.stringify(text)}: ${kind} is given twice`);
    const value = part.slice(eq + 1).trim();
    out[kind as Kind] = value.toLowerCase() === 'default' ? 0 : parseSpan(value, `--backup-schedule ${kind}`);
  }
  return out;
}

function anyGiven(flags: BackupFlags): boolean {
  return flags.backupSchedule !== undefined || flags.backupRetention !== undefined || flags.archiveTimeout !== undefined || flags.backups !== undefined;
}

/** Applies the flags to `base` (null = the tenant has no policy of its own); null again when no flag is given. */
export function applyBackupFlags(base: BackupPolicyView | null, flags: BackupFlags): BackupPolicyView | null {
  if (!anyGiven(flags)) return base === null ? null : { ...base };
  const next: BackupPolicyView = { ...(base ?? FLEET_DEFAULT_POLICY) };
  if (flags.backupSchedule !== undefined) {
    const schedule = parseBackupSchedule(flags.backupSchedule);
    for (const kind of Object.keys(schedule) as Kind[]) next[KINDS[kind]] = schedule[kind] ?? 0;
  }
  if (flags.backupRetention !== undefined) next.retentionSeconds = parseSpan(flags.backupRetention, '--backup-retention');
  if (flags.archiveTimeout !== undefined) {
    const seconds = parseSpan(flags.archiveTimeout, '--archive-timeout');
    if (seconds > MAX_ARCHIVE_TIMEOUT_SECONDS)
      throw new UsageError(`invalid --archive-timeout ${JSON.stringify(flags.archiveTimeout)}: PostgreSQL allows at most ${MAX_ARCHIVE_TIMEOUT_SECONDS}s`);
    next.archiveTimeoutSeconds = seconds;
  }
  if (flags.backups !== undefined) next.disabled = !flags.backups;
  return next;
}

/** True when `sent` asks for something other than the fleet defaults, and `kept` (as answered) lost it. */
export function policyDropped(sent: BackupPolicyView | null, kept: BackupPolicyView | null): boolean {
  if (sent === null || kept !== null) return false;
  return (Object.keys(FLEET_DEFAULT_POLICY) as (keyof BackupPolicyView)[]).some((k) => sent[k] !== FLEET_DEFAULT_POLICY[k]);
}

/** BackupPolicyView -> proto BackupPolicy init. */
export function backupPolicyToProto(p: BackupPolicyView): MessageInitShape<typeof BackupPolicySchema> {
  return {
    disabled: p.disabled,
    fullIntervalSeconds: BigInt(p.fullIntervalSeconds),
    diffIntervalSeconds: BigInt(p.diffIntervalSeconds),
    incrIntervalSeconds: BigInt(p.incrIntervalSeconds),
    retentionSeconds: BigInt(p.retentionSeconds),
    archiveTimeoutSeconds: p.archiveTimeoutSeconds,
  };
}

/**
 * A policy in words. `zero` says what an unset part means: in a tenant's own spec the fleet
 * default, in the policy in force (defaults filled in) a kind that is never scheduled.
 */
export function describeBackupPolicy(p: BackupPolicyView, zero: 'default' | 'never'): string {
  if (p.disabled) return 'disabled: no scheduled backups and no WAL archiving';
  const every = (seconds: number): string => (seconds > 0 ? `every ${formatSpan(seconds)}` : zero === 'never' ? 'never' : 'fleet default');
  const keep = p.retentionSeconds > 0 ? formatSpan(p.retentionSeconds) : 'fleet default';
  const timeout = p.archiveTimeoutSeconds > 0 ? formatSpan(p.archiveTimeoutSeconds) : 'fleet default';
  return `full ${every(p.fullIntervalSeconds)}, diff ${every(p.diffIntervalSeconds)}, incr ${every(p.incrIntervalSeconds)}; restorable for ${keep}; archive_timeout ${timeout}`;
}
