/**
 * Where the secret keys come from: the environment (PGS_SECRET_KEYS or PGS_SECRET_KEY) or a key
 * file readable by its owner only (the key is not part of the code and is configured per
 * environment). The caller passes the environment in; libs never read process.env themselves.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SecurityError } from './errors.js';
import { generateSecretKey, KeyRing, parseKeyList } from './secret-box.js';

/** Names of the environment variables read by loadKeyRing. */
export const SECRET_KEY_ENV = { keys: 'PGS_SECRET_KEYS', key: 'PGS_SECRET_KEY' } as const;

/** Where loadKeyRing looks. */
export interface KeySourceOptions {
  /** The process environment (pass `process.env`). */
  env: Readonly<Record<string, string | undefined>>;
  /** A key file (one `kid:base64` or bare base64 key a line, the first active); wins over env. */
  keyFile?: string | undefined;
}

/** Refuses a key file that group or others can read or write, or that is not a regular file. */
export function checkKeyFileMode(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw new SecurityError('SECRET_KEY_INVALID', `key file ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (!st.isFile()) throw new SecurityError('SECRET_KEY_INVALID', `key file ${file} is not a regular file`);
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new SecurityError(
      'SECRET_KEY_FILE_MODE',
      `key file ${file} has mode ${mode.toString(8).padStart(4, '0')}; it must be readable by its owner only: chmod 600 ${file}`,
    );
  }
}

/** Reads a key file after checking its mode. */
export function readKeyFile(file: string): KeyRing {
  checkKeyFileMode(file);
  return new KeyRing(parseKeyList(fs.readFileSync(file, 'utf8'), `key file ${file}`));
}

/**
 * The key ring of this process: the key file when given, else PGS_SECRET_KEYS
 * (`kid1:base64,kid2:base64`, first active), else PGS_SECRET_KEY (one base64 key). Throws
 * SecurityError with what to set when there is none.
 */
export function loadKeyRing(options: KeySourceOptions): KeyRing {
  if (options.keyFile) return readKeyFile(options.keyFile);
  const list = options.env[SECRET_KEY_ENV.keys];
  if (list !== undefined && list.trim() !== '') return new KeyRing(parseKeyList(list, SECRET_KEY_ENV.keys));
  const single = options.env[SECRET_KEY_ENV.key];
  if (single !== undefined && single.trim() !== '') {
    const keys = parseKeyList(single, SECRET_KEY_ENV.key);
    if (keys.length !== 1) throw new SecurityError('SECRET_KEY_INVALID', `${SECRET_KEY_ENV.key} holds one key; use ${SECRET_KEY_ENV.keys} for several`);
    return new KeyRing(keys);
  }
  throw new SecurityError(
    'SECRET_KEY_INVALID',
    `no secret key: set ${SECRET_KEY_ENV.key} (base64 of 32 random bytes), ${SECRET_KEY_ENV.keys} (kid:base64,... first active) or give a key file (mode 0600)`,
  );
}

/** Writes a new key file (mode 0600, refusing to overwrite) with one fresh key; returns its ring. */
export function createKeyFile(file: string, keyId?: string): KeyRing {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const line = keyId ? `${keyId}:${generateSecretKey()}` : generateSecretKey();
  // 'wx': never clobber an existing key, that would make every sealed secret unreadable.
  fs.writeFileSync(file, `${line}\n`, { mode: 0o600, flag: 'wx' });
  return readKeyFile(file);
}

/** Reads the key file, creating it with a fresh key when it does not exist yet (local fleet default). */
export function ensureKeyFile(file: string): { ring: KeyRing; created: boolean } {
  if (fs.existsSync(file)) return { ring: readKeyFile(file), created: false };
  return { ring: createKeyFile(file), created: true };
}

/**
 * Puts a new active key at the top of a key file, keeping the old ones for opening what is not yet
 * re-sealed. Returns the new ring; remove old lines only after every secret was re-sealed.
 */
export function addKeyToFile(file: string, keyId: string): KeyRing {
  const current = readKeyFile(file);
  if (current.keyIds.includes(keyId)) throw new SecurityError('SECRET_KEY_INVALID', `key id "${keyId}" is already in ${file}`);
  const text = fs.readFileSync(file, 'utf8');
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${keyId}:${generateSecretKey()}\n${text}`, { mode: 0o600, flag: 'wx' });
  fs.renameSync(tmp, file);
  return readKeyFile(file);
}
