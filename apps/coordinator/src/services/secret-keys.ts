/**
 * Where the coordinator's key ring for secrets at rest comes from: --secret-key-file, else
 * PGS_SECRET_KEYS / PGS_SECRET_KEY, else a key file in the data dir created on first start
 * (mode 0600; fine for a local fleet, production sets the key from its secret manager so that the
 * store and the key never sit on the same disk).
 */
import path from 'node:path';
import { ensureKeyFile, loadKeyRing, SECRET_KEY_ENV, type KeyRing } from '@pgs/security';
import type { Logger } from '@pgs/service-kit';

/** Loads (or creates) the key ring. */
export function coordinatorKeyRing(options: { keyFile: string; dataDir: string; env: Readonly<Record<string, string | undefined>> }, log: Logger): KeyRing {
  const fromEnv = [SECRET_KEY_ENV.keys, SECRET_KEY_ENV.key].some((name) => (options.env[name] ?? '').trim() !== '');
  if (options.keyFile !== '' || fromEnv) return loadKeyRing({ env: options.env, keyFile: options.keyFile || undefined });
  const file = path.join(options.dataDir, 'secret.key');
  const { ring, created } = ensureKeyFile(file);
  if (created) log.warn({ file }, 'no secret key given; created one beside the store (set PGS_SECRET_KEY in production)');
  return ring;
}
