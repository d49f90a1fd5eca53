/**
 * PostgreSQL log sequence numbers as text (`pg_lsn`, e.g. `0/3000148`): two hexadecimal halves of
 * one 64-bit WAL position (src/backend/utils/adt/pg_lsn.c). Comparing the strings, or the halves
 * as floats, orders them wrongly (`0/A0` > `0/9FF` as text, 2^64 does not fit a double), so they
 * become bigints here and are compared as such.
 */
import { ValidationError } from './errors.js';

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** The 64-bit position of an LSN text; throws ValidationError on anything pg_lsn would refuse. */
export function parseLsn(text: string, field = 'lsn'): bigint {
  const m = LSN.exec(text);
  if (!m) throw new ValidationError(field, text, 'a PostgreSQL LSN: two hexadecimal numbers of at most 8 digits, "X/Y" (e.g. 0/3000148)');
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** The LSN, or undefined when the text is empty or not an LSN (an agent that could not read it). */
export function tryParseLsn(text: string | undefined): bigint | undefined {
  return text !== undefined && LSN.test(text) ? parseLsn(text) : undefined;
}

/** The canonical text of a 64-bit WAL position, as PostgreSQL prints it (upper-case, no padding). */
export function formatLsn(position: bigint): string {
  if (position < 0n || position > 0xffff_ffff_ffff_ffffn) throw new ValidationError('lsn', position.toString(), 'a position from 0 to 2^64-1');
  return `${(position >> 32n).toString(16).toUpperCase()}/${(position & 0xffff_ffffn).toString(16).toUpperCase()}`;
}

/** -1, 0 or 1 as LSN `a` is before, at or after `b`. */
export function compareLsn(a: string, b: string): -1 | 0 | 1 {
  const x = parseLsn(a);
  const y = parseLsn(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Bytes of WAL from `from` to `to` (0 when `to` is not ahead), as a number (lags fit easily). */
export function lsnDistance(from: string, to: string): number {
  const d = parseLsn(to) - parseLsn(from);
  return d > 0n ? Number(d) : 0;
}
