// The extended-query messages a pooler rewrites (PostgreSQL docs, "Message Formats": Parse, Bind,
// Describe, Close, Query), each taken and given as a whole message (type byte and length
// included), and a splitter that cuts a byte stream into pass-through slices and whole messages.
import { Buffer } from 'node:buffer';
import { ProtocolError } from './pg-error.js';
import { allocMessage, cstringSize, writeCString } from './writer.js';

export const PARSE = 0x50;
export const BIND = 0x42;
export const DESCRIBE = 0x44;
export const CLOSE = 0x43;
export const QUERY = 0x51;

/** A Parse message: statement name, query text, and the raw parameter-type list (Int16 n, n × Int32). */
export interface ParseMessage {
  name: string;
  query: string;
  paramTypes: Buffer;
}

/** Describe or Close: which kind of object ('S' statement, 'P' portal) and its name. */
export interface TargetMessage {
  kind: 'S' | 'P';
  name: string;
}

function cstringAt(msg: Buffer, offset: number, what: string): { value: string; next: number } {
  const end = msg.indexOf(0, offset);
  if (end < 0) throw new ProtocolError(`${what}: missing NUL terminator`);
  return { value: msg.toString('utf8', offset, end), next: end + 1 };
}

export function decodeParse(msg: Buffer): ParseMessage {
  const name = cstringAt(msg, 5, 'Parse statement name');
  const query = cstringAt(msg, name.next, 'Parse query');
  return { name: name.value, query: query.value, paramTypes: Buffer.from(msg.subarray(query.next)) };
}

/** The SQL text of a Parse, nothing else read or copied (the statement's name and parameter types are skipped). */
export function decodeParseQuery(msg: Buffer): string {
  const name = msg.indexOf(0, 5);
  if (name < 0) throw new ProtocolError('Parse statement name: missing NUL terminator');
  return cstringAt(msg, name + 1, 'Parse query').value;
}

export function encodeParse(name: string, query: string, paramTypes: Buffer): Buffer {
  const buf = allocMessage(PARSE, cstringSize(name, 'statement name') + cstringSize(query, 'query') + paramTypes.length);
  let o = writeCString(buf, 5, name);
  o = writeCString(buf, o, query);
  paramTypes.copy(buf, o);
  return buf;
}

/** The statement a Bind names. */
export function decodeBindStatement(msg: Buffer): string {
  const portal = cstringAt(msg, 5, 'Bind portal name');
  return cstringAt(msg, portal.next, 'Bind statement name').value;
}

/** The same Bind naming `statement` instead (portal, parameters and formats untouched). */
export function rewriteBindStatement(msg: Buffer, statement: string): Buffer {
  const portal = cstringAt(msg, 5, 'Bind portal name');
  const old = cstringAt(msg, portal.next, 'Bind statement name');
  const head = msg.subarray(5, portal.next);
  const tail = msg.subarray(old.next);
  const buf = allocMessage(BIND, head.length + cstringSize(statement, 'statement name') + tail.length);
  head.copy(buf, 5);
  const o = writeCString(buf, 5 + head.length, statement);
  tail.copy(buf, o);
  return buf;
}

export function decodeTarget(msg: Buffer): TargetMessage {
  const kind = msg[5];
  if (kind !== 0x53 && kind !== 0x50) throw new ProtocolError(`invalid Describe/Close target kind ${kind}`);
  return { kind: kind === 0x53 ? 'S' : 'P', name: cstringAt(msg, 6, 'Describe/Close name').value };
}

/** A Describe (type 'D') or Close (type 'C') message. */
export function encodeTarget(type: typeof DESCRIBE | typeof CLOSE, target: TargetMessage): Buffer {
  const buf = allocMessage(type, 1 + cstringSize(target.name, 'name'));
  buf[5] = target.kind.charCodeAt(0);
  writeCString(buf, 6, target.name);
  return buf;
}

/** The SQL text of a Query message. */
export function decodeQueryText(msg: Buffer): string {
  return cstringAt(msg, 5, 'Query').value;
}

/**
 * One piece of a split stream: a slice of a passed-through message (the first slice of a message
 * always holds its whole 5-byte header), or a collected message whole (`whole`).
 */
export interface MessagePiece {
  type: number;
  data: Buffer;
  /** The message ends in this piece. */
  complete: boolean;
  /** The piece is the whole message (a collected type). */
  whole: boolean;
}

/**
 * Cuts a stream into pieces at message boundaries. Messages of the types `collect` picks are
 * given whole (for decoding or rewriting): in place when they lie within one chunk, else gathered
 * into a copy; the others pass as slices of the chunks,
 * so a large DataRow or CopyData is never copied. A header split over chunks is held back until
 * it is complete, so each message's type is known at its first byte.
 *
 * With `merge`, passed-through messages that follow one another within a chunk come as one piece
 * (one slice, one object: a reader that looks only at the collected types pays nothing per row):
 * its `type` is its first message's and `complete` says whether its last one ends in it.
 */
export class MessageSplitter {
  readonly #collect: (type: number) => boolean;
  readonly #maxCollected: number;
  /**
   * With `merge` only (one field: a splitter per idle client stays small), within one push: the
   * passed-through run not given yet (its start, -1 for none), its first type, its end, whether it ends a message.
   */
  readonly #run: { start: number; type: number; end: number; complete: boolean } | undefined;
  #header: Buffer | undefined;
  #headerGot = 0;
  #bodyLeft = 0;
  #type = 0;
  #collecting: Buffer[] | undefined;

  constructor(collect: (type: number) => boolean, maxCollected = 1 << 30, options: { merge?: boolean } = {}) {
    this.#collect = collect;
    this.#maxCollected = maxCollected;
    this.#run = options.merge === true ? { start: -1, type: 0, end: 0, complete: false } : undefined;
  }

  /** True when the bytes so far end on a message boundary. */
  get atBoundary(): boolean {
    return this.#headerGot === 0;
  }

  /** Pieces of `chunk`. Throws ProtocolError on a declared length below 4 or a collected message too large. */
  push(chunk: Buffer): MessagePiece[] {
    const out: MessagePiece[] = [];
    // A run a push that threw left behind is not this chunk's.
    if (this.#run) this.#run.start = -1;
    let i = 0;
    while (i < chunk.length) {
      let sliceStart = i;
      let headerCopy: Buffer | undefined;
      if (this.#headerGot < 5) {
        let length: number;
        if (this.#headerGot === 0 && chunk.length - i >= 5) {
          // The usual case: the header is read where it is.
          this.#type = chunk[i]!;
          length = chunk.readUInt32BE(i + 1);
          this.#headerGot = 5;
          i += 5;
          sliceStart = i - 5;
        } else {
          // Kept only while a header is split over chunks (an idle connection holds none).
          const header = (this.#header ??= Buffer.alloc(5));
          const n = Math.min(5 - this.#headerGot, chunk.length - i);
          const carried = this.#headerGot;
          chunk.copy(header, this.#headerGot, i, i + n);
          this.#headerGot += n;
          i += n;
          if (this.#headerGot < 5) break;
          length = header.readUInt32BE(1);
          this.#type = header[0]!;
          this.#header = undefined;
          // A header that was split over chunks is given from the copy.
          if (carried > 0) headerCopy = header;
          else sliceStart = i - 5;
        }
        if (length < 4) throw new ProtocolError(`invalid message length ${length}`);
        this.#bodyLeft = length - 4;
        if (this.#collect(this.#type)) {
          if (length + 1 > this.#maxCollected) throw new ProtocolError(`message of ${length + 1} bytes is over the limit of ${this.#maxCollected}`);
          // Wholly inside this chunk: given in place, no copy.
          if (!headerCopy && chunk.length - i >= this.#bodyLeft) {
            const end = i + this.#bodyLeft;
            this.#flush(chunk, out);
            out.push({ type: this.#type, data: chunk.subarray(sliceStart, end), complete: true, whole: true });
            this.#bodyLeft = 0;
            this.#headerGot = 0;
            i = end;
            continue;
          }
          this.#collecting = [headerCopy ?? Buffer.from(chunk.subarray(sliceStart, sliceStart + 5))];
          headerCopy = undefined;
        }
      }
      const n = Math.min(this.#bodyLeft, chunk.length - i);
      const body = chunk.subarray(i, i + n);
      this.#bodyLeft -= n;
      i += n;
      const complete = this.#bodyLeft === 0;
      if (this.#collecting) {
        if (n > 0) this.#collecting.push(Buffer.from(body));
        if (complete) {
          this.#flush(chunk, out);
          out.push({ type: this.#type, data: Buffer.concat(this.#collecting), complete: true, whole: true });
          this.#collecting = undefined;
        }
      } else if (this.#run && !headerCopy) {
        // Slices of this chunk that follow one another: given as one when the run ends.
        const run = this.#run;
        if (run.start < 0) {
          run.start = sliceStart;
          run.type = this.#type;
        }
        run.end = i;
        run.complete = complete;
      } else {
        this.#flush(chunk, out);
        const data = headerCopy ? Buffer.concat([headerCopy, body]) : chunk.subarray(sliceStart, i);
        out.push({ type: this.#type, data, complete, whole: false });
      }
      if (complete) this.#headerGot = 0;
    }
    this.#flush(chunk, out);
    return out;
  }

  /** Gives the passed-through run of `chunk` not given yet (merge), if any. */
  #flush(chunk: Buffer, out: MessagePiece[]): void {
    const run = this.#run;
    if (!run || run.start < 0) return;
    out.push({ type: run.type, data: chunk.subarray(run.start, run.end), complete: run.complete, whole: false });
    run.start = -1;
  }
}
