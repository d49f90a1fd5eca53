import { create } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { RestoreTenantRequestSchema } from '@pgs/proto';
import { ValidationError } from '@pgs/tenancy';
import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { parseRfc3339, recreateRequest, restoreRequest } from './restore-request.js';

const NOW = Date.parse('2026-12-06T12:00:00Z');

describe('--to-time (RFC 3339)', () => {
  it('accepts Z and offsets, and keeps fractions to the nanosecond', () => {
    expect(parseRfc3339('2026-12-06T10:15:00Z', '--to-time', NOW).iso).toBe('2026-12-06T10:15:00.000Z');
    expect(parseRfc3339('2026-12-06T11:15:00+01:00', '--to-time', NOW).iso).toBe('2026-12-06T10:15:00.000Z');
    expect(parseRfc3339('2026-12-06t05:45:00-04:30', '--to-time', NOW).iso).toBe('2026-12-06T10:15:00.000Z');
    expect(parseRfc3339('2026-12-06 10:15:00z', '--to-time', NOW).iso).toBe('2026-12-06T10:15:00.000Z');
    const precise = parseRfc3339('2026-12-06T10:15:00.123456789Z', '--to-time', NOW).timestamp;
    expect(precise.seconds).toBe(BigInt(Date.parse('2026-12-06T10:15:00Z') / 1000));
    expect(precise.nanos).toBe(123_456_789);
    expect(parseRfc3339('2026-12-06T10:15:00.5Z', '--to-time', NOW).timestamp.nanos).toBe(500_000_000);
  });

  it('says what is wrong with a time it cannot use', () => {
    const message = (text: string): string => {
      try {
        parseRfc3339(text, '--to-time', NOW);
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        return (err as UsageError).message;
      }
      throw new Error(`${text} was accepted`);
    };
    expect(message('2026-12-06T10:15:00')).toContain('it has no time zone (add Z for UTC, or an offset like +01:00)');
    expect(message('2026-12-06T10:15Z')).toContain('expected an RFC 3339 time, e.g. 2026-12-06T10:15:00Z or 2026-12-06T11:15:00+01:00');
    expect(message('yesterday')).toContain('expected an RFC 3339 time');
    expect(message('1765016100')).toContain('expected an RFC 3339 time');
    expect(message('2026-02-29T10:00:00Z')).toContain('no such date');
    expect(message('2026-13-01T10:00:00Z')).toContain('no such date');
    expect(message('2026-12-06T24:00:00Z')).toContain('no such time of day');
    expect(message('2026-12-06T10:00:00+25:00')).toContain('no such offset');
    expect(message('0070-01-01T00:00:00Z')).toContain('no backup is that old');
    expect(message('2026-12-06T13:00:00Z')).toContain('it is in the future (2026-12-06T13:00:00.000Z)');
    // Leap days exist where they should.
    expect(parseRfc3339('2024-02-29T10:00:00Z', '--to-time', NOW).iso).toBe('2024-02-29T10:00:00.000Z');
  });
});

describe('tenant restore flags', () => {
  it('builds the request for each target', () => {
    const toTime = create(RestoreTenantRequestSchema, restoreRequest('acme', { toTime: '2026-12-06T10:15:00Z', as: 'acme-before' }, NOW));
    expect(toTime.target.case).toBe('toTime');
    expect(toTime.target.case === 'toTime' && timestampDate(toTime.target.value).toISOString()).toBe('2026-12-06T10:15:00.000Z');
    expect(toTime).toMatchObject({ id: 'acme', asTenantId: 'acme-before', inPlace: false });
    expect(restoreRequest('acme', { toBackup: 'b-1' }, NOW)).toMatchObject({ target: { case: 'toBackupId', value: 'b-1' }, asTenantId: '' });
    expect(restoreRequest('acme', { latest: true, inPlace: true, yes: true }, NOW)).toMatchObject({ target: { case: 'latest', value: true }, inPlace: true });
  });

  it('needs exactly one target', () => {
    expect(() => restoreRequest('acme', {}, NOW)).toThrow('say what to restore to: --to-time <RFC 3339 time>, --to-backup <backup id> or --latest');
    expect(() => restoreRequest('acme', { latest: true, toTime: '2026-12-06T10:15:00Z' }, NOW)).toThrow(
      'use exactly one of --to-time, --to-backup and --latest (got --to-time and --latest)',
    );
    expect(() => restoreRequest('acme', { toBackup: '  ' }, NOW)).toThrow('invalid --to-backup "  ": expected a backup id');
  });

  it('restores in place only with --yes, and never both in place and --as', () => {
    expect(() => restoreRequest('acme', { latest: true, inPlace: true }, NOW)).toThrow(
      '--in-place replaces the data of tenant acme with the restored data; pass --yes too to confirm',
    );
    expect(() => restoreRequest('acme', { latest: true, inPlace: true, yes: true, as: 'b' }, NOW)).toThrow(
      'use either --as <new tenant> or --in-place, not both',
    );
  });

  it('checks the new tenant id with the tenancy rules, and refuses the source itself', () => {
    expect(() => restoreRequest('acme', { latest: true, as: 'Bad_Name' }, NOW)).toThrow(ValidationError);
    expect(() => restoreRequest('acme', { latest: true, as: 'acme' }, NOW)).toThrow('--as acme is the tenant being restored');
  });
});

describe('tenant recreate flags', () => {
  it('takes exactly one of --from-backup and --accept-data-loss', () => {
    expect(recreateRequest('acme', { acceptDataLoss: true }, NOW)).toEqual({ id: 'acme', acceptDataLoss: true, fromBackup: false, toTime: undefined });
    const fromBackup = recreateRequest('acme', { fromBackup: true, toTime: '2026-12-06T11:15:00+01:00' }, NOW);
    expect(fromBackup).toMatchObject({ acceptDataLoss: false, fromBackup: true });
    expect(fromBackup.toTime?.seconds).toBe(BigInt(Date.parse('2026-12-06T10:15:00Z') / 1000));
    expect(() => recreateRequest('acme', {}, NOW)).toThrow(
      'say how tenant acme comes back: --from-backup (its backup and archived WAL) or --accept-data-loss (EMPTY, its data lost)',
    );
    expect(() => recreateRequest('acme', { acceptDataLoss: true, fromBackup: true }, NOW)).toThrow('use either --from-backup or --accept-data-loss, not both');
    expect(() => recreateRequest('acme', { acceptDataLoss: true, toTime: '2026-12-06T10:15:00Z' }, NOW)).toThrow('--to-time goes with --from-backup');
    expect(() => recreateRequest('acme', { fromBackup: true, toTime: 'noon' }, NOW)).toThrow(UsageError);
  });
});
