// Byte-writing helpers shared by the encoders. Encoders size their output first and allocate once.
// PostgreSQL docs, "Message Data Types": Int32 is big-endian, String is NUL-terminated UTF-8.
import { Buffer } from 'node:buffer';

/** Bytes `s` takes as a PostgreSQL String (UTF-8 plus the NUL); rejects an embedded NUL. */
export function cstringSize(s: string, what: string): number {
  if (s.includes('\0')) throw new RangeError(`${what} must not contain a NUL character`);
  return Buffer.byteLength(s, 'utf8') + 1;
}

/** Writes `s` and its NUL terminator at `offset`; returns the offset after it. */
export function writeCString(buf: Buffer, offset: number, s: string): number {
  const n = buf.write(s, offset, 'utf8');
  buf[offset + n] = 0;
  return offset + n + 1;
}

/** Checks that `n` is an integer in [min, max] (an encoder argument, so a caller bug: RangeError). */
export function checkInt(n: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${n}`);
  }
}

/** Allocates a typed message: type byte and Int32 length written, body left for the caller at offset 5. */
export function allocMessage(type: number, bodyLength: number): Buffer {
  const buf = Buffer.allocUnsafe(5 + bodyLength);
  buf[0] = type;
  buf.writeUInt32BE(4 + bodyLength, 1);
  return buf;
}
