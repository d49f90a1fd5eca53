// A bounds-checked cursor over one message body. Every read checks the remaining bytes and throws
// a ProtocolError (08P01), never a RangeError. PostgreSQL docs, "Message Data Types".
import { Buffer, isUtf8 } from 'node:buffer';
import { ProtocolError } from './pg-error.js';

/** How a String's bytes are turned into text. */
export type TextMode = 'strict' | 'replace';

/**
 * Reads PostgreSQL data types from `buf[start, end)`. `strict` text mode rejects invalid UTF-8
 * with a ProtocolError; `replace` substitutes U+FFFD (for backend text, which may be in the
 * server's encoding and is only inspected, never rewritten).
 */
export class ByteReader {
  #pos: number;

  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
    readonly what: string,
    readonly textMode: TextMode = 'strict',
  ) {
    this.#pos = start;
  }

  /** The current offset into `buf`. */
  get offset(): number {
    return this.#pos;
  }

  /** Bytes left before `end`. */
  get remaining(): number {
    return this.end - this.#pos;
  }

  /** A ProtocolError naming the message being read. */
  fail(detail: string): ProtocolError {
    return new ProtocolError({ message: `invalid ${this.what}`, detail });
  }

  #need(n: number): void {
    if (this.end - this.#pos < n) throw this.fail(`message ends early: needed ${n} more bytes, ${this.end - this.#pos} left`);
  }

  /** Byte1 / Int8 as unsigned. */
  uint8(): number {
    this.#need(1);
    return this.buf[this.#pos++]!;
  }

  /** Int32 read as unsigned. */
  uint32(): number {
    this.#need(4);
    const v = this.buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  /** Int32 read as signed. */
  int32(): number {
    this.#need(4);
    const v = this.buf.readInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  /** Byten as a view (no copy) into the underlying buffer. */
  bytes(n: number): Buffer {
    this.#need(n);
    const v = this.buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }

  /** The rest of the message as a view. */
  rest(): Buffer {
    return this.bytes(this.end - this.#pos);
  }

  /** A NUL-terminated String. */
  cstring(): string {
    const { buf, end } = this;
    const start = this.#pos;
    let i = start;
    let ascii = true;
    // Short strings dominate (parameter names, user names): a plain loop beats indexOf's call cost.
    while (i < end) {
      const b = buf[i]!;
      if (b === 0) break;
      if (b > 0x7f) ascii = false;
      i++;
    }
    if (i >= end) throw this.fail('missing string terminator');
    this.#pos = i + 1;
    if (ascii) return buf.toString('latin1', start, i);
    if (this.textMode === 'strict' && !isUtf8(buf.subarray(start, i))) throw this.fail('string is not valid UTF-8');
    return buf.toString('utf8', start, i);
  }

  /** Throws unless every byte has been read. */
  expectEnd(): void {
    if (this.#pos !== this.end) throw this.fail(`${this.end - this.#pos} unexpected bytes at the end of the message`);
  }
}
