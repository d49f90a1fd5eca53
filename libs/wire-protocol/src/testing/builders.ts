// Builders for tests here and in other projects: realistic backend streams and chunking helpers.
import { Buffer } from 'node:buffer';
import { AuthenticationCode, encodeAuthentication, encodeBackendKeyData, encodeFrame, encodeParameterStatus, encodeReadyForQuery } from '../index.js';

/** Parameters a PostgreSQL 15 server reports after authentication. */
export const TYPICAL_SERVER_PARAMETERS: ReadonlyArray<readonly [string, string]> = [
  ['application_name', 'psql'],
  ['client_encoding', 'UTF8'],
  ['DateStyle', 'ISO, MDY'],
  ['default_transaction_read_only', 'off'],
  ['in_hot_standby', 'off'],
  ['integer_datetimes', 'on'],
  ['IntervalStyle', 'postgres'],
  ['is_superuser', 'off'],
  ['server_encoding', 'UTF8'],
  ['server_version', '15.18'],
  ['session_authorization', 'alice'],
  ['standard_conforming_strings', 'on'],
  ['TimeZone', 'UTC'],
];

/**
 * A server's reply to a StartupMessage after authentication: AuthenticationOk, ParameterStatus
 * for each parameter, BackendKeyData, ReadyForQuery('I').
 */
export function backendStartupReply(opts: { processId?: number; secretKey?: Buffer; parameters?: ReadonlyArray<readonly [string, string]> } = {}): Buffer {
  const parts = [encodeAuthentication(AuthenticationCode.Ok)];
  for (const [name, value] of opts.parameters ?? TYPICAL_SERVER_PARAMETERS) parts.push(encodeParameterStatus(name, value));
  parts.push(encodeBackendKeyData(opts.processId ?? 4242, opts.secretKey ?? Buffer.from('0badc0de', 'hex')));
  parts.push(encodeReadyForQuery('I'));
  return Buffer.concat(parts);
}

/** A DataRow ('D'): Int16 column count, then per column Int32 length (-1 for NULL) and bytes. */
export function dataRow(columns: ReadonlyArray<Buffer | null>): Buffer {
  let size = 2;
  for (const c of columns) size += 4 + (c ? c.length : 0);
  const body = Buffer.allocUnsafe(size);
  body.writeUInt16BE(columns.length, 0);
  let off = 2;
  for (const c of columns) {
    if (c === null) {
      body.writeInt32BE(-1, off);
      off += 4;
    } else {
      body.writeInt32BE(c.length, off);
      c.copy(body, off + 4);
      off += 4 + c.length;
    }
  }
  return encodeFrame(0x44, body);
}

/** A CommandComplete ('C') with its tag, e.g. `SELECT 1`. */
export function commandComplete(tag: string): Buffer {
  return encodeFrame(0x43, Buffer.from(`${tag}\0`, 'utf8'));
}

/** `bytes` cut at the given ascending offsets. */
export function splitAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const o of offsets) {
    out.push(bytes.subarray(prev, o));
    prev = o;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** Every way to cut `bytes` in two (offsets 0..length), then byte by byte. */
export function* everySplit(bytes: Buffer): Generator<Buffer[]> {
  for (let i = 0; i <= bytes.length; i++) yield splitAt(bytes, [i]);
  yield splitAt(
    bytes,
    Array.from({ length: Math.max(0, bytes.length - 1) }, (_, i) => i + 1),
  );
}

/** Copies each chunk into its own buffer, so no test passes by sharing memory with the original. */
export function detached(chunks: readonly Buffer[]): Buffer[] {
  return chunks.map((c) => Buffer.from(c));
}
