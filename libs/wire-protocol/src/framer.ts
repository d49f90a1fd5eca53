// Framing of typed messages after the startup phase, in either direction: Byte1 type, Int32
// length (including itself), body. PostgreSQL docs, "Message Flow" (Overview: "all messages have a
// message type byte followed by a length") and "Message Formats".
import { Buffer } from 'node:buffer';
import { ProtocolError } from './pg-error.js';
import { checkInt } from './writer.js';

/** One typed message. */
export interface Frame {
  /** The type byte as a char code, e.g. 0x52 for 'R'. */
  type: number;
  /** The declared length, including its own 4 bytes (so the body has `length - 4`). */
  length: number;
  /** The body: a view into the pushed chunk when the message lay within it, else a copy. */
  body: Buffer;
}

/** The default largest declared length: 1 GiB, above PostgreSQL's own 1 GiB - 1 allocation limit. */
export const DEFAULT_MAX_MESSAGE_SIZE = 0x40000000;

const EMPTY: Buffer = Buffer.alloc(0);
// First allocation for a message that straddles chunks; it then doubles, never past the message.
const INITIAL_PARTIAL_CAPACITY = 16 * 1024;

/**
 * Splits a byte stream into frames. Messages that lie within one pushed chunk are returned as
 * views without copying; only a message that straddles chunks is assembled, in a buffer that
 * grows with the bytes actually received (never past the declared length), so a large declared
 * length costs nothing until its bytes arrive. A declared length below 4 or above the maximum
 * throws a ProtocolError as soon as the 5 header bytes are in; after that the framer keeps
 * throwing it.
 */
export class MessageFramer {
  readonly #max: number;
  readonly #head = Buffer.alloc(5);
  #headLen = 0; // 0: no partial message; 1..5 header bytes of the partial message
  #bodyLen = -1; // body length of the partial message once its header is complete
  #body: Buffer = EMPTY;
  #bodyGot = 0;
  #tail: Buffer = EMPTY; // bytes after a frame that `stopAfter` accepted, not yet framed
  #lastCompleted: Frame | undefined; // set by #continuePartial when it completes a message
  #failure: ProtocolError | undefined;

  constructor(opts?: { maxMessageSize?: number }) {
    const max = opts?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    checkInt(max, 4, 0xffffffff, 'maxMessageSize');
    this.#max = max;
  }

  /**
   * Frames the messages completed by `chunk`. With `stopAfter`, framing stops after the first
   * frame it accepts (e.g. ReadyForQuery, when the router steps aside): the bytes after it stay
   * unframed and `takeRemainder()` returns them.
   */
  push(chunk: Buffer, stopAfter?: (frame: Frame) => boolean): Frame[] {
    if (this.#failure) throw this.#failure;
    try {
      return this.#push(chunk, stopAfter);
    } catch (err) {
      if (err instanceof ProtocolError) this.#failure = err;
      throw err;
    }
  }

  /** Bytes held: a partial message and any bytes left after a `stopAfter` frame. */
  get buffered(): number {
    return this.#headLen + this.#bodyGot + this.#tail.length;
  }

  /** Hands over the buffered raw bytes (as they came off the wire) and resets the framer. */
  takeRemainder(): Buffer {
    const n = this.buffered;
    let out = EMPTY;
    if (n > 0) {
      if (this.#headLen === 0) out = this.#tail;
      else {
        out = Buffer.allocUnsafe(n);
        let off = this.#head.copy(out, 0, 0, this.#headLen);
        off += this.#body.copy(out, off, 0, this.#bodyGot);
        this.#tail.copy(out, off);
      }
    }
    this.#resetPartial();
    this.#tail = EMPTY;
    return out;
  }

  #resetPartial(): void {
    this.#headLen = 0;
    this.#bodyLen = -1;
    this.#body = EMPTY;
    this.#bodyGot = 0;
  }

  #checkLength(type: number, length: number): void {
    if (length < 4 || length > this.#max) {
      throw new ProtocolError({
        message: 'invalid message length',
        detail: `message type 0x${type.toString(16).padStart(2, '0')} declares length ${length}, allowed 4 to ${this.#max}`,
      });
    }
  }

  #push(chunk: Buffer, stopAfter: ((frame: Frame) => boolean) | undefined): Frame[] {
    let buf = chunk;
    if (this.#tail.length > 0) {
      buf = Buffer.allocUnsafe(this.#tail.length + chunk.length);
      this.#tail.copy(buf, 0);
      chunk.copy(buf, this.#tail.length);
      this.#tail = EMPTY;
    }
    const frames: Frame[] = [];
    const n = buf.length;
    let off = 0;

    if (this.#headLen > 0) {
      off = this.#continuePartial(buf);
      if (this.#headLen > 0) return frames; // chunk used up, message still partial
      const frame = this.#lastCompleted!;
      this.#lastCompleted = undefined;
      frames.push(frame);
      if (stopAfter?.(frame)) {
        this.#keepTail(buf, off);
        return frames;
      }
    }

    const max = this.#max;
    while (n - off >= 5) {
      const type = buf[off]!;
      const length = ((buf[off + 1]! << 24) | (buf[off + 2]! << 16) | (buf[off + 3]! << 8) | buf[off + 4]!) >>> 0;
      if (length < 4 || length > max) this.#checkLength(type, length);
      const end = off + 1 + length;
      if (end > n) break;
      const frame: Frame = { type, length, body: buf.subarray(off + 5, end) };
      frames.push(frame);
      off = end;
      if (stopAfter?.(frame)) {
        this.#keepTail(buf, off);
        return frames;
      }
    }
    if (off < n) this.#continuePartial(buf.subarray(off));
    return frames;
  }

  #keepTail(buf: Buffer, off: number): void {
    // Copied: the caller may reuse its chunk before it takes the remainder.
    if (off < buf.length) {
      this.#tail = Buffer.allocUnsafe(buf.length - off);
      buf.copy(this.#tail, 0, off);
    }
  }

  /** Feeds bytes to the partial message; returns how many were used. Sets #lastCompleted when done. */
  #continuePartial(buf: Buffer): number {
    let off = 0;
    const n = buf.length;
    while (this.#headLen < 5 && off < n) this.#head[this.#headLen++] = buf[off++]!;
    if (this.#headLen < 5) return off;
    if (this.#bodyLen < 0) {
      const length = this.#head.readUInt32BE(1);
      this.#checkLength(this.#head[0]!, length);
      this.#bodyLen = length - 4;
    }
    const bodyLen = this.#bodyLen;
    const take = Math.min(bodyLen - this.#bodyGot, n - off);
    if (take > 0) {
      const needed = this.#bodyGot + take;
      if (needed > this.#body.length) {
        const grown = Buffer.allocUnsafe(Math.min(bodyLen, Math.max(needed, this.#body.length * 2, INITIAL_PARTIAL_CAPACITY)));
        this.#body.copy(grown, 0, 0, this.#bodyGot);
        this.#body = grown;
      }
      buf.copy(this.#body, this.#bodyGot, off, off + take);
      this.#bodyGot = needed;
      off += take;
    }
    if (this.#bodyGot === bodyLen) {
      const body = this.#body.length === bodyLen ? this.#body : this.#body.subarray(0, bodyLen);
      this.#lastCompleted = { type: this.#head[0]!, length: bodyLen + 4, body };
      this.#resetPartial();
    }
    return off;
  }
}

/** Encodes a typed message from its type byte and body. */
export function encodeFrame(type: number, body: Buffer): Buffer {
  checkInt(type, 0, 0xff, 'type');
  checkInt(body.length, 0, 0xffffffff - 4, 'body length');
  const buf = Buffer.allocUnsafe(5 + body.length);
  buf[0] = type;
  buf.writeUInt32BE(4 + body.length, 1);
  body.copy(buf, 5);
  return buf;
}
