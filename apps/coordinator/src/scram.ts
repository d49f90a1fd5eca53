/**
 * SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677) in PostgreSQL's format
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, which CREATE/ALTER ROLE ... PASSWORD
 * accepts as is. The coordinator turns passwords into verifiers at once, so a password is never
 * stored and never travels to an agent. The password is normalised with SASLprep (RFC 4013) as
 * PostgreSQL does (src/common/saslprep.c); like PostgreSQL, a password SASLprep refuses is used raw.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/** PostgreSQL's default scram_iterations. */
export const DEFAULT_SCRAM_ITERATIONS = 4096;

// RFC 3454 table B.1: characters mapped to nothing.
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;
// RFC 3454 table C.1.2: non-ASCII spaces, mapped to SPACE.
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
// Prohibited output (C.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9), the ranges that matter in practice.
const PROHIBITED = /[\u0000-\u001F\u007F-\u009F\u0340\u0341\u200E\u200F\u202A-\u202E\u206A-\u206F\uD800-\uDFFF\uE000-\uF8FF\uFFF9-\uFFFF]/u;

/** SASLprep as PostgreSQL applies it: normalised text, or the raw password when SASLprep refuses it. */
export function saslPrep(password: string): string {
  // Pure ASCII passwords need no work (PostgreSQL's fast path), apart from the prohibited check.
  if (/^[\x20-\x7E]*$/.test(password)) return password;
  const prepared = password.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ').normalize('NFKC');
  return prepared === '' || PROHIBITED.test(prepared) ? password : prepared;
}

/** Makes a verifier with a fresh random salt. */
export function scramVerifier(password: string, iterations = DEFAULT_SCRAM_ITERATIONS, salt: Buffer = randomBytes(16)): string {
  const salted = pbkdf2Sync(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** A random password for an owner who did not choose one: 24 URL-safe characters (144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
