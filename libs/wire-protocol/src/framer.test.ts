import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { encodeFrame, MessageFramer, type Frame } from './framer.js';
import { ProtocolError } from './pg-error.js';
import { backendStartupReply, dataRow, everySplit } from './testing/builders.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const plain = (frames: Frame[]) => frames.map((f) => ({ type: f.type, length: f.length, body: Buffer.from(f.body).toString('hex') }));

function frameAll(chunks: Buffer[], opts?: { maxMessageSize?: number }): ReturnType<typeof plain> | ProtocolError {
  const f = new MessageFramer(opts);
  const out: Frame[] = [];
  try {
    for (const c of chunks) out.push(...f.push(c));
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw err;
  }
  return plain(out);
}

// AuthenticationOk, ParameterStatus(client_encoding=UTF8), ReadyForQuery(I), written from "Message Formats".
const STREAM = hex('52 00000008 00000000' + '53 00000019 636c69656e745f656e636f64696e6700 5554463800' + '5a 00000005 49');

describe('MessageFramer', () => {
  it('golden: splits a stream into type, length and body', () => {
    expect(frameAll([STREAM])).toEqual([
      { type: 0x52, length: 8, body: '00000000' },
      { type: 0x53, length: 25, body: '636c69656e745f656e636f64696e67005554463800' },
      { type: 0x5a, length: 5, body: '49' },
    ]);
  });

  it('gives the same frames for every split and byte by byte', () => {
    const stream = Buffer.concat([backendStartupReply(), dataRow([Buffer.from('x'.repeat(300)), null])]);
    const whole = frameAll([stream]);
    for (const chunks of everySplit(stream)) expect(frameAll(chunks)).toEqual(whole);
  });

  it('returns views into the chunk, not copies, for messages wholly inside it', () => {
    const f = new MessageFramer();
    const frames = f.push(STREAM);
    for (const fr of frames) expect(fr.body.buffer).toBe(STREAM.buffer);
    expect(frames[0]!.body.byteOffset).toBe(STREAM.byteOffset + 5);
  });

  it('assembles a message that straddles chunks (and leaves the caller buffers alone)', () => {
    const big = dataRow([Buffer.alloc(100_000, 0x61)]);
    const f = new MessageFramer();
    const copy = Buffer.from(big);
    expect(f.push(big.subarray(0, 3))).toEqual([]);
    expect(f.buffered).toBe(3);
    expect(f.push(big.subarray(3, 50_000))).toEqual([]);
    const frames = f.push(big.subarray(50_000));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.length).toBe(big.length - 1);
    expect(frames[0]!.body).toEqual(big.subarray(5));
    expect(big).toEqual(copy);
    expect(f.buffered).toBe(0);
  });

  it('handles an empty body (length 4)', () => {
    expect(frameAll([hex('49 00000004 49 00000004')])).toEqual([
      { type: 0x49, length: 4, body: '' },
      { type: 0x49, length: 4, body: '' },
    ]);
  });

  it('takeRemainder returns the partial message bytes as received', () => {
    const f = new MessageFramer();
    const partial = STREAM.subarray(0, 20);
    const frames = f.push(partial);
    expect(frames).toHaveLength(1);
    expect(f.buffered).toBe(11);
    expect(f.takeRemainder()).toEqual(STREAM.subarray(9, 20));
    expect(f.buffered).toBe(0);
    expect(f.takeRemainder()).toEqual(Buffer.alloc(0));
  });

  it('stopAfter: stops at ReadyForQuery; remainder plus unread chunks are exactly the bytes after it', () => {
    const stream = Buffer.concat([STREAM, dataRow([Buffer.from('1')]), hex('43 00')]);
    for (const chunks of everySplit(stream)) {
      const f = new MessageFramer();
      const seen: number[] = [];
      let next = 0;
      while (next < chunks.length && seen.at(-1) !== 0x5a) {
        for (const fr of f.push(chunks[next++]!, (x) => x.type === 0x5a)) seen.push(fr.type);
      }
      expect(seen).toEqual([0x52, 0x53, 0x5a]);
      // The router steps aside here: it writes the remainder, then pipes the chunks still to come.
      expect(Buffer.concat([f.takeRemainder(), ...chunks.slice(next)])).toEqual(stream.subarray(STREAM.length));
    }
  });

  it('after stopAfter, a later push frames the held bytes first', () => {
    const f = new MessageFramer();
    const stream = Buffer.concat([STREAM, hex('5a 00000005 54')]);
    expect(f.push(stream, (x) => x.type === 0x5a).map((x) => x.type)).toEqual([0x52, 0x53, 0x5a]);
    expect(f.buffered).toBe(6);
    expect(plain(f.push(Buffer.alloc(0)))).toEqual([{ type: 0x5a, length: 5, body: '54' }]);
  });

  it('refuses a declared length below 4', () => {
    const r = frameAll([hex('52 00000003')]);
    expect(r).toBeInstanceOf(ProtocolError);
    expect((r as ProtocolError).code).toBe('08P01');
  });

  it('refuses a declared length above the maximum as soon as the header is in', () => {
    const f = new MessageFramer({ maxMessageSize: 1024 });
    expect(() => f.push(hex('44 00000401'))).toThrow(/invalid message length/);
    expect(() => f.push(hex('00'))).toThrow(/invalid message length/); // sticky
    const g = new MessageFramer({ maxMessageSize: 1024 });
    expect(g.push(hex('44 00000400'))).toEqual([]);
    const h = new MessageFramer({ maxMessageSize: 1024 });
    h.push(hex('44 00'));
    expect(() => h.push(hex('000401'))).toThrow(ProtocolError);
  });

  it('the default maximum is 1 GiB', () => {
    expect(() => new MessageFramer().push(hex('44 40000001'))).toThrow(ProtocolError);
    expect(new MessageFramer().push(hex('44 40000000'))).toEqual([]);
  });

  it('encodeFrame writes type, length and body', () => {
    expect(encodeFrame(0x51, Buffer.from('select 1\0'))).toEqual(hex('51 0000000d 73656c6563742031 00'));
    expect(() => encodeFrame(256, Buffer.alloc(0))).toThrow(RangeError);
  });
});
