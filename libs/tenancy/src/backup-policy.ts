/**
 * A tenant's backup policy: what the spec asks (zeros take the fleet defaults), the bounds it must
 * respect, and the policy in force once the defaults are filled in. Seconds throughout, as the
 * proto spells them; the fleet defaults are full weekly, differential daily, no incremental, a
 * restore window of 7 days and archive_timeout 60 s.
 */
import { ValidationError } from './errors.js';

/** As asked in the tenant spec: 0 = the fleet default. */
export interface BackupPolicy {
  /** No scheduled backups and no WAL archiving (a backup by hand is still possible). */
  disabled: boolean;
  fullIntervalSeconds: number;
  diffIntervalSeconds: number;
  incrIntervalSeconds: number;
  /** How far back a restore must be possible. */
  retentionSeconds: number;
  /** PostgreSQL archive_timeout: the longest a commit waits before its WAL segment is archived. */
  archiveTimeoutSeconds: number;
}

/** The policy in force: every field resolved; an interval of 0 here means "never scheduled". */
export type EffectivePolicy = Readonly<BackupPolicy>;

const DAY = 86_400;

/** The fleet defaults when the coordinator is given none (README "Backups"). */
export const DEFAULT_BACKUP_POLICY: EffectivePolicy = Object.freeze({
  disabled: false,
  fullIntervalSeconds: 7 * DAY,
  diffIntervalSeconds: DAY,
  incrIntervalSeconds: 0,
  retentionSeconds: 7 * DAY,
  archiveTimeoutSeconds: 60,
});

/** An empty policy: every field takes the fleet default. */
export const UNSET_BACKUP_POLICY: BackupPolicy = Object.freeze({
  disabled: false,
  fullIntervalSeconds: 0,
  diffIntervalSeconds: 0,
  incrIntervalSeconds: 0,
  retentionSeconds: 0,
  archiveTimeoutSeconds: 0,
});

/** Bounds of a set (non-zero) field. */
export const BACKUP_POLICY_BOUNDS = Object.freeze({
  intervalSeconds: Object.freeze({ min: 60, max: 366 * DAY }),
  retentionSeconds: Object.freeze({ min: DAY, max: 3660 * DAY }),
  archiveTimeoutSeconds: Object.freeze({ min: 1, max: 3600 }),
});

function check(field: string, value: unknown, min: number, max: number, zeroAllowed: boolean, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || (value === 0 && !zeroAllowed) || (value !== 0 && (value < min || value > max))) {
    throw new ValidationError(field, value, `${zeroAllowed ? '0 (the fleet default) or ' : ''}a whole number of seconds from ${min} to ${max} (${what})`);
  }
  return value;
}

/**
 * Validates a policy; `defaults` true checks fleet defaults (no zeros, except the incremental
 * interval: 0 = none). Returns a normalized copy or throws ValidationError naming the field.
 */
export function validateBackupPolicy(policy: BackupPolicy, field = 'spec.backup', defaults = false): BackupPolicy {
  if (typeof policy !== 'object' || policy === null) throw new ValidationError(field, policy, 'a backup policy object');
  if (typeof policy.disabled !== 'boolean') throw new ValidationError(`${field}.disabled`, policy.disabled, 'true or false');
  const b = BACKUP_POLICY_BOUNDS;
  const interval = (name: string, v: unknown, zero: boolean): number =>
    check(`${field}.${name}`, v, b.intervalSeconds.min, b.intervalSeconds.max, zero, 'at least a minute');
  return {
    disabled: policy.disabled,
    fullIntervalSeconds: interval('full_interval_seconds', policy.fullIntervalSeconds, !defaults),
    diffIntervalSeconds: interval('diff_interval_seconds', policy.diffIntervalSeconds, true),
    incrIntervalSeconds: interval('incr_interval_seconds', policy.incrIntervalSeconds, true),
    retentionSeconds: check(`${field}.retention_seconds`, policy.retentionSeconds, b.retentionSeconds.min, b.retentionSeconds.max, !defaults, 'at least a day'),
    archiveTimeoutSeconds: check(
      `${field}.archive_timeout_seconds`,
      policy.archiveTimeoutSeconds,
      b.archiveTimeoutSeconds.min,
      b.archiveTimeoutSeconds.max,
      !defaults,
      '1 s to 1 h',
    ),
  };
}

/** The policy in force: the spec's fields, each 0 replaced by the fleet default. */
export function effectiveBackupPolicy(spec: BackupPolicy | undefined, fleet: EffectivePolicy = DEFAULT_BACKUP_POLICY): EffectivePolicy {
  const s = spec ?? UNSET_BACKUP_POLICY;
  const pick = (own: number, fallback: number): number => (own > 0 ? own : fallback);
  return Object.freeze({
    disabled: s.disabled,
    fullIntervalSeconds: pick(s.fullIntervalSeconds, fleet.fullIntervalSeconds),
    diffIntervalSeconds: pick(s.diffIntervalSeconds, fleet.diffIntervalSeconds),
    incrIntervalSeconds: pick(s.incrIntervalSeconds, fleet.incrIntervalSeconds),
    retentionSeconds: pick(s.retentionSeconds, fleet.retentionSeconds),
    archiveTimeoutSeconds: pick(s.archiveTimeoutSeconds, fleet.archiveTimeoutSeconds),
  });
}

/**
 * The retention handed to the agent, in whole days (pgBackRest's time-based retention counts days):
 * rounded up, so the window kept is never shorter than the policy's.
 */
export function retentionDays(retentionSeconds: number): number {
  return Math.max(1, Math.ceil(retentionSeconds / DAY));
}

/** The shortest scheduled interval of a policy in seconds (0 when nothing is scheduled). */
export function shortestInterval(policy: EffectivePolicy): number {
  const set = [policy.fullIntervalSeconds, policy.diffIntervalSeconds, policy.incrIntervalSeconds].filter((s) => s > 0);
  return set.length === 0 ? 0 : Math.min(...set);
}
