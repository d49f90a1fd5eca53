/**
 * Quoting for the few SQL statements that cannot take parameters (CREATE ROLE, CREATE DATABASE,
 * ALTER ROLE ... PASSWORD). Every identifier is double-quoted, so a role named `x"; DROP ...` is
 * just a strange name (PostgreSQL docs, "Lexical Structure: Identifiers and Key Words").
 */
import { MAX_NAME_LENGTH } from '@pgs/tenancy';
import { AgentError } from './errors.js';

/** A double-quoted identifier; refuses what PostgreSQL cannot store (empty, NUL, longer than 63 bytes). */
export function quoteIdent(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0') || Buffer.byteLength(name, 'utf8') > MAX_NAME_LENGTH) {
    throw new AgentError(
      'INVALID_IDENTIFIER',
      `not a usable PostgreSQL identifier: 1..${MAX_NAME_LENGTH} bytes, no NUL (got ${JSON.stringify(String(name).slice(0, 80))})`,
      { kind: 'user' },
    );
  }
  return `"${name.replaceAll('"', '""')}"`;
}

/** A standard string literal ('' doubled); the server runs with standard_conforming_strings on. */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new AgentError('INVALID_IDENTIFIER', 'a string literal cannot contain NUL', { kind: 'user' });
  return `'${value.replaceAll("'", "''")}'`;
}

// RFC 5803 / PostgreSQL's stored form: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
const SCRAM_VERIFIER = /^SCRAM-SHA-256\$[1-9][0-9]{0,9}:[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2}$/;

/** True when `text` is a SCRAM-SHA-256 verifier (never a plain password). */
export function isScramVerifier(text: string): boolean {
  return SCRAM_VERIFIER.test(text);
}

/** The verifier as a literal; anything that is not a verifier is refused, so no plain password is ever set. */
export function verifierLiteral(verifier: string): string {
  if (!isScramVerifier(verifier)) {
    throw new AgentError('INVALID_VERIFIER', 'a password must arrive as a SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)', {
      kind: 'user',
    });
  }
  return quoteLiteral(verifier);
}
