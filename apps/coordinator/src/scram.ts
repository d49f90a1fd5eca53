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

type Range = readonly [number, number];

// RFC 3454 table B.1: code points mapped to nothing.
const MAPPED_TO_NOTHING: readonly Range[] = [[0xad, 0xad], [0x34f, 0x34f], [0x1806, 0x1806], [0x180b, 0x180d], [0x200b, 0x200d], [0x2060, 0x2060], [0xfe00, 0xfe0f], [0xfeff, 0xfeff]];
// RFC 3454 table C.1.2: non-ASCII spaces, mapped to SPACE.
const NON_ASCII_SPACE: readonly Range[] = [[0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200b], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000]];
// Prohibited output (C.2 to C.9), the ranges that matter in practice.
const PROHIBITED: readonly Range[] = [[0x0, 0x1f], [0x7f, 0x9f], [0x340, 0x341], [0x200e, 0x200f], [0x202a, 0x202e], [0x206a, 0x206f], [0xd800, 0xdfff], [0xe000, 0xf8ff], [0xfff9, 0xffff], [0xf0000, 0x10ffff]];

const inRanges = (cp: number, ranges: readonly Range[]): boolean => ranges.some(([lo, hi]) => cp >= lo && cp <= hi);

/** SASLprep as PostgreSQL applies it: normalised text, or the raw password when SASLprep refuses it. */
export function saslPrep(password: string): string {
  // Pure ASCII passwords need no work (PostgreSQL's fast path), apart from the prohibited check.
  if ([...password].every((ch) => ch >= ' ' && ch <= '~')) return password;
  let mapped = '';
  for (const ch of password) {
    const cp = ch.codePointAt(0) ?? 0;
    if (inRanges(cp, MAPPED_TO_NOTHING)) continue;
    mapped += inRanges(cp, NON_ASCII_SPACE) ? ' ' : ch;
  }
  const prepared = mapped.normalize('NFKC');
  const prohibited = [...prepared].some((ch) => inRanges(ch.codePointAt(0) ?? 0, PROHIBITED));
  return prepared === '' || prohibited ? password : prepared;
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
