/**
 * What `tenant restore` and `tenant recreate --from-backup` ask for, checked before any call:
 * exactly one target (a time, a backup, or the latest archived WAL), a time in RFC 3339, a new
 * tenant or --in-place with --yes. Pure: the flags and the clock in, the request out.
 */
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { TimestampSchema, type Timestamp } from '@bufbuild/protobuf/wkt';
import type { RecreateTenantRequestSchema, RestoreTenantRequestSchema } from '@pgs/proto';
import { validateTenantId } from '@pgs/tenancy';
import { UsageError } from './errors.js';
import { backupIdArg } from './parse.js';

// RFC 3339 section 5.6 date-time; a space for the T is allowed there too ("NOTE: ... may be replaced").
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|([+-])(\d{2}):(\d{2}))$/;
const EXAMPLES = 'e.g. 2026-12-06T10:15:00Z or 2026-12-06T11:15:00+01:00';
// A restore target this far past the local clock is a typo, not clock skew between here and the coordinator.
const FUTURE_SLACK_MS = 5 * 60_000;

/** A parsed --to-time: the instant as a Timestamp, and in ISO form for messages. */
export interface TargetTime {
  timestamp: Timestamp;
  iso: string;
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Parses an RFC 3339 date-time with Z or an offset (seconds required, fractions kept to the nanosecond). */
export function parseRfc3339(text: string, flag: string, now: number): TargetTime {
  const m = DATE_TIME.exec(text.trim());
  const bad = (why: string): UsageError =>
    new UsageError(`invalid ${flag} ${JSON.stringify(text)}: ${why}`, { hint: `give an RFC 3339 time with a zone, ${EXAMPLES}` });
  if (m === null) {
    if (/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text.trim())) throw bad('it has no time zone (add Z for UTC, or an offset like +01:00)');
    throw bad(`expected an RFC 3339 time, ${EXAMPLES}`);
  }
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  // Date.UTC reads years below 100 as 19xx; no backup is older than the Unix epoch anyway.
  if (year < 1970) throw bad('no backup is that old');
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) throw bad('no such date');
  // 60 is a leap second in RFC 3339; PostgreSQL's recovery_target_time has no use for one.
  if (hour > 23 || minute > 59 || second > 59) throw bad('no such time of day');
  let offsetMinutes = 0;
  if (m[9] !== undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) throw bad('no such offset');
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second) - offsetMinutes * 60_000;
  if (ms > now + FUTURE_SLACK_MS) {
    throw new UsageError(`invalid ${flag} ${JSON.stringify(text)}: it is in the future (${new Date(ms).toISOString()})`, {
      hint: 'use --latest to restore everything archived so far',
    });
  }
  const nanos = Number((m[7] ?? '').padEnd(9, '0'));
  const iso = new Date(ms + Math.floor(nanos / 1e6)).toISOString();
  return { timestamp: create(TimestampSchema, { seconds: BigInt(ms / 1000), nanos }), iso };
}

/** The restore flags as commander hands them over. */
export interface RestoreFlags {
  toTime?: string;
  toBackup?: string;
  latest?: boolean;
  as?: string;
  inPlace?: boolean;
  yes?: boolean;
  idempotencyKey?: string;
}

/** Builds the RestoreTenantRequest for `tenant restore <id>`, or a usage error saying what to change. */
export function restoreRequest(id: string, flags: RestoreFlags, now: number): MessageInitShape<typeof RestoreTenantRequestSchema> {
  const given = [flags.toTime !== undefined && '--to-time', flags.toBackup !== undefined && '--to-backup', flags.latest === true && '--latest'].filter(
    (f) => f !== false,
  );
  if (given.length === 0) {
    throw new UsageError('say what to restore to: --to-time <RFC 3339 time>, --to-backup <backup id> or --latest', {
      hint: `see the backups and the recovery window with \`pgsctl backup list ${id}\``,
    });
  }
  if (given.length > 1) throw new UsageError(`use exactly one of --to-time, --to-backup and --latest (got ${given.join(' and ')})`);
  if (flags.inPlace === true && flags.as !== undefined) {
    throw new UsageError('use either --as <new tenant> or --in-place, not both', {
      hint: "--as restores into a new tenant beside the old one; --in-place replaces the tenant's own data",
    });
  }
  if (flags.inPlace === true && flags.yes !== true) {
    throw new UsageError(`--in-place replaces the data of tenant ${id} with the restored data; pass --yes too to confirm`, {
      hint: `or restore into a new tenant first and look at it: pgsctl tenant restore ${id} ... --as ${id}-check`,
    });
  }
  const asTenantId = flags.as === undefined ? '' : validateTenantId(flags.as, '--as');
  if (asTenantId === id)
    throw new UsageError(`--as ${asTenantId} is the tenant being restored`, { hint: 'pick a new tenant id, or replace its data with --in-place --yes' });
  let target: MessageInitShape<typeof RestoreTenantRequestSchema>['target'];
  if (flags.toTime !== undefined) target = { case: 'toTime', value: parseRfc3339(flags.toTime, '--to-time', now).timestamp };
  else if (flags.toBackup !== undefined) target = { case: 'toBackupId', value: backupIdArg(flags.toBackup, id, '--to-backup') };
  else target = { case: 'latest', value: true };
  return { id, target, asTenantId, inPlace: flags.inPlace === true, idempotencyKey: flags.idempotencyKey ?? '' };
}

/** The recreate flags. */
export interface RecreateFlags {
  acceptDataLoss?: boolean;
  fromBackup?: boolean;
  toTime?: string;
}

/** Builds the RecreateTenantRequest for `tenant recreate <id>`: exactly one of --accept-data-loss and --from-backup. */
export function recreateRequest(id: string, flags: RecreateFlags, now: number): MessageInitShape<typeof RecreateTenantRequestSchema> {
  const empty = flags.acceptDataLoss === true;
  const fromBackup = flags.fromBackup === true;
  if (empty && fromBackup) throw new UsageError('use either --from-backup or --accept-data-loss, not both');
  if (!empty && !fromBackup) {
    throw new UsageError(`say how tenant ${id} comes back: --from-backup (its backup and archived WAL) or --accept-data-loss (EMPTY, its data lost)`);
  }
  if (flags.toTime !== undefined && !fromBackup) throw new UsageError('--to-time goes with --from-backup: an empty tenant has no point in time');
  const toTime = flags.toTime === undefined ? undefined : parseRfc3339(flags.toTime, '--to-time', now).timestamp;
  return { id, acceptDataLoss: empty, fromBackup, toTime };
}
