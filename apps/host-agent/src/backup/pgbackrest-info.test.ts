import { describe, expect, it } from 'vitest';
import { backupResultFrom, parseStanzaInfo, printable, timelineOfWal } from './pgbackrest-info.js';

// What pgBackRest 2.45 printed for a stanza with a full and a diff backup (system-id past 2^53 kept as text here).
const INFO = JSON.stringify([
  {
    archive: [{ database: { id: 1, 'repo-key': 1 }, id: '15-1', max: '000000010000000000000005', min: '000000010000000000000001' }],
    backup: [
      {
        archive: { start: '000000010000000000000002', stop: '000000010000000000000002' },
        backrest: { format: 5, version: '2.45' },
        database: { id: 1, 'repo-key': 1 },
        error: false,
        info: { delta: 22992570, repository: { delta: 4546096, size: 4546096 }, size: 22992570 },
        label: '20261206-092802F',
        lsn: { start: '0/2000028', stop: '0/2000100' },
        prior: null,
        reference: null,
        timestamp: { start: 1796549282, stop: 1796549284 },
        type: 'full',
      },
      {
        archive: { start: '000000010000000000000004', stop: '000000010000000000000004' },
        error: false,
        info: { delta: 8192, repository: { delta: 1024, size: 4546096 }, size: 22992570 },
        label: '20261206-092802F_20261206-093000D',
        lsn: { start: '0/4000028', stop: '0/4000100' },
        prior: '20261206-092802F',
        reference: ['20261206-092802F'],
        timestamp: { start: 1796549400, stop: 1796549401 },
        type: 'diff',
      },
    ],
    cipher: 'aes-256-cbc',
    name: 'acme',
    repo: [{ cipher: 'aes-256-cbc', key: 1, status: { code: 0, message: 'ok' } }],
    status: { code: 0, lock: { backup: { held: false } }, message: 'ok' },
  },
]);

describe('parseStanzaInfo', () => {
  it('reads the backups and the archive range', () => {
    const info = parseStanzaInfo(INFO, 'acme');
    expect(info.state).toBe('ok');
    expect(info.archiveMinWal).toBe('000000010000000000000001');
    expect(info.archiveMaxWal).toBe('000000010000000000000005');
    expect(info.backups.map((b) => [b.label, b.type, b.priorLabel])).toEqual([
      ['20261206-092802F', 'FULL', ''],
      ['20261206-092802F_20261206-093000D', 'DIFF', '20261206-092802F'],
    ]);
  });

  it('makes the result of a backup with the stanza totals', () => {
    expect(backupResultFrom(parseStanzaInfo(INFO, 'acme'), '20261206-092802F_20261206-093000D')).toEqual({
      label: '20261206-092802F_20261206-093000D',
      priorLabel: '20261206-092802F',
      type: 'DIFF',
      startedAtMs: 1796549400_000,
      finishedAtMs: 1796549401_000,
      sizeBytes: 22992570,
      repoSizeBytes: 1024,
      lsnStart: '0/4000028',
      lsnStop: '0/4000100',
      timeline: 1,
      stanzaRepoSizeBytes: 4546096 + 1024,
      archiveMinWal: '000000010000000000000001',
      archiveMaxWal: '000000010000000000000005',
    });
    expect(backupResultFrom(parseStanzaInfo(INFO, 'acme')).label).toBe('20261206-092802F_20261206-093000D');
    expect(() => backupResultFrom(parseStanzaInfo(INFO, 'acme'), 'nope')).toThrow(/does not list backup nope/);
  });

  it('tells a missing stanza, an unreadable one (wrong key) and garbage apart', () => {
    const missing =
      '[{"archive":[],"backup":[],"cipher":"aes-256-cbc","db":[],"name":"x","repo":[{"cipher":"aes-256-cbc","key":1,"status":{"code":1,"message":"missing stanza path"}}],"status":{"code":1,"lock":{"backup":{"held":false}},"message":"missing stanza path"}}]';
    expect(parseStanzaInfo(missing, 'x').state).toBe('missing');
    const unreadable = JSON.stringify([
      {
        archive: [],
        backup: [],
        name: 'x',
        repo: [
          {
            key: 1,
            status: {
              code: 99,
              message:
                "[FormatError] unable to load info file '/r/backup/x/backup.info':\nFormatError: key/value found outside of section at line 1: Salted__\u0001\u00ff",
            },
          },
        ],
        status: { code: 99, message: 'other' },
      },
    ]);
    const u = parseStanzaInfo(unreadable, 'x');
    expect(u.state).toBe('unreadable');
    expect(u.message).toContain('unable to load info file');
    expect([...u.message].every((ch) => ch.charCodeAt(0) >= 0x20 || ch === '\n')).toBe(true);
    expect(u.message).not.toContain('\u00ff');
    expect(parseStanzaInfo('[]', 'x').state).toBe('missing');
    expect(() => parseStanzaInfo('ERROR: nope', 'x')).toThrow(/did not print JSON/);
    expect(() => parseStanzaInfo('{}', 'x')).toThrow(/not a list/);
  });

  it('reads timelines from WAL names and keeps text printable', () => {
    expect(timelineOfWal('0000000A0000000000000003')).toBe(10);
    expect(timelineOfWal('00000002.history')).toBe(0);
    expect(printable('a\u0000\u0001b\nc')).toBe('a?b\nc');
  });
});

describe('parseStanzaInfo with raw bytes', () => {
  it('reads info whose message holds raw control characters (an encrypted file read without its key)', () => {
    const raw =
      '[{"archive":[],"backup":[],"name":"x","repo":[{"key":1,"status":{"code":99,"message":"[FormatError] unable to load info file: Salted__\u0001\u0002\u001f"}}],"status":{"code":99,"message":"other"}}]';
    expect(parseStanzaInfo(raw, 'x').state).toBe('unreadable');
  });
});
