import { create } from '@bufbuild/protobuf';
import { BackupPolicySchema } from '@pgs/proto';
import { describe, expect, it } from 'vitest';
import { applyBackupFlags, backupPolicyToProto, describeBackupPolicy, FLEET_DEFAULT_POLICY, parseBackupSchedule, policyDropped } from './backup-policy.js';
import { UsageError } from './errors.js';
import { backupPolicyView } from './views.js';

describe('backup policy flags', () => {
  it("parses a schedule of any kinds, with default for the fleet's interval", () => {
    expect(parseBackupSchedule('full=7d,diff=1d,incr=6h')).toEqual({ full: 604_800, diff: 86_400, incr: 21_600 });
    expect(parseBackupSchedule(' FULL=1w , diff=default ')).toEqual({ full: 604_800, diff: 0 });
  });

  it('refuses a bad schedule with what to write instead', () => {
    expect(() => parseBackupSchedule('weekly=1d')).toThrow('"weekly" is not a backup kind; use full, diff or incr, e.g. full=7d,diff=1d,incr=6h');
    expect(() => parseBackupSchedule('full')).toThrow('full needs an interval, e.g. full=1d (or full=default)');
    expect(() => parseBackupSchedule('full=1d,full=2d')).toThrow('full is given twice');
    expect(() => parseBackupSchedule('full=1x')).toThrow('invalid --backup-schedule full "1x"');
    expect(() => parseBackupSchedule(',')).toThrow(UsageError);
  });

  it('leaves the policy unset when no backup flag is given, so the fleet defaults apply', () => {
    expect(applyBackupFlags(null, {})).toBeNull();
    const own = { ...FLEET_DEFAULT_POLICY, retentionSeconds: 1_209_600 };
    expect(applyBackupFlags(own, {})).toEqual(own);
  });

  it('sets on create only what the flags name; zero stays the fleet default', () => {
    expect(applyBackupFlags(null, { backupSchedule: 'incr=6h', backupRetention: '14d', archiveTimeout: '60s' })).toEqual({
      disabled: false,
      fullIntervalSeconds: 0,
      diffIntervalSeconds: 0,
      incrIntervalSeconds: 21_600,
      retentionSeconds: 1_209_600,
      archiveTimeoutSeconds: 60,
    });
    expect(applyBackupFlags(null, { backups: false })).toEqual({ ...FLEET_DEFAULT_POLICY, disabled: true });
  });

  it('changes on update only the kinds and parts named, keeping the rest of the policy read', () => {
    const current = {
      disabled: true,
      fullIntervalSeconds: 604_800,
      diffIntervalSeconds: 86_400,
      incrIntervalSeconds: 0,
      retentionSeconds: 1_209_600,
      archiveTimeoutSeconds: 30,
    };
    expect(applyBackupFlags(current, { backupSchedule: 'incr=6h,diff=default', backups: true })).toEqual({
      ...current,
      disabled: false,
      diffIntervalSeconds: 0,
      incrIntervalSeconds: 21_600,
    });
  });

  it('keeps archive_timeout within what PostgreSQL accepts', () => {
    expect(() => applyBackupFlags(null, { archiveTimeout: '2000w' })).toThrow('PostgreSQL allows at most 1073741823s');
    expect(applyBackupFlags(null, { archiveTimeout: '1w' })?.archiveTimeoutSeconds).toBe(604_800);
  });

  it('round-trips through the proto message', () => {
    const view = {
      disabled: false,
      fullIntervalSeconds: 604_800,
      diffIntervalSeconds: 86_400,
      incrIntervalSeconds: 21_600,
      retentionSeconds: 1_209_600,
      archiveTimeoutSeconds: 60,
    };
    const proto = create(BackupPolicySchema, backupPolicyToProto(view));
    expect(proto.fullIntervalSeconds).toBe(604_800n);
    expect(backupPolicyView(proto)).toEqual(view);
  });

  it('describes a policy in words, zero meaning the fleet default in a spec and never in the policy in force', () => {
    const view = { ...FLEET_DEFAULT_POLICY, fullIntervalSeconds: 604_800, diffIntervalSeconds: 86_400, retentionSeconds: 604_800, archiveTimeoutSeconds: 60 };
    expect(describeBackupPolicy(view, 'never')).toBe('full every 1w, diff every 1d, incr never; restorable for 1w; archive_timeout 1m');
    expect(describeBackupPolicy(FLEET_DEFAULT_POLICY, 'default')).toBe(
      'full fleet default, diff fleet default, incr fleet default; restorable for fleet default; archive_timeout fleet default',
    );
    expect(describeBackupPolicy({ ...view, disabled: true }, 'never')).toBe('disabled: no scheduled backups and no WAL archiving');
  });

  it('notices a policy the coordinator did not keep, but not one that asked for the defaults', () => {
    const asked = { ...FLEET_DEFAULT_POLICY, retentionSeconds: 1_209_600 };
    expect(policyDropped(asked, null)).toBe(true);
    expect(policyDropped(asked, asked)).toBe(false);
    expect(policyDropped({ ...FLEET_DEFAULT_POLICY }, null)).toBe(false);
    expect(policyDropped(null, null)).toBe(false);
  });
});
