import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  decodeBindStatement,
  decodeParse,
  decodeParseQuery,
  decodeQueryText,
  decodeTarget,
  encodeParse,
  encodeTarget,
  MessageSplitter,
  rewriteBindStatement,
  CLOSE,
  DESCRIBE,
  PARSE,
  BIND,
} from './extended-query.js';
import { encodeQuery } from './frontend-messages.js';
import { ProtocolError } from './pg-error.js';

function bind(portal: string, statement: string, rest: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(`${portal}\0${statement}\0`), rest]);
  const head = Buffer.alloc(5);
  head[0] = BIND;
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

describe('extended-query messages', () => {
  it('round-trips Parse with its parameter types', () => {
    const types = Buffer.from([0, 2, 0, 0, 0, 23, 0, 0, 0, 25]);
    const msg = encodeParse('s1', 'select $1::int, $2', types);
    expect(msg[0]).toBe(PARSE);
    expect(msg.readUInt32BE(1)).toBe(msg.length - 1);
    expect(decodeParse(msg)).toEqual({ name: 's1', query: 'select $1::int, $2', paramTypes: types });
  });

  it('reads only the query of a Parse, named or not; a name without its NUL is a ProtocolError', () => {
    expect(decodeParseQuery(encodeParse('s1', 'select $1::int', Buffer.from([0, 0])))).toBe('select $1::int');
    expect(decodeParseQuery(encodeParse('', 'select 1', Buffer.from([0, 0])))).toBe('select 1');
    const cut = Buffer.from([PARSE, 0, 0, 0, 6, 0x61, 0x62]);
    expect(() => decodeParseQuery(cut)).toThrow(ProtocolError);
  });

  it('rewrites the statement of a Bind and keeps portal and parameters', () => {
    const rest = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 0x37, 0, 0]);
    const msg = bind('p', 'client_name', rest);
    expect(decodeBindStatement(msg)).toBe('client_name');
    const out = rewriteBindStatement(msg, 'pgs_abc');
    expect(out.readUInt32BE(1)).toBe(out.length - 1);
    expect(decodeBindStatement(out)).toBe('pgs_abc');
    expect(out.subarray(out.length - rest.length)).toEqual(rest);
    expect(out.subarray(5, 7).toString()).toBe('p\0');
  });

  it('round-trips Describe and Close targets, rejects a bad kind', () => {
    const d = encodeTarget(DESCRIBE, { kind: 'S', name: 'x' });
    expect(d[0]).toBe(DESCRIBE);
    expect(decodeTarget(d)).toEqual({ kind: 'S', name: 'x' });
    expect(decodeTarget(encodeTarget(CLOSE, { kind: 'P', name: '' }))).toEqual({ kind: 'P', name: '' });
    const bad = Buffer.from(d);
    bad[5] = 0x58;
    expect(() => decodeTarget(bad)).toThrow(ProtocolError);
  });

  it('reads the text of a Query', () => {
    expect(decodeQueryText(encodeQuery('select 1'))).toBe('select 1');
  });
});

describe('MessageSplitter', () => {
  const stream = Buffer.concat([encodeQuery('select 1'), encodeParse('a', 'select 2', Buffer.from([0, 0])), Buffer.from([0x53, 0, 0, 0, 4])]);

  function splitAt(sizes: number[]): { pieces: { type: number; data: Buffer; complete: boolean; whole: boolean }[]; s: MessageSplitter } {
    const s = new MessageSplitter((t) => t === PARSE);
    const pieces = [];
    let o = 0;
    for (const n of [...sizes, stream.length]) {
      if (o >= stream.length) break;
      pieces.push(...s.push(stream.subarray(o, Math.min(stream.length, o + n))));
      o += n;
    }
    return { pieces, s };
  }

  it('gives the same bytes back, collected messages whole, at any split', () => {
    for (let a = 1; a < stream.length; a++) {
      for (const b of [1, 2, 3, 7]) {
        const { pieces, s } = splitAt([a, b]);
        expect(Buffer.concat(pieces.map((p) => p.data))).toEqual(stream);
        const parse = pieces.filter((p) => p.type === PARSE);
        expect(parse).toHaveLength(1);
        expect(parse[0]!.whole).toBe(true);
        expect(decodeParse(parse[0]!.data).query).toBe('select 2');
        expect(pieces.filter((p) => p.complete).map((p) => p.type)).toEqual([0x51, PARSE, 0x53]);
        // Every message's first piece starts with its header.
        for (const p of pieces.filter((_, i) => i === 0 || pieces[i - 1]!.complete)) expect(p.data[0]).toBe(p.type);
        expect(s.atBoundary).toBe(true);
      }
    }
  });

  it('gives a collected message that lies within one chunk in place, without a copy', () => {
    const pieces = new MessageSplitter((t) => t === PARSE).push(stream);
    const parse = pieces.find((p) => p.type === PARSE)!;
    expect(parse.data.buffer).toBe(stream.buffer);
    expect(parse.data.byteOffset).toBe(stream.byteOffset + encodeQuery('select 1').length);
  });

  it('with merge, gives passed-through messages that follow one another in a chunk as one piece, at any split', () => {
    // RowDescription-like, DataRow, CommandComplete passed through; ReadyForQuery collected; then two more passed through.
    const msg = (type: number, body: number[]): Buffer => Buffer.from([type, 0, 0, 0, body.length + 4, ...body]);
    const replies = [msg(0x54, [1, 2, 3]), msg(0x44, [4, 5]), msg(0x43, [0x53, 0]), msg(0x5a, [0x49]), msg(0x44, [6]), msg(0x43, [0])];
    const all = Buffer.concat(replies);
    const whole = new MessageSplitter((t) => t === 0x5a, 1 << 30, { merge: true }).push(all);
    expect(whole.map((p) => [p.type, p.data.length, p.complete, p.whole])).toEqual([
      [0x54, replies[0]!.length + replies[1]!.length + replies[2]!.length, true, false],
      [0x5a, 6, true, true],
      [0x44, replies[4]!.length + replies[5]!.length, true, false],
    ]);
    // In place: the merged piece is a slice of the chunk.
    expect(whole[0]!.data.buffer).toBe(all.buffer);
    for (let a = 1; a < all.length; a++) {
      for (const b of [1, 2, 5, 9]) {
        const s = new MessageSplitter((t) => t === 0x5a, 1 << 30, { merge: true });
        const pieces = [all.subarray(0, a), all.subarray(a, a + b), all.subarray(a + b)].flatMap((c) => (c.length > 0 ? s.push(c) : []));
        expect(Buffer.concat(pieces.map((p) => p.data))).toEqual(all);
        expect(pieces.filter((p) => p.type === 0x5a).map((p) => [p.whole, p.data.length])).toEqual([[true, 6]]);
        expect(s.atBoundary).toBe(true);
      }
    }
  });

  it('knows when it is inside a message, and rejects bad lengths and oversized collected messages', () => {
    const s = new MessageSplitter(() => false);
    s.push(stream.subarray(0, 3));
    expect(s.atBoundary).toBe(false);
    expect(() => new MessageSplitter(() => false).push(Buffer.from([0x51, 0, 0, 0, 2]))).toThrow(ProtocolError);
    expect(() => new MessageSplitter(() => true, 8).push(encodeQuery('select 1'))).toThrow(ProtocolError);
  });
});
