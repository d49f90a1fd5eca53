/**
 * Envelope encryption of the secrets the platform must keep (CA key, runtime credentials, join
 * tokens not yet used, generated passwords not yet shown), with AES-256-GCM under a key that is not
 * part of the code and is configured per environment. Every key has an id, carried in the
 * sealed string, so keys can be rotated: add the new key first, re-seal everything with it
 * (`pgsctl admin rotate-key`), then drop the old one.
 *
 * Sealed format: `v1.<kid>.<iv b64url>.<ciphertext+tag b64url>` (12-byte random IV, 16-byte tag,
 * NIST SP 800-38D). The additional authenticated data is `v1.<kid>.` + the caller's context string,
 * so a value copied to another row (another context) or given another key id fails to open.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { SecurityError } from './errors.js';

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

/** One AES-256 key and its id. */
export interface SecretKey {
  readonly id: string;
  readonly key: Buffer;
}

/** The parts of a sealed string. */
interface SealedParts {
  kid: string;
  iv: Buffer;
  body: Buffer;
}

/** The key id of a key given without one: `k` + 12 hex chars of its SHA-256, stable across restarts. */
export function deriveKeyId(key: Buffer): string {
  return `k${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

/** A fresh random key, base64 (what PGS_SECRET_KEY or a key file holds). */
export function generateSecretKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

/** Decodes a base64 (or base64url) 32-byte key; `where` names the source in the error. */
export function decodeSecretKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    throw new SecurityError('SECRET_KEY_INVALID', `${where}: the key is not base64 (expected 32 random bytes, e.g. from \`openssl rand -base64 32\`)`);
  }
  const key = Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64');
  if (key.length !== KEY_BYTES) {
    throw new SecurityError('SECRET_KEY_INVALID', `${where}: the key is ${key.length} bytes, AES-256 needs ${KEY_BYTES}`);
  }
  return key;
}

/**
 * Parses a key list: entries separated by commas or newlines, each `kid:base64` or a bare base64
 * key (its id is derived). The first entry is the active key. `#` starts a comment line.
 */
export function parseKeyList(text: string, where: string): SecretKey[] {
  const entries = text
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter((e) => e !== '' && !e.startsWith('#'));
  if (entries.length === 0) throw new SecurityError('SECRET_KEY_INVALID', `${where}: no key given`);
  return entries.map((entry, i) => {
    const colon = entry.indexOf(':');
    if (colon < 0) {
      const key = decodeSecretKey(entry, `${where} entry ${i + 1}`);
      return { id: deriveKeyId(key), key };
    }
    const id = entry.slice(0, colon).trim();
    if (!KEY_ID.test(id)) {
      throw new SecurityError('SECRET_KEY_INVALID', `${where} entry ${i + 1}: key id "${id}" must be 1-32 of A-Z a-z 0-9 _ -`);
    }
    return { id, key: decodeSecretKey(entry.slice(colon + 1), `${where} key "${id}"`) };
  });
}

function parseSealed(sealed: string): SealedParts {
  const parts = sealed.split('.');
  const [version, kid, iv, body] = parts;
  if (parts.length !== 4 || version !== VERSION || !kid || !KEY_ID.test(kid) || !iv || !body || !B64URL.test(iv) || !B64URL.test(body)) {
    throw new SecurityError('SECRET_MALFORMED', `not a sealed secret (expected ${VERSION}.<kid>.<iv>.<ciphertext>)`);
  }
  const ivBytes = Buffer.from(iv, 'base64url');
  const bodyBytes = Buffer.from(body, 'base64url');
  if (ivBytes.length !== IV_BYTES || bodyBytes.length < TAG_BYTES) {
    throw new SecurityError('SECRET_MALFORMED', 'sealed secret has a bad IV or is shorter than its tag');
  }
  return { kid, iv: ivBytes, body: bodyBytes };
}

/** True when `text` looks like a sealed secret (format only, no key needed). */
export function isSealed(text: string): boolean {
  try {
    parseSealed(text);
    return true;
  } catch (err) {
    if (err instanceof SecurityError) return false;
    throw err;
  }
}

/** The key id a sealed string was sealed with. */
export function sealedKeyId(sealed: string): string {
  return parseSealed(sealed).kid;
}

function fullAad(kid: string, aad: string): Buffer {
  return Buffer.from(`${VERSION}.${kid}.${aad}`, 'utf8');
}

/**
 * A set of keys, one of them active. `seal` always uses the active key; `open` uses whichever key
 * the sealed string names, so values sealed before a rotation still open until re-sealed.
 */
export class KeyRing {
  private readonly keys: ReadonlyMap<string, Buffer>;
  /** The id of the key new secrets are sealed with. */
  readonly activeKeyId: string;

  constructor(keys: readonly SecretKey[], activeKeyId?: string) {
    if (keys.length === 0) throw new SecurityError('SECRET_KEY_INVALID', 'a key ring needs at least one key');
    const map = new Map<string, Buffer>();
    for (const { id, key } of keys) {
      if (!KEY_ID.test(id)) throw new SecurityError('SECRET_KEY_INVALID', `key id "${id}" must be 1-32 of A-Z a-z 0-9 _ -`);
      if (key.length !== KEY_BYTES) throw new SecurityError('SECRET_KEY_INVALID', `key "${id}" is ${key.length} bytes, AES-256 needs ${KEY_BYTES}`);
      const existing = map.get(id);
      if (existing && !existing.equals(key)) throw new SecurityError('SECRET_KEY_INVALID', `key id "${id}" is given twice with different keys`);
      map.set(id, Buffer.from(key));
    }
    const active = activeKeyId ?? keys[0]!.id;
    if (!map.has(active)) throw new SecurityError('SECRET_KEY_INVALID', `active key "${active}" is not in the ring`);
    this.keys = map;
    this.activeKeyId = active;
  }

  /** The ids of every key in the ring, the active one first. */
  get keyIds(): string[] {
    return [this.activeKeyId, ...[...this.keys.keys()].filter((k) => k !== this.activeKeyId)];
  }

  /** Encrypts `plaintext` under the active key, bound to `aad` (a context such as `tenant:acme:monitor-password`). */
  seal(plaintext: string | Uint8Array, aad: string): string {
    const kid = this.activeKeyId;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(kid)!, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(fullAad(kid, aad));
    const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    const body = Buffer.concat([cipher.update(data), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${kid}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  /** Decrypts to bytes; throws SecurityError (never returns garbage) on a wrong key, aad or tampering. */
  open(sealed: string, aad: string): Buffer {
    const { kid, iv, body } = parseSealed(sealed);
    const key = this.keys.get(kid);
    if (!key) {
      throw new SecurityError('SECRET_KEY_UNKNOWN', `secret was sealed with key "${kid}", which is not configured (keys: ${this.keyIds.join(', ')})`);
    }
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(fullAad(kid, aad));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
    } catch (err) {
      throw new SecurityError('SECRET_DECRYPT_FAILED', `secret sealed with key "${kid}" failed authentication (wrong key, wrong context or tampered data)`, {
        cause: err,
      });
    }
  }

  /** Decrypts to a UTF-8 string. */
  openText(sealed: string, aad: string): string {
    return this.open(sealed, aad).toString('utf8');
  }

  /** True when `sealed` is not under the active key and should be re-sealed. */
  needsRotation(sealed: string): boolean {
    return parseSealed(sealed).kid !== this.activeKeyId;
  }

  /** Re-seals under the active key (a fresh IV); returns `sealed` unchanged when already current. */
  reseal(sealed: string, aad: string): string {
    if (!this.needsRotation(sealed)) return sealed;
    return this.seal(this.open(sealed, aad), aad);
  }
}
