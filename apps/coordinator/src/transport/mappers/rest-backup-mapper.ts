/** JSON <-> domain for the backup and restore REST routes (snake_case, times in RFC 3339, types in lower case). */
import { UNSET_BACKUP_POLICY, ValidationError, type BackupPolicy, type BackupType, type RecoveryWindow, type RestoreTarget } from '@pgs/tenancy';
import type { BackupRecord, RestoreRecord } from '../../domain/model.js';

type Json = Record<string, unknown>;

const iso = (ms: number): string | null => (ms > 0 ? new Date(ms).toISOString() : null);

/** A backup as JSON. */
export function backupJson(b: BackupRecord): Json {
  return {
    id: b.id,
    instance: b.tenantId,
    type: b.type.toLowerCase(),
    status: b.status.toLowerCase(),
    reason: b.reason,
    host_id: b.hostId,
    label: b.label,
    prior_label: b.priorLabel,
    started_at: iso(b.startedAt),
    finished_at: iso(b.finishedAt),
    size_bytes: b.sizeBytes,
    repo_size_bytes: b.repoSizeBytes,
    lsn_start: b.lsnStart,
    lsn_stop: b.lsnStop,
    timeline: b.timeline,
    trigger: b.trigger,
    stanza: b.stanza,
  };
}

/** A recovery window as JSON (null when nothing is restorable). */
export function windowJson(w: RecoveryWindow | undefined): Json | null {
  return w ? { earliest: iso(w.earliest), latest: iso(w.latest) } : null;
}

/** A restore as JSON. */
export function restoreJson(r: RestoreRecord): Json {
  return {
    id: r.id,
    source_instance: r.sourceTenantId,
    target_instance: r.targetTenantId,
    kind: r.kind,
    state: r.state.toLowerCase(),
    reason: r.reason,
    to_time: iso(r.toTime),
    to_backup_id: r.toBackupId,
    latest: r.latest,
    in_place: r.kind === 'in_place',
    host_id: r.hostId,
    started_at: iso(r.startedAt),
    finished_at: iso(r.finishedAt),
    recovered_lsn: r.recoveredLsn,
    recovered_time: iso(r.recoveredTime),
    missing_wal_bytes: r.missingWalBytes,
    timeline: r.timeline,
  };
}

/** The "type" of a backup request: full, diff, incr, or absent (the coordinator picks). */
export function backupTypeOf(body: Json): BackupType | undefined {
  const t = body.type;
  if (t === undefined || t === null || t === '') return undefined;
  if (t === 'full' || t === 'diff' || t === 'incr') return t.toUpperCase() as BackupType;
  throw new ValidationError('type', t, "'full', 'diff' or 'incr' (or absent: full without a restorable full, else diff)");
}

/** The target of a restore body: exactly one of to_time (RFC 3339), backup_id, latest. */
export function restoreTargetOf(body: Json): RestoreTarget {
  const given = ['to_time', 'backup_id', 'latest'].filter((k) => body[k] !== undefined && body[k] !== null && body[k] !== false);
  if (given.length !== 1) throw new ValidationError('target', given.join(', ') || 'none', 'exactly one of to_time (RFC 3339), backup_id, latest: true');
  if (typeof body.to_time === 'string') {
    const time = Date.parse(body.to_time);
    if (Number.isNaN(time)) throw new ValidationError('to_time', body.to_time, 'an RFC 3339 time, e.g. 2026-12-06T10:15:00Z');
    return { kind: 'time', time };
  }
  if (body.to_time !== undefined && body.to_time !== null) throw new ValidationError('to_time', body.to_time, 'an RFC 3339 time string');
  if (typeof body.backup_id === 'string') return { kind: 'backup', backupId: body.backup_id };
  if (body.backup_id !== undefined && body.backup_id !== null) throw new ValidationError('backup_id', body.backup_id, 'a backup id string');
  if (body.latest !== true) throw new ValidationError('latest', body.latest, 'true');
  return { kind: 'latest' };
}

const POLICY_FIELDS: readonly [keyof BackupPolicy, string][] = [
  ['fullIntervalSeconds', 'full_interval_seconds'],
  ['diffIntervalSeconds', 'diff_interval_seconds'],
  ['incrIntervalSeconds', 'incr_interval_seconds'],
  ['retentionSeconds', 'retention_seconds'],
  ['archiveTimeoutSeconds', 'archive_timeout_seconds'],
];

/** An instance's backup policy as JSON (seconds; 0 = the fleet default). */
export function policyJson(p: BackupPolicy | undefined): Json {
  const policy = p ?? UNSET_BACKUP_POLICY;
  return { disabled: policy.disabled, ...Object.fromEntries(POLICY_FIELDS.map(([k, json]) => [json, policy[k]])) };
}

/** `backup_policy` of an instance body over `base` (absent fields keep the base; the bounds are checked with the spec). */
export function policyFromJson(value: unknown, base: BackupPolicy | undefined): BackupPolicy | undefined {
  if (value === undefined || value === null) return base;
  if (typeof value !== 'object' || Array.isArray(value)) throw new ValidationError('backup_policy', value, 'an object with disabled and *_seconds fields');
  const body = value as Json;
  const out: BackupPolicy = { ...(base ?? UNSET_BACKUP_POLICY) };
  if (body.disabled !== undefined) {
    if (typeof body.disabled !== 'boolean') throw new ValidationError('backup_policy.disabled', body.disabled, 'true or false');
    out.disabled = body.disabled;
  }
  for (const [k, json] of POLICY_FIELDS) {
    const v = body[json];
    if (v === undefined) continue;
    if (typeof v !== 'number') throw new ValidationError(`backup_policy.${json}`, v, 'a whole number of seconds (0 = the fleet default)');
    (out as unknown as Record<string, number>)[k] = v;
  }
  return out;
}
