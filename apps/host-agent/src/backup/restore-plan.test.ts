import { describe, expect, it } from 'vitest';
import type { BackupRepository } from './backup-types.js';
import type { InfoBackup, StanzaInfo } from './pgbackrest-info.js';
import { checkRestorable, pgBackRestTime, restoreOptions, targetNotReachedMessage } from './restore-plan.js';

const repo: BackupRepository = { store: { kind: 'posix', path: '/r' }, cipherPass: 'secret-pass', keyId: 'fleet-2026' };
const full = (label: string, finishedAtMs: number, error = false): InfoBackup => ({
  label,
  priorLabel: '',
  type: 'FULL',
  startedAtMs: finishedAtMs - 1000,
  finishedAtMs,
  sizeBytes: 1,
  repoSizeBytes: 1,
  lsnStart: '0/1',
  lsnStop: '0/2',
  timeline: 1,
  error,
});
const info = (over: Partial<StanzaInfo>): StanzaInfo => ({
  name: 'acme',
  state: 'ok',
  message: 'ok',
  backups: [full('B1', 10_000)],
  archiveMinWal: '',
  archiveMaxWal: '000000010000000000000009',
  ...over,
});

describe('restoreOptions', () => {
  it('maps each target to pgbackrest restore options', () => {
    expect(restoreOptions({ kind: 'time', time: Date.parse('2026-12-06T09:28:10.194567Z') })).toEqual([
      '--type=time',
      '--target=2026-12-06 09:28:10.194+00',
      '--target-action=promote',
    ]);
    expect(restoreOptions({ kind: 'backup', label: '20261206-092802F' })).toEqual(['--set=20261206-092802F', '--type=immediate', '--target-action=promote']);
    expect(restoreOptions({ kind: 'latest' })).toEqual([]);
    expect(pgBackRestTime(0)).toBe('1970-01-01 00:00:00.000+00');
  });
});

describe('checkRestorable', () => {
  it('passes a stanza with a backup that ended before the target', () => {
    expect(() => checkRestorable(info({}), { kind: 'time', time: 20_000 }, repo)).not.toThrow();
    expect(() => checkRestorable(info({}), { kind: 'latest' }, repo)).not.toThrow();
    expect(() => checkRestorable(info({}), { kind: 'backup', label: 'B1' }, repo)).not.toThrow();
  });

  it('says when no backup ended before the target', () => {
    expect(() => checkRestorable(info({}), { kind: 'time', time: 5_000 }, repo)).toThrow(
      expect.objectContaining({ code: 'NO_BACKUP_BEFORE_TARGET', message: expect.stringMatching(/oldest \(B1\) ended at 1970-01-01T00:00:10.000Z/) }),
    );
    // pgBackRest compares stop times in whole seconds: a backup that stopped in the target's second does not count.
    expect(() => checkRestorable(info({}), { kind: 'time', time: 10_999 }, repo)).toThrow(expect.objectContaining({ code: 'NO_BACKUP_BEFORE_TARGET' }));
    expect(() => checkRestorable(info({}), { kind: 'time', time: 11_000 }, repo)).not.toThrow();
    // A failed backup does not count.
    expect(() => checkRestorable(info({ backups: [full('B0', 1_000, true), full('B1', 10_000)] }), { kind: 'time', time: 5_000 }, repo)).toThrow(
      expect.objectContaining({ code: 'NO_BACKUP_BEFORE_TARGET' }),
    );
  });

  it('names the key, never the pass, when the stanza cannot be decrypted', () => {
    let caught: unknown;
    try {
      checkRestorable(info({ state: 'unreadable', message: 'unable to load info file', backups: [] }), { kind: 'latest' }, repo);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'BACKUP_KEY', message: expect.stringContaining('"fleet-2026"') });
    expect(String((caught as Error).message)).not.toContain('secret-pass');
  });

  it('says when the stanza or the backup does not exist', () => {
    expect(() => checkRestorable(info({ state: 'missing', backups: [] }), { kind: 'latest' }, repo)).toThrow(
      expect.objectContaining({ code: 'BACKUP_NOT_FOUND' }),
    );
    expect(() => checkRestorable(info({ backups: [] }), { kind: 'latest' }, repo)).toThrow(expect.objectContaining({ code: 'BACKUP_NOT_FOUND' }));
    expect(() => checkRestorable(info({}), { kind: 'backup', label: 'B9' }, repo)).toThrow(
      expect.objectContaining({ code: 'BACKUP_NOT_FOUND', message: expect.stringContaining('it has B1') }),
    );
  });
});

describe('targetNotReachedMessage', () => {
  it('says which time the archive reaches', () => {
    expect(
      targetNotReachedMessage({ kind: 'time', time: Date.parse('2026-12-06T12:00:00Z') }, Date.parse('2026-12-06T10:00:00Z'), '0000000100000000000000AA'),
    ).toBe(
      "recovery ended before configured recovery target was reached: the target 2026-12-06T12:00:00.000Z is after the end of the archive; the archive reaches 2026-12-06T10:00:00.000Z (its last commit), last archived WAL 0000000100000000000000AA; pick an earlier time or wait until the source's WAL is archived",
    );
  });
});
