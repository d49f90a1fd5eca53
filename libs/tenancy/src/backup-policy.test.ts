import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKUP_POLICY, effectiveBackupPolicy, retentionDays, UNSET_BACKUP_POLICY, validateBackupPolicy, type BackupPolicy } from './backup-policy.js';
import { ValidationError } from './errors.js';
import { validateTenantSpec } from './resources.js';
import { DEFAULT_TENANT_SPEC } from './resources.js';

const policy = (over: Partial<BackupPolicy>): BackupPolicy => ({ ...UNSET_BACKUP_POLICY, ...over });

function refusal(p: BackupPolicy, defaults = false): ValidationError {
  try {
    validateBackupPolicy(p, 'spec.backup', defaults);
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('backup policy defaults', () => {
  it('are full weekly, diff daily, no incremental, 7 days of retention and archive_timeout 60 s', () => {
    expect(DEFAULT_BACKUP_POLICY).toEqual({
      disabled: false,
      fullIntervalSeconds: 604_800,
      diffIntervalSeconds: 86_400,
      incrIntervalSeconds: 0,
      retentionSeconds: 604_800,
      archiveTimeoutSeconds: 60,
    });
  });

  it('fill every zero of the spec and keep what the spec sets', () => {
    expect(effectiveBackupPolicy(undefined)).toEqual(DEFAULT_BACKUP_POLICY);
    expect(effectiveBackupPolicy(policy({ diffIntervalSeconds: 3600, archiveTimeoutSeconds: 5 }))).toEqual({
      ...DEFAULT_BACKUP_POLICY,
      diffIntervalSeconds: 3600,
      archiveTimeoutSeconds: 5,
    });
    const fleet = { ...DEFAULT_BACKUP_POLICY, incrIntervalSeconds: 600 };
    expect(effectiveBackupPolicy(policy({ disabled: true }), fleet)).toEqual({ ...fleet, disabled: true });
  });
});

describe('validateBackupPolicy', () => {
  it('accepts zeros (fleet defaults) and values at the bounds', () => {
    expect(validateBackupPolicy(UNSET_BACKUP_POLICY)).toEqual(UNSET_BACKUP_POLICY);
    const edge = policy({ fullIntervalSeconds: 60, diffIntervalSeconds: 60, incrIntervalSeconds: 60, retentionSeconds: 86_400, archiveTimeoutSeconds: 3600 });
    expect(validateBackupPolicy(edge)).toEqual(edge);
  });

  it('refuses intervals under a minute, retention under a day and archive_timeout outside 1..3600 s, naming the field', () => {
    expect(refusal(policy({ fullIntervalSeconds: 59 })).field).toBe('spec.backup.full_interval_seconds');
    expect(refusal(policy({ diffIntervalSeconds: 1 })).field).toBe('spec.backup.diff_interval_seconds');
    expect(refusal(policy({ incrIntervalSeconds: 30 })).field).toBe('spec.backup.incr_interval_seconds');
    expect(refusal(policy({ retentionSeconds: 86_399 })).field).toBe('spec.backup.retention_seconds');
    expect(refusal(policy({ archiveTimeoutSeconds: 3601 })).message).toContain('1 s to 1 h');
    expect(refusal(policy({ archiveTimeoutSeconds: -1 })).field).toBe('spec.backup.archive_timeout_seconds');
    expect(refusal(policy({ retentionSeconds: 1.5 })).field).toBe('spec.backup.retention_seconds');
  });

  it('as fleet defaults: zero is refused except for the incremental interval', () => {
    expect(refusal(UNSET_BACKUP_POLICY, true).field).toBe('spec.backup.full_interval_seconds');
    expect(validateBackupPolicy(DEFAULT_BACKUP_POLICY, 'spec.backup', true)).toEqual(DEFAULT_BACKUP_POLICY);
  });

  it('travels with the tenant spec', () => {
    expect(validateTenantSpec({ ...DEFAULT_TENANT_SPEC, backup: policy({ disabled: true }) }).backup).toEqual(policy({ disabled: true }));
    expect(validateTenantSpec(DEFAULT_TENANT_SPEC).backup).toBeUndefined();
    expect(() => validateTenantSpec({ ...DEFAULT_TENANT_SPEC, backup: policy({ retentionSeconds: 10 }) })).toThrow(/retention_seconds/);
  });
});

describe('retentionDays', () => {
  it('rounds up to whole days and is at least one', () => {
    expect(retentionDays(86_400)).toBe(1);
    expect(retentionDays(86_401)).toBe(2);
    expect(retentionDays(7 * 86_400)).toBe(7);
    expect(retentionDays(0)).toBe(1);
  });

  it('never keeps less than the policy asks', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 1e9 }), (s) => retentionDays(s) * 86_400 >= s && (retentionDays(s) - 1) * 86_400 < Math.max(s, 86_400)));
  });
});
