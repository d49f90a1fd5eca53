// Frontend messages a proxy that authenticates and pools must read or write itself. PostgreSQL docs,
// "Message Formats": SASLInitialResponse and SASLResponse ('p'), Query ('Q'), Terminate ('X'); and
// "Message Flow" §Start-up (SASL authentication) and §Termination.
import { Buffer } from 'node:buffer';
import type { Frame } from './framer.js';
import { ProtocolError } from './pg-error.js';
import { ByteReader } from './reader.js';
import { allocMessage, cstringSize, writeCString } from './writer.js';

/** Frontend message type bytes. */
export const FrontendMessageType = {
  /** PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse: which one follows from the auth request. */
  Password: 0x70, // p
  Query: 0x51, // Q
  Terminate: 0x58, // X
} as const;

/** A client's SASLInitialResponse: the mechanism it chose and its first message (null: none sent). */
export interface SaslInitialResponse {
  mechanism: string;
  data: Buffer | null;
}

function expectPassword(frame: Frame, what: string): ByteReader {
  const r = new ByteReader(frame.body, 0, frame.body.length, what);
  if (frame.type !== FrontendMessageType.Password) throw r.fail(`expected a ${what} ('p'), got message type ${frame.type}`);
  return r;
}

/** Decodes SASLInitialResponse: String mechanism, Int32 length (-1: no data), Byte[n] data. */
export function decodeSaslInitialResponse(frame: Frame): SaslInitialResponse {
  const r = expectPassword(frame, 'SASLInitialResponse message');
  const mechanism = r.cstring();
  const length = r.int32();
  if (length === -1) {
    r.expectEnd();
    return { mechanism, data: null };
  }
  if (length < 0) throw r.fail(`negative data length ${length}`);
  const data = r.bytes(length);
  r.expectEnd();
  return { mechanism, data };
}

/** Decodes SASLResponse: the rest of the message is the mechanism's data. */
export function decodeSaslResponse(frame: Frame): Buffer {
  return expectPassword(frame, 'SASLResponse message').rest();
}

/** Encodes SASLInitialResponse with the mechanism and its first message. */
export function encodeSaslInitialResponse(mechanism: string, data: Buffer): Buffer {
  const buf = allocMessage(FrontendMessageType.Password, cstringSize(mechanism, 'a SASL mechanism name') + 4 + data.length);
  const off = writeCString(buf, 5, mechanism);
  buf.writeInt32BE(data.length, off);
  data.copy(buf, off + 4);
  return buf;
}

/** Encodes SASLResponse. */
export function encodeSaslResponse(data: Buffer): Buffer {
  const buf = allocMessage(FrontendMessageType.Password, data.length);
  data.copy(buf, 5);
  return buf;
}

/** Encodes a simple-protocol Query. */
export function encodeQuery(sql: string): Buffer {
  const buf = allocMessage(FrontendMessageType.Query, cstringSize(sql, 'a query'));
  writeCString(buf, 5, sql);
  return buf;
}

/** The Terminate message. */
export const TERMINATE: Buffer = Buffer.from([FrontendMessageType.Terminate, 0, 0, 0, 4]);

/**
 * Follows message boundaries of a frontend stream without copying or decoding bodies, and cuts
 * the Terminate message out: a pooling proxy must not pass a client's goodbye on to a backend it
 * keeps. Only headers are looked at, so the cost per chunk is one step per message start.
 */
export class TerminateFilter {
  #header = Buffer.alloc(5);
  #headerGot = 0;
  #bodyLeft = 0;
  #terminated = false;
  #torn = false;

  /** True when a Terminate was split over chunks, so part of it went through: the stream is not reusable. */
  get torn(): boolean {
    return this.#torn;
  }

  /** True once a Terminate message went by. */
  get terminated(): boolean {
    return this.#terminated;
  }

  /** True when the bytes so far end on a message boundary. */
  get atBoundary(): boolean {
    return this.#headerGot === 0 && this.#bodyLeft === 0;
  }

  /** `chunk` without any Terminate message in it (the same buffer when there is none). */
  filter(chunk: Buffer): Buffer {
    let cuts: Array<[number, number]> | undefined;
    let i = 0;
    while (i < chunk.length) {
      if (this.#bodyLeft > 0) {
        const n = Math.min(this.#bodyLeft, chunk.length - i);
        this.#bodyLeft -= n;
        i += n;
        continue;
      }
      const start = i;
      const n = Math.min(5 - this.#headerGot, chunk.length - i);
      chunk.copy(this.#header, this.#headerGot, i, i + n);
      this.#headerGot += n;
      i += n;
      if (this.#headerGot < 5) break;
      this.#headerGot = 0;
      const length = this.#header.readUInt32BE(1);
      this.#bodyLeft = Math.max(0, length - 4);
      // A Terminate wholly inside this chunk is cut; one split over chunks (rare) has partly gone
      // through already, which `torn` reports so the stream's receiver is not reused.
      if (this.#header[0] === FrontendMessageType.Terminate && length === 4) {
        this.#terminated = true;
        if (start + 5 === i) (cuts ??= []).push([start, i]);
        else this.#torn = true;
      }
    }
    if (!cuts) return chunk;
    const keep: Buffer[] = [];
    let from = 0;
    for (const [a, b] of cuts) {
      if (a > from) keep.push(chunk.subarray(from, a));
      from = b;
    }
    if (from < chunk.length) keep.push(chunk.subarray(from));
    return keep.length === 1 ? keep[0]! : Buffer.concat(keep);
  }
}

/** A message that ended inside a pushed chunk. */
export interface MessageEnd {
  type: number;
  /** Offset in the chunk just past the message. */
  end: number;
  /** ReadyForQuery only: its transaction status byte ('I', 'T' or 'E' as a char code). */
  status?: number;
}

/**
 * Follows message boundaries of a stream in either direction without copying or decoding bodies:
 * for each pushed chunk, the type and end offset of every message that ends in it (and the
 * status byte of a ReadyForQuery). A transaction-pooling proxy learns from it where a client's
 * sync points are and when its server is idle again.
 */
export class MessageBoundaries {
  readonly #header = Buffer.alloc(5);
  #headerGot = 0;
  #bodyLeft = 0;
  #status = -1;

  /** True when the bytes so far end on a message boundary. */
  get atBoundary(): boolean {
    return this.#headerGot === 0;
  }

  /** Messages that end in `chunk`. Throws ProtocolError on a declared length below 4. */
  push(chunk: Buffer): MessageEnd[] {
    const out: MessageEnd[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.#headerGot < 5) {
        const n = Math.min(5 - this.#headerGot, chunk.length - i);
        chunk.copy(this.#header, this.#headerGot, i, i + n);
        this.#headerGot += n;
        i += n;
        if (this.#headerGot < 5) break;
        const length = this.#header.readUInt32BE(1);
        if (length < 4) throw new ProtocolError(`invalid message length ${length}`);
        this.#bodyLeft = length - 4;
        this.#status = -1;
      }
      const n = Math.min(this.#bodyLeft, chunk.length - i);
      if (n > 0 && this.#status < 0 && this.#header[0] === 0x5a) this.#status = chunk[i]!;
      this.#bodyLeft -= n;
      i += n;
      if (this.#bodyLeft === 0) {
        const type = this.#header[0]!;
        out.push(this.#status >= 0 ? { type, end: i, status: this.#status } : { type, end: i });
        this.#headerGot = 0;
      }
    }
    return out;
  }
}
