/**
 * SCRAM-SHA-256 verifiers (RFC 5802 section 3, RFC 7677) in PostgreSQL's text format
 * `SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>` (src/common/scram-common.c,
 * scram_build_secret), which `CREATE/ALTER ROLE ... PASSWORD '<verifier>'` stores as is. A tenant
 * user's password is turned into a verifier at once: it is never stored and never travels further.
 * Passwords are normalised with SASLprep (RFC 4013) as PostgreSQL does (src/common/saslprep.c); like
 * PostgreSQL, a password SASLprep refuses is used as raw bytes.
 */
import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/** PostgreSQL's default scram_iterations. */
export const DEFAULT_SCRAM_ITERATIONS = 4096;
/** Salt length PostgreSQL uses (SCRAM_DEFAULT_SALT_LEN). */
export const SCRAM_SALT_BYTES = 16;

const B64 = '[A-Za-z0-9+/]+={0,2}';
const VERIFIER = new RegExp(`^SCRAM-SHA-256\\$([1-9][0-9]{0,9}):(${B64})\\$(${B64}):(${B64})$`);

type Range = readonly [number, number];

// RFC 3454 table B.1: characters mapped to nothing (several are combining marks, hence ranges, not a regex class).
const MAPPED_TO_NOTHING: Range[] = [
  [0xad, 0xad],
  [0x34f, 0x34f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];
// RFC 3454 table C.1.2: non-ASCII spaces, mapped to SPACE.
const NON_ASCII_SPACE: Range[] = [
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];
// Prohibited output (RFC 4013 section 2.3: C.2.1, C.2.2, C.3-C.9), the ranges that matter in practice.
const PROHIBITED: Range[] = [
  [0x0, 0x1f],
  [0x7f, 0x9f],
  [0x340, 0x341],
  [0x6dd, 0x6dd],
  [0x70f, 0x70f],
  [0x180e, 0x180e],
  [0x200e, 0x200f],
  [0x2028, 0x202e],
  [0x206a, 0x206f],
  [0xd800, 0xdfff],
  [0xe000, 0xf8ff],
  [0xfff9, 0xffff],
  [0xf0000, 0x10ffff],
];

function inRanges(cp: number, ranges: readonly Range[]): boolean {
  return ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
}

/** The parts of a verifier. */
export interface ScramVerifierParts {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** SASLprep as PostgreSQL applies it: the normalised text, or the raw password when SASLprep refuses it. */
export function saslPrep(password: string): string {
  // Printable ASCII needs no work (PostgreSQL's fast path).
  if (/^[\x20-\x7E]*$/.test(password)) return password;
  let mapped = '';
  for (const ch of password) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(cp, MAPPED_TO_NOTHING)) continue;
    mapped += inRanges(cp, NON_ASCII_SPACE) ? ' ' : ch;
  }
  const prepared = mapped.normalize('NFKC');
  const prohibited = [...prepared].some((ch) => inRanges(ch.codePointAt(0)!, PROHIBITED));
  return prepared === '' || prohibited ? password : prepared;
}

function keysOf(password: string, salt: Buffer, iterations: number): { storedKey: Buffer; serverKey: Buffer } {
  return keysOfSalted(pbkdf2Sync(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256'));
}

/** StoredKey and ServerKey from the salted password (RFC 5802 section 3). */
function keysOfSalted(salted: Buffer): { storedKey: Buffer; serverKey: Buffer } {
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

/** A verifier for `password` with a fresh random 16-byte salt (or the given one, for tests). */
export function scramVerifier(password: string, options: { iterations?: number; salt?: Buffer } = {}): string {
  const { iterations, salt } = verifierInputs(options);
  return formatVerifier(iterations, salt, keysOf(password, salt, iterations));
}

/**
 * scramVerifier on libuv's thread pool: the 4,096 PBKDF2 rounds (~2 ms of CPU) leave the caller's
 * event loop free, and several hashes run at once on several cores. Servers hash this way.
 */
export async function scramVerifierAsync(password: string, options: { iterations?: number; salt?: Buffer } = {}): Promise<string> {
  const { iterations, salt } = verifierInputs(options);
  const salted = await pbkdf2Async(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256');
  return formatVerifier(iterations, salt, keysOfSalted(salted));
}

function verifierInputs(options: { iterations?: number; salt?: Buffer }): { iterations: number; salt: Buffer } {
  const iterations = options.iterations ?? DEFAULT_SCRAM_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError(`SCRAM iterations must be a positive integer, got ${iterations}`);
  return { iterations, salt: options.salt ?? randomBytes(SCRAM_SALT_BYTES) };
}

function formatVerifier(iterations: number, salt: Buffer, keys: { storedKey: Buffer; serverKey: Buffer }): string {
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${keys.storedKey.toString('base64')}:${keys.serverKey.toString('base64')}`;
}

/** The parts of a verifier, or undefined when `text` is not one (keys must be 32 bytes). */
export function parseScramVerifier(text: string): ScramVerifierParts | undefined {
  const m = VERIFIER.exec(text);
  if (!m) return undefined;
  const storedKey = Buffer.from(m[3]!, 'base64');
  const serverKey = Buffer.from(m[4]!, 'base64');
  const salt = Buffer.from(m[2]!, 'base64');
  if (storedKey.length !== 32 || serverKey.length !== 32 || salt.length === 0) return undefined;
  return { iterations: Number(m[1]), salt, storedKey, serverKey };
}

/** True when `text` is a well-formed SCRAM-SHA-256 verifier (so it is safe to pass as a role's PASSWORD). */
export function isScramVerifier(text: string): boolean {
  return parseScramVerifier(text) !== undefined;
}

/** True when `password` matches `verifier` (constant-time on the keys). */
export function verifyScramPassword(password: string, verifier: string): boolean {
  const parts = parseScramVerifier(verifier);
  if (!parts) return false;
  const { storedKey, serverKey } = keysOf(password, parts.salt, parts.iterations);
  return timingSafeEqual(storedKey, parts.storedKey) && timingSafeEqual(serverKey, parts.serverKey);
}
