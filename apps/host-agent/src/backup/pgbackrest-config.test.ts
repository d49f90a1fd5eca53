import { describe, expect, it } from 'vitest';
import type { BackupRepository } from './backup-types.js';
import { archiveSettings, checkedStanza, renderPgBackRestConfig, shellWord, type PgBackRestPaths } from './pgbackrest-config.js';

const paths: PgBackRestPaths = {
  pgPath: '/var/lib/pgs/instances/acme/data',
  socketPath: '/var/lib/pgs/instances/acme/sock',
  port: 20001,
  spoolPath: '/var/lib/pgs/instances/acme/pgbackrest/spool',
  logPath: '/var/lib/pgs/instances/acme/pgbackrest/log',
  lockPath: '/var/lib/pgs/instances/acme/pgbackrest/lock',
  caFile: '/var/lib/pgs/instances/acme/pgbackrest-ca.pem',
};

describe('renderPgBackRestConfig', () => {
  it('writes a posix repository with encryption and time-based retention', () => {
    const repo: BackupRepository = { store: { kind: 'posix', path: '/srv/backups' }, cipherPass: 'p4ss', keyId: 'k1' };
    expect(renderPgBackRestConfig({ repo, stanza: 'acme', retentionDays: 7, paths }))
      .toBe(`# Written by pgs-host-agent from the fleet backup repository and the tenant spec; edits are overwritten.
[global]
repo1-type=posix
repo1-path=/srv/backups
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=p4ss
repo1-retention-full-type=time
repo1-retention-full=7
compress-type=lz4
archive-async=y
spool-path=/var/lib/pgs/instances/acme/pgbackrest/spool
log-path=/var/lib/pgs/instances/acme/pgbackrest/log
lock-path=/var/lib/pgs/instances/acme/pgbackrest/lock
start-fast=y
log-level-console=off
log-level-stderr=error
log-level-file=info

[acme]
pg1-path=/var/lib/pgs/instances/acme/data
pg1-socket-path=/var/lib/pgs/instances/acme/sock
pg1-port=20001
`);
  });

  it('writes an S3 repository with path-style URLs, a port and a CA file; no cipher and no retention when unset', () => {
    const repo: BackupRepository = {
      store: {
        kind: 's3',
        endpoint: 'localhost',
        port: 9443,
        bucket: 'pgs',
        region: 'us-east-1',
        path: '/fleet',
        pathStyle: true,
        caPem: '-----BEGIN CERTIFICATE-----',
        accessKey: 'AK',
        secretKey: 'SK',
      },
      cipherPass: '',
      keyId: '',
    };
    const text = renderPgBackRestConfig({ repo, stanza: 'acme', retentionDays: 0, paths });
    expect(text.split('\n').slice(1, 12)).toEqual([
      '[global]',
      'repo1-type=s3',
      'repo1-path=/fleet',
      'repo1-s3-endpoint=localhost',
      'repo1-s3-bucket=pgs',
      'repo1-s3-region=us-east-1',
      'repo1-s3-uri-style=path',
      'repo1-storage-port=9443',
      'repo1-storage-ca-file=/var/lib/pgs/instances/acme/pgbackrest-ca.pem',
      'repo1-s3-key=AK',
      'repo1-s3-key-secret=SK',
    ]);
    expect(text).not.toContain('cipher');
    expect(text).not.toContain('retention');
  });

  it('uses host-style URLs, the default port, the system CAs and "/" as the path when those are unset', () => {
    const repo: BackupRepository = {
      store: {
        kind: 's3',
        endpoint: 's3.example.com',
        port: 0,
        bucket: 'b',
        region: 'r',
        path: '',
        pathStyle: false,
        caPem: '',
        accessKey: 'a',
        secretKey: 's',
      },
      cipherPass: '',
      keyId: '',
    };
    const text = renderPgBackRestConfig({ repo, stanza: 'acme', retentionDays: 1, paths });
    expect(text).toContain('repo1-path=/\n');
    expect(text).toContain('repo1-s3-uri-style=host\n');
    expect(text).not.toContain('repo1-storage-port');
    expect(text).not.toContain('repo1-storage-ca-file');
  });

  it('refuses a value with a line break without showing it (it may be a secret)', () => {
    const repo: BackupRepository = { store: { kind: 'posix', path: '/srv' }, cipherPass: 'sec\nret', keyId: '' };
    expect(() => renderPgBackRestConfig({ repo, stanza: 'acme', retentionDays: 7, paths })).toThrow(/repo1-cipher-pass contains a line break/);
    try {
      renderPgBackRestConfig({ repo, stanza: 'acme', retentionDays: 7, paths });
    } catch (err) {
      expect(String(err)).not.toContain('sec');
    }
  });

  it('refuses a stanza that is not a plain name', () => {
    expect(checkedStanza('acme-1.prod_2')).toBe('acme-1.prod_2');
    for (const bad of ['', 'a b', 'a]', '-a', 'a;rm', 'x'.repeat(101)]) expect(() => checkedStanza(bad)).toThrow(/not a valid pgBackRest stanza/);
  });
});

describe('archiveSettings', () => {
  it('archives through pgBackRest into the stanza, with the spec archive_timeout', () => {
    expect(archiveSettings({ stanza: 'acme', archiveTimeoutSeconds: 60, retentionDays: 7 }, '/d/instances/acme/pgbackrest.conf')).toEqual({
      archive_mode: 'on',
      archive_command: 'pgbackrest --config=/d/instances/acme/pgbackrest.conf --stanza=acme archive-push %p',
      archive_timeout: '60s',
    });
  });

  it('writes every key when archiving is off, so turning it off is a change', () => {
    expect(archiveSettings(undefined, '/x')).toEqual({ archive_mode: 'off', archive_command: '', archive_timeout: '0' });
  });

  it('quotes a config path the shell would split', () => {
    expect(shellWord("--config=/data root/it's.conf")).toBe("'--config=/data root/it'\\''s.conf'");
    expect(archiveSettings({ stanza: 'a', archiveTimeoutSeconds: 0, retentionDays: 0 }, '/data root/p.conf').archive_command).toBe(
      "pgbackrest '--config=/data root/p.conf' --stanza=a archive-push %p",
    );
  });
});
