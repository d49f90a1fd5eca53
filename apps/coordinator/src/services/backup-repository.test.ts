import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSecretKey, KeyRing, decodeSecretKey, type SecretKey } from '@pgs/security';
import { ConfigError } from '@pgs/service-kit';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { fleetSecretContext, loadBackupSettings, S3_KEY_ENV, S3_SECRET_ENV } from './backup-repository.js';
import { CONFIG_SPEC, readConfig } from '../config.js';
import { openStore } from '../store/open-store.js';
import type { SqliteStore } from '../store/sqlite-store.js';

const dirs: string[] = [];
const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function setup(): { store: SqliteStore; keys: KeyRing; dataDir: string; k1: SecretKey } {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-backup-repo-'));
  dirs.push(dataDir);
  const opened = openStore({ dataDir, allowInit: true, routeHistory: 10, now: 1000 });
  closers.push(() => void opened.store.close());
  const k1 = { id: 'k1', key: decodeSecretKey(generateSecretKey(), 'test') };
  return { store: opened.store, keys: new KeyRing([k1]), dataDir, k1 };
}

function config(flags: string[]) {
  const r = readConfig(flags, {});
  if (r.kind !== 'config') throw new Error('help');
  return r.config;
}

const log = pino({ level: 'silent' });

describe('loadBackupSettings', () => {
  it('is off without --backup-repo', async () => {
    const { store, keys } = setup();
    expect(await loadBackupSettings({ config: config([]), env: {}, store, keys, now: 1000, log })).toBeUndefined();
  });

  it('generates the fleet key once, keeps it only sealed, and gives the same key after a restart', async () => {
    const { store, keys } = setup();
    const first = (await loadBackupSettings({
      config: config(['--backup-repo', 'posix:/srv/pgs-backups']),
      env: {},
      store,
      keys,
      now: Date.UTC(2026, 11, 6),
      log,
    }))!;
    expect(first.location).toEqual({ kind: 'posix', path: '/srv/pgs-backups' });
    expect(first.keyId).toMatch(/^bk-20261206-[0-9a-f]{8}$/);
    const stored = await store.read.secrets.getFleetSecret('backup-cipher-pass');
    expect(stored?.sealed).toMatch(/^v1\.k1\./);
    expect(stored?.sealed).not.toContain(first.cipherPass);
    const again = (await loadBackupSettings({
      config: config(['--backup-repo', 'posix:/srv/pgs-backups']),
      env: {},
      store,
      keys,
      now: Date.UTC(2026, 11, 7),
      log,
    }))!;
    expect([again.cipherPass, again.keyId]).toEqual([first.cipherPass, first.keyId]);
    expect(first.policy).toEqual({
      disabled: false,
      fullIntervalSeconds: 604_800,
      diffIntervalSeconds: 86_400,
      incrIntervalSeconds: 0,
      retentionSeconds: 604_800,
      archiveTimeoutSeconds: 60,
    });
  });

  it('s3: needs endpoint, bucket and the credentials once; keeps them sealed and uses them on later starts', async () => {
    const { store, keys, dataDir } = setup();
    const ca = path.join(dataDir, 'ca.pem');
    fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const s3 = ['--backup-repo', 's3', '--backup-s3-endpoint', 'localhost', '--backup-s3-port', '4569', '--backup-s3-bucket', 'pgs', '--backup-s3-ca-file', ca];
    await expect(loadBackupSettings({ config: config(['--backup-repo', 's3']), env: {}, store, keys, now: 1000, log })).rejects.toThrow(
      /--backup-s3-endpoint and --backup-s3-bucket/,
    );
    await expect(loadBackupSettings({ config: config(s3), env: {}, store, keys, now: 1000, log })).rejects.toThrow(
      new RegExp(`${S3_KEY_ENV} and ${S3_SECRET_ENV}`),
    );
    const env = { [S3_KEY_ENV]: 'AKIAEXAMPLE', [S3_SECRET_ENV]: 'very-secret-key' };
    const first = (await loadBackupSettings({ config: config(s3), env, store, keys, now: 1000, log }))!;
    expect(first.location).toMatchObject({
      kind: 's3',
      endpoint: 'localhost',
      port: 4569,
      bucket: 'pgs',
      region: 'us-east-1',
      path: '/pgs',
      pathStyle: true,
      accessKey: 'AKIAEXAMPLE',
      secretKey: 'very-secret-key',
    });
    expect(first.location.kind === 's3' && first.location.caPem).toContain('BEGIN CERTIFICATE');
    expect((await store.read.secrets.getFleetSecret('backup-s3-secret'))?.sealed).not.toContain('very-secret-key');
    const later = (await loadBackupSettings({ config: config(s3), env: {}, store, keys, now: 2000, log }))!;
    expect(later.location).toMatchObject({ accessKey: 'AKIAEXAMPLE', secretKey: 'very-secret-key' });
  });

  it('logs the key id and where the repository is, never the key or the S3 credentials', async () => {
    const { store, keys } = setup();
    const lines: string[] = [];
    const capture = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) });
    const env = { [S3_KEY_ENV]: 'AKIALOGCHECK', [S3_SECRET_ENV]: 'log-check-secret-value' };
    const s = (await loadBackupSettings({
      config: config(['--backup-repo', 's3', '--backup-s3-endpoint', 'localhost', '--backup-s3-bucket', 'b']),
      env,
      store,
      keys,
      now: 1000,
      log: capture,
    }))!;
    const text = lines.join('');
    expect(text).toContain(s.keyId);
    expect(text).toContain('"bucket":"b"');
    for (const secret of [s.cipherPass, 'AKIALOGCHECK', 'log-check-secret-value']) expect(text).not.toContain(secret);
  });

  it('re-seals the fleet secrets under a new secret key (key rotation), after which the old key can go', async () => {
    const { store, keys, k1 } = setup();
    const flags = config(['--backup-repo', 'posix:/srv/b']);
    const before = (await loadBackupSettings({ config: flags, env: {}, store, keys, now: 1000, log }))!;
    const k2 = { id: 'k2', key: decodeSecretKey(generateSecretKey(), 'test') };
    const rotating = new KeyRing([k1, k2], 'k2');
    const count = await store.transaction((tx) =>
      tx.secrets.resealAll((sealed, where) => (where.table === 'fleet_secrets' ? rotating.reseal(sealed, fleetSecretContext(where.name)) : sealed)),
    );
    expect(count).toBe(1);
    expect((await store.read.secrets.getFleetSecret('backup-cipher-pass'))?.sealed).toMatch(/^v1\.k2\./);
    const after = (await loadBackupSettings({ config: flags, env: {}, store, keys: new KeyRing([k2]), now: 2000, log }))!;
    expect([after.cipherPass, after.keyId]).toEqual([before.cipherPass, before.keyId]);
  });

  it('refuses a repository it cannot read and policy defaults outside the bounds', async () => {
    const { store, keys } = setup();
    await expect(loadBackupSettings({ config: config(['--backup-repo', 'nfs:/x']), env: {}, store, keys, now: 1000, log })).rejects.toThrow(ConfigError);
    await expect(loadBackupSettings({ config: config(['--backup-repo', 'posix:']), env: {}, store, keys, now: 1000, log })).rejects.toThrow(
      /needs a directory/,
    );
    expect(() => readConfig(['--backup-retention', '1h'], {})).toThrow(/below the minimum/);
    expect(() => readConfig(['--backup-archive-timeout', '2h'], {})).toThrow(/above the maximum/);
  });

  it('documents every backup flag in --help', async () => {
    const help = readConfig(['--help'], {});
    expect(help.kind).toBe('help');
    const text = help.kind === 'help' ? help.text : '';
    for (const spec of Object.values(CONFIG_SPEC)) if (spec.flag.startsWith('--backup')) expect(text).toContain(spec.flag);
  });
});
