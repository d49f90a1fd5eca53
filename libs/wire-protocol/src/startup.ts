// The startup phase: what a client sends before any typed message.
// PostgreSQL docs, "Message Flow" §Start-up, §Canceling Requests in Progress, §SSL Session
// Encryption (including direct SSL, PostgreSQL 17+), §GSSAPI Session Encryption; and "Message
// Formats": StartupMessage, SSLRequest, GSSENCRequest, CancelRequest (protocol 3.0 and 3.2).
// Limits, checks, their order and the replies follow the server's ProcessStartupPacket
// (PostgreSQL 15: src/backend/postmaster/postmaster.c); the replies are in startup-error.ts.
import { Buffer, isUtf8 } from 'node:buffer';
import { MAX_SECRET_KEY_LENGTH, MIN_SECRET_KEY_LENGTH } from './secret-key.js';
import { negotiationFor, startupError, StartupError } from './startup-error.js';
import { checkInt, cstringSize, writeCString } from './writer.js';

/** The SSLRequest code, 1234.5679. */
export const SSL_REQUEST_CODE = 80877103;
/** The GSSENCRequest code, 1234.5680. */
export const GSS_ENC_REQUEST_CODE = 80877104;
/** The CancelRequest code, 1234.5678. */
export const CANCEL_REQUEST_CODE = 80877102;
/** The largest startup packet accepted by default, as PostgreSQL's MAX_STARTUP_PACKET_LENGTH. */
export const MAX_STARTUP_PACKET_LENGTH = 10000;
/** The first byte of a TLS handshake record: a client doing direct TLS (sslnegotiation=direct). */
export const TLS_HANDSHAKE_RECORD_TYPE = 0x16;
/** The ALPN protocol name PostgreSQL clients offer for direct TLS. */
export const ALPN_PROTOCOL = 'postgresql';
export { MAX_SECRET_KEY_LENGTH, MIN_SECRET_KEY_LENGTH } from './secret-key.js';

/** A protocol version, e.g. `{ major: 3, minor: 2 }`. */
export type ProtocolVersion = { major: number; minor: number };
/** Protocol 3.0 (PostgreSQL 7.4 to 17). */
export const PROTOCOL_3_0: ProtocolVersion = Object.freeze({ major: 3, minor: 0 });
/** Protocol 3.2 (PostgreSQL 18: longer cancel keys). */
export const PROTOCOL_3_2: ProtocolVersion = Object.freeze({ major: 3, minor: 2 });

/** What a client may send first. */
export type StartupPacket =
  | { kind: 'ssl-request' }
  | { kind: 'gss-enc-request' }
  | { kind: 'cancel-request'; processId: number; secretKey: Buffer }
  | {
      kind: 'startup-message';
      protocol: ProtocolVersion;
      /** Every parameter, in wire order, `_pq_.*` included. */
      parameters: ReadonlyMap<string, string>;
      user: string;
      /** `database`; the server defaults it to `user` when absent. */
      database: string | undefined;
      options: string | undefined;
      /** The `_pq_.*` protocol options, keys with the prefix (as NegotiateProtocolVersion names them). */
      protocolOptions: ReadonlyMap<string, string>;
    }
  | { kind: 'direct-tls' };

/** A startup decode step: a whole packet, or "need more bytes". */
export type StartupDecodeResult = { kind: 'need-more' } | { kind: 'packet'; packet: StartupPacket; consumed: number };

const NEED_MORE: StartupDecodeResult = Object.freeze({ kind: 'need-more' });
const EMPTY: Buffer = Buffer.alloc(0);

/** Parses a whole packet `buf[start, start + length)`, checked as ProcessStartupPacket checks it, in its order. */
function parsePacket(buf: Buffer, start: number, length: number): StartupPacket {
  const end = start + length;
  const code = buf.readUInt32BE(start + 4);
  switch (code) {
    // PostgreSQL takes these whatever their length (extra bytes are read and ignored).
    case SSL_REQUEST_CODE:
      return { kind: 'ssl-request' };
    case GSS_ENC_REQUEST_CODE:
      return { kind: 'gss-enc-request' };
    case CANCEL_REQUEST_CODE: {
      if (length < 12 + MIN_SECRET_KEY_LENGTH || length > 12 + MAX_SECRET_KEY_LENGTH) throw startupError.invalidCancelLength();
      const processId = buf.readUInt32BE(start + 8);
      // Copied: the key outlives the chunk it came in (the router keeps it to route the cancel).
      const secretKey = Buffer.allocUnsafe(length - 12);
      buf.copy(secretKey, 0, start + 12, end);
      return { kind: 'cancel-request', processId, secretKey };
    }
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  // Request codes PostgreSQL does not know (1234.x) fail here too, as a version.
  if (major !== 3) throw startupError.unsupportedProtocol(major, minor);
  return parseStartupMessage(buf, start, end, { major, minor });
}

/** The index of the first NUL in `buf[from, limit)`, or -1. Short strings dominate: a plain loop beats indexOf. */
function nulBefore(buf: Buffer, from: number, limit: number): number {
  for (let i = from; i < limit; i++) if (buf[i] === 0) return i;
  return -1;
}

/** `buf[from, to)` as text; undefined when it is not valid UTF-8. */
function text(buf: Buffer, from: number, to: number): string | undefined {
  for (let i = from; i < to; i++) {
    if (buf[i]! > 0x7f) return isUtf8(buf.subarray(from, to)) ? buf.toString('utf8', from, to) : undefined;
  }
  return buf.toString('latin1', from, to);
}

function parseStartupMessage(buf: Buffer, start: number, end: number, protocol: ProtocolVersion): StartupPacket {
  // As the server scans: name/value pairs until an empty name, which must be the packet's last byte.
  const parameters = new Map<string, string>();
  const protocolOptions = new Map<string, string>();
  let off = start + 8;
  let badText: string | undefined;
  for (;;) {
    if (off >= end || buf[off] === 0) break;
    const nameEnd = nulBefore(buf, off, end - 1); // a name ending at the last byte has no value
    if (nameEnd < 0) throw startupError.badLayout();
    const valueEnd = nulBefore(buf, nameEnd + 1, end);
    if (valueEnd < 0) throw startupError.badLayout();
    const name = text(buf, off, nameEnd);
    const value = text(buf, nameEnd + 1, valueEnd);
    if (name === undefined || value === undefined) {
      badText ??= name === undefined ? 'a parameter name is not valid UTF-8' : `parameter "${name.slice(0, 63)}" is not valid UTF-8`;
    } else {
      // A repeated name: the server keeps the last value (user, database) or applies each in order.
      if (parameters.has(name)) parameters.delete(name);
      parameters.set(name, value);
      if (name.startsWith('_pq_.')) protocolOptions.set(name, value);
    }
    off = valueEnd + 1;
  }
  if (off !== end - 1) throw startupError.badLayout();
  if (badText !== undefined) throw startupError.notUtf8(badText);
  const user = parameters.get('user');
  if (user === undefined || user === '') throw startupError.noUser(negotiationFor(protocol.minor, [...protocolOptions.keys()]) ?? undefined);
  return {
    kind: 'startup-message',
    protocol,
    parameters,
    user,
    database: parameters.get('database'),
    options: parameters.get('options'),
    protocolOptions,
  };
}

/**
 * Incremental decoder for the startup phase. Feed it chunks as they arrive: it answers
 * `need-more` until one packet is complete, checks the declared length as soon as its bytes are in
 * (before anything is copied), the rest once the packet is whole, and throws only StartupError
 * (whose `replyBytes()` is PostgreSQL's answer). After a
 * packet, later bytes stay buffered: `takeRemainder()` hands them over, or the next `push`
 * (an empty chunk will do) decodes them as the next packet. Once it has thrown, it keeps
 * throwing the same error.
 */
export class StartupDecoder {
  readonly #maxLength: number;
  // Chunks are kept by reference; only a packet split across chunks is copied (at most maxLength bytes).
  #chunks: Buffer[] = [];
  #head = 0; // offset of the first unconsumed byte in #chunks[0]
  #total = 0; // unconsumed bytes over all chunks
  #failure: StartupError | undefined;

  constructor(opts?: { maxLength?: number }) {
    const max = opts?.maxLength ?? MAX_STARTUP_PACKET_LENGTH;
    checkInt(max, 8, 0x7fffffff, 'maxLength');
    this.#maxLength = max;
  }

  /** Buffers `chunk` and decodes the next packet if it is complete. */
  push(chunk: Buffer): StartupDecodeResult {
    if (this.#failure) throw this.#failure;
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#total += chunk.length;
    }
    try {
      return this.#decode();
    } catch (err) {
      if (err instanceof StartupError) this.#failure = err;
      throw err;
    }
  }

  /** Bytes buffered and not yet part of a returned packet. */
  get buffered(): number {
    return this.#total;
  }

  /** Hands over the buffered bytes (for `direct-tls`, all of them) and resets the decoder. */
  takeRemainder(): Buffer {
    const chunks = this.#chunks;
    let out: Buffer;
    if (this.#total === 0) out = EMPTY;
    else if (chunks.length === 1) out = chunks[0]!.subarray(this.#head);
    else {
      out = Buffer.allocUnsafe(this.#total);
      let off = chunks[0]!.copy(out, 0, this.#head);
      for (let i = 1; i < chunks.length; i++) off += chunks[i]!.copy(out, off);
    }
    this.#chunks = [];
    this.#head = 0;
    this.#total = 0;
    return out;
  }

  #byteAt(index: number): number {
    let i = index + this.#head;
    for (const c of this.#chunks) {
      if (i < c.length) return c[i]!;
      i -= c.length;
    }
    throw new RangeError('startup decoder read past its buffer'); // unreachable: callers check #total
  }

  #uint32At(index: number): number {
    return ((this.#byteAt(index) << 24) | (this.#byteAt(index + 1) << 16) | (this.#byteAt(index + 2) << 8) | this.#byteAt(index + 3)) >>> 0;
  }

  #decode(): StartupDecodeResult {
    if (this.#total === 0) return NEED_MORE;
    // A startup length is below 2^24, so its first byte is 0; 0x16 can only be a TLS record.
    if (this.#byteAt(0) === TLS_HANDSHAKE_RECORD_TYPE) return { kind: 'packet', packet: { kind: 'direct-tls' }, consumed: 0 };
    if (this.#total < 4) return NEED_MORE;
    // As the server: the length word is checked at once; everything else once the whole packet is in
    // (a client that closes before that only ever sees the connection close).
    const length = this.#uint32At(0);
    if (length < 8 || length > this.#maxLength) throw startupError.invalidLength();
    if (this.#total < length) return NEED_MORE;

    const first = this.#chunks[0]!;
    let packet: StartupPacket;
    if (first.length - this.#head >= length) {
      packet = parsePacket(first, this.#head, length); // in place
    } else {
      const whole = Buffer.allocUnsafe(length);
      let off = 0;
      let i = 0;
      let from = this.#head;
      while (off < length) {
        const c = this.#chunks[i++]!;
        off += c.copy(whole, off, from, Math.min(c.length, from + (length - off)));
        from = 0;
      }
      packet = parsePacket(whole, 0, length);
    }
    this.#consume(length);
    return { kind: 'packet', packet, consumed: length };
  }

  #consume(n: number): void {
    this.#total -= n;
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0]!;
      const avail = c.length - this.#head;
      if (avail > left) {
        this.#head += left;
        return;
      }
      left -= avail;
      this.#chunks.shift();
      this.#head = 0;
    }
  }
}

/** Decodes one packet from the start of `bytes` (`need-more` if it is incomplete). */
export function decodeStartupPacket(bytes: Buffer, opts?: { maxLength?: number }): StartupDecodeResult {
  return new StartupDecoder(opts).push(bytes);
}

/** Encodes a StartupMessage (protocol 3.0 unless given); parameters in iteration order. */
export function encodeStartupMessage(msg: { protocol?: ProtocolVersion; parameters: ReadonlyMap<string, string> | Record<string, string> }): Buffer {
  const protocol = msg.protocol ?? PROTOCOL_3_0;
  checkInt(protocol.major, 0, 0xffff, 'protocol.major');
  checkInt(protocol.minor, 0, 0xffff, 'protocol.minor');
  const entries = msg.parameters instanceof Map ? [...msg.parameters] : Object.entries(msg.parameters);
  let length = 9; // length, version, final NUL
  for (const [name, value] of entries) {
    if (name === '') throw new RangeError('startup parameter names must not be empty');
    length += cstringSize(name, 'a startup parameter name') + cstringSize(value, `startup parameter "${name}"`);
  }
  const buf = Buffer.allocUnsafe(length);
  buf.writeUInt32BE(length, 0);
  buf.writeUInt32BE(((protocol.major << 16) | protocol.minor) >>> 0, 4);
  let off = 8;
  for (const [name, value] of entries) {
    off = writeCString(buf, off, name);
    off = writeCString(buf, off, value);
  }
  buf[off] = 0;
  return buf;
}

function encodeRequestCode(code: number): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeUInt32BE(8, 0);
  buf.writeUInt32BE(code, 4);
  return buf;
}

/** Encodes an SSLRequest. */
export function encodeSslRequest(): Buffer {
  return encodeRequestCode(SSL_REQUEST_CODE);
}

/** Encodes a GSSENCRequest. */
export function encodeGssEncRequest(): Buffer {
  return encodeRequestCode(GSS_ENC_REQUEST_CODE);
}

/**
 * Encodes a CancelRequest: a 4-byte key is protocol 3.0, 4 to 256 bytes protocol 3.2.
 * `processId` is written as 32 bits (a negative Int32 is accepted and read back unsigned).
 */
export function encodeCancelRequest(processId: number, secretKey: Buffer): Buffer {
  checkInt(processId, -0x80000000, 0xffffffff, 'processId');
  checkInt(secretKey.length, MIN_SECRET_KEY_LENGTH, MAX_SECRET_KEY_LENGTH, 'secretKey length');
  const buf = Buffer.allocUnsafe(12 + secretKey.length);
  buf.writeUInt32BE(buf.length, 0);
  buf.writeUInt32BE(CANCEL_REQUEST_CODE, 4);
  buf.writeUInt32BE(processId >>> 0, 8);
  secretKey.copy(buf, 12);
  return buf;
}
