/**
 * The fleet's backup repository, read once at start: where pgBackRest keeps backups and WAL
 * (posix directory or S3), the fleet backup key (repo-cipher-pass, generated on the first start
 * with a key id) and the S3 credentials (from PGS_BACKUP_S3_KEY / PGS_BACKUP_S3_SECRET). Every
 * secret is kept only sealed in the store (AES-256-GCM, the KeyRing, context
 * 'pgs:fleet-secret:<name>'), opened here, sent to agents only over their mTLS stream in Welcome,
 * and never logged. No --backup-repo: backups are off.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, type Logger } from '@pgs/service-kit';
import { validateBackupPolicy, type EffectivePolicy } from '@pgs/tenancy';
import type { KeyRing } from '@pgs/security';
import type { Store } from '../store/contract.js';
import type { CoordinatorConfig } from '../config.js';

/** Where the repository is. */
export type RepositoryLocation =
  | { kind: 'posix'; path: string }
  | {
      kind: 's3';
      endpoint: string;
      port: number;
      bucket: string;
      region: string;
      path: string;
      pathStyle: boolean;
      caPem: string;
      accessKey: string;
      secretKey: string;
    };

/** The repository as agents get it, and the fleet's default policy. */
export interface BackupSettings {
  location: RepositoryLocation;
  /** repo-cipher-pass: the fleet backup key. */
  cipherPass: string;
  /** Names the key, so a restore that cannot decrypt can say which key it needed. */
  keyId: string;
  /** The fleet defaults a tenant's zero policy fields take. */
  policy: EffectivePolicy;
  /** A failed scheduled backup waits this long before the next try. */
  retryAfterMs: number;
  /** A running backup with no answer after this long is FAILED. */
  timeoutMs: number;
}

/** Environment variables of the S3 credentials. */
export const S3_KEY_ENV = 'PGS_BACKUP_S3_KEY';
export const S3_SECRET_ENV = 'PGS_BACKUP_S3_SECRET';

const CIPHER = 'backup-cipher-pass';
const S3_KEY = 'backup-s3-key';
const S3_SECRET = 'backup-s3-secret';

/** The AAD a fleet secret is sealed with (key rotation re-seals with it). */
export function fleetSecretContext(name: string): string {
  return `pgs:fleet-secret:${name}`;
}

/** The fleet policy defaults from the flags, checked with the tenant rules. */
export function fleetPolicy(config: CoordinatorConfig): EffectivePolicy {
  const s = (ms: number): number => Math.round(ms / 1000);
  try {
    return Object.freeze(
      validateBackupPolicy(
        {
          disabled: false,
          fullIntervalSeconds: s(config.backupFullInterval),
          diffIntervalSeconds: s(config.backupDiffInterval),
          incrIntervalSeconds: s(config.backupIncrInterval),
          retentionSeconds: s(config.backupRetention),
          archiveTimeoutSeconds: s(config.backupArchiveTimeout),
        },
        '--backup',
        true,
      ),
    );
  } catch (err) {
    throw new ConfigError(
      `backup policy defaults: ${(err as Error).message
        .replace(/--backup\./, '--backup-')
        .replace(/_seconds/, '')
        .replace(/_/g, '-')}`,
    );
  }
}

/** The repository location from the flags (secrets not filled in). */
function locationOf(config: CoordinatorConfig): RepositoryLocation {
  const repo = config.backupRepo.trim();
  if (repo.startsWith('posix:')) {
    const dir = repo.slice('posix:'.length);
    if (dir === '') throw new ConfigError('--backup-repo posix:<dir> needs a directory, e.g. posix:/srv/pgs-backups');
    return { kind: 'posix', path: path.resolve(dir) };
  }
  if (repo !== 's3') throw new ConfigError(`--backup-repo "${repo}" is neither posix:<dir> nor s3`);
  if (config.backupS3Endpoint === '' || config.backupS3Bucket === '')
    throw new ConfigError('--backup-repo s3 needs --backup-s3-endpoint and --backup-s3-bucket');
  let caPem = '';
  if (config.backupS3CaFile !== '') {
    try {
      caPem = fs.readFileSync(config.backupS3CaFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`--backup-s3-ca-file ${config.backupS3CaFile}: ${(err as Error).message}`);
    }
  }
  const prefix = config.backupS3Path.startsWith('/') ? config.backupS3Path : `/${config.backupS3Path}`;
  return {
    kind: 's3',
    endpoint: config.backupS3Endpoint,
    port: config.backupS3Port,
    bucket: config.backupS3Bucket,
    region: config.backupS3Region,
    path: prefix,
    pathStyle: config.backupS3PathStyle,
    caPem,
    accessKey: '',
    secretKey: '',
  };
}

/** A fleet secret: the stored one opened, else `make()` sealed and stored (first start). */
async function fleetSecret(
  store: Store,
  keys: KeyRing,
  name: string,
  now: number,
  make: () => { value: string; keyId: string },
): Promise<{ value: string; keyId: string; created: boolean }> {
  const stored = await store.read.secrets.getFleetSecret(name);
  if (stored) return { value: keys.openText(stored.sealed, fleetSecretContext(name)), keyId: stored.keyId, created: false };
  const made = make();
  const kept = await store.transaction((tx) =>
    tx.secrets.putFleetSecretOnce({ name, keyId: made.keyId, sealed: keys.seal(made.value, fleetSecretContext(name)), createdAt: now }),
  );
  return { value: keys.openText(kept.sealed, fleetSecretContext(name)), keyId: kept.keyId, created: true };
}

/** The S3 credentials: given in the environment (then stored sealed, replacing older ones), else the stored ones. */
async function s3Credentials(
  store: Store,
  keys: KeyRing,
  env: Readonly<Record<string, string | undefined>>,
  now: number,
): Promise<{ accessKey: string; secretKey: string }> {
  const key = (env[S3_KEY_ENV] ?? '').trim();
  const secret = (env[S3_SECRET_ENV] ?? '').trim();
  if ((key === '') !== (secret === '')) throw new ConfigError(`${S3_KEY_ENV} and ${S3_SECRET_ENV} go together`);
  if (key !== '') {
    await store.transaction((tx) => tx.secrets.putFleetSecret({ name: S3_KEY, keyId: '', sealed: keys.seal(key, fleetSecretContext(S3_KEY)), createdAt: now }));
    await store.transaction((tx) =>
      tx.secrets.putFleetSecret({ name: S3_SECRET, keyId: '', sealed: keys.seal(secret, fleetSecretContext(S3_SECRET)), createdAt: now }),
    );
    return { accessKey: key, secretKey: secret };
  }
  const k = await store.read.secrets.getFleetSecret(S3_KEY);
  const s = await store.read.secrets.getFleetSecret(S3_SECRET);
  if (!k || !s)
    throw new ConfigError(`--backup-repo s3 needs the credentials once: set ${S3_KEY_ENV} and ${S3_SECRET_ENV} (they are then kept sealed in the store)`);
  return { accessKey: keys.openText(k.sealed, fleetSecretContext(S3_KEY)), secretKey: keys.openText(s.sealed, fleetSecretContext(S3_SECRET)) };
}

/** A new key id, e.g. "bk-20261206-3f9a1c2e". */
function newKeyId(now: number): string {
  return `bk-${new Date(now).toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(4).toString('hex')}`;
}

/** Reads the repository settings; undefined when --backup-repo is empty (backups off). */
export async function loadBackupSettings(deps: {
  config: CoordinatorConfig;
  env: Readonly<Record<string, string | undefined>>;
  store: Store;
  keys: KeyRing;
  now: number;
  log: Logger;
}): Promise<BackupSettings | undefined> {
  const { config, store, keys, now, log } = deps;
  const policy = fleetPolicy(config);
  if (config.backupRepo.trim() === '') {
    log.info({}, 'no backup repository configured; backups are off (start with --backup-repo to turn them on)');
    return undefined;
  }
  let location = locationOf(config);
  if (location.kind === 's3') location = { ...location, ...(await s3Credentials(store, keys, deps.env, now)) };
  // 48 random bytes: pgBackRest's repo-cipher-pass is a passphrase; make it long and plain ASCII.
  const cipher = await fleetSecret(store, keys, CIPHER, now, () => ({ value: randomBytes(48).toString('base64url'), keyId: newKeyId(now) }));
  if (cipher.created)
    log.warn(
      { keyId: cipher.keyId },
      'generated the fleet backup key; it is kept only sealed in the store: keep the store and its secret key safe, or the backups cannot be read',
    );
  const where =
    location.kind === 'posix' ? { path: location.path } : { endpoint: location.endpoint, port: location.port, bucket: location.bucket, path: location.path };
  log.info({ repository: location.kind, ...where, keyId: cipher.keyId, policy }, 'backup repository configured');
  return { location, cipherPass: cipher.value, keyId: cipher.keyId, policy, retryAfterMs: config.backupRetryAfter, timeoutMs: config.backupTimeout };
}
