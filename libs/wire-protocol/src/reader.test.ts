import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from './pg-error.js';
import { ByteReader } from './reader.js';

describe('ByteReader', () => {
  it('reads the PostgreSQL data types within its bounds', () => {
    const buf = Buffer.from('ff 0000002a fffffffe 616200 c3a900 0102'.replace(/\s+/g, ''), 'hex');
    const r = new ByteReader(buf, 1, buf.length - 1, 'test message');
    expect(r.uint32()).toBe(42);
    expect(r.int32()).toBe(-2);
    expect(r.cstring()).toBe('ab');
    expect(r.cstring()).toBe('é');
    expect(r.remaining).toBe(1);
    expect(r.bytes(1)).toEqual(Buffer.from([1]));
    r.expectEnd();
  });

  it('throws ProtocolError (never RangeError) past its end, even with bytes beyond it in the buffer', () => {
    const buf = Buffer.from('0000000161', 'hex');
    expect(() => new ByteReader(buf, 0, 3, 'm').uint32()).toThrow(ProtocolError);
    expect(() => new ByteReader(buf, 4, 5, 'm').cstring()).toThrow(/invalid m/);
    expect(() => new ByteReader(buf, 5, 5, 'm').uint8()).toThrow(ProtocolError);
    expect(() => new ByteReader(buf, 0, 5, 'm').bytes(6)).toThrow(ProtocolError);
    expect(() => new ByteReader(buf, 0, 5, 'm').expectEnd()).toThrow(expect.objectContaining({ detail: '5 unexpected bytes at the end of the message' }));
  });

  it('strict mode refuses invalid UTF-8; replace mode substitutes U+FFFD', () => {
    const buf = Buffer.from('c32800', 'hex');
    expect(() => new ByteReader(buf, 0, 3, 'm').cstring()).toThrow(ProtocolError);
    expect(new ByteReader(buf, 0, 3, 'm', 'replace').cstring()).toBe('\uFFFD(');
  });

  it('any sequence of reads on any bytes returns values or throws ProtocolError', () => {
    const op = fc.constantFrom('uint8', 'uint32', 'int32', 'cstring', 'bytes', 'rest', 'expectEnd');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.array(op, { maxLength: 10 }), fc.nat(70), (arr, ops, n) => {
        const r = new ByteReader(Buffer.from(arr), 0, arr.length, 'm');
        try {
          for (const o of ops) {
            if (o === 'bytes') r.bytes(n);
            else r[o]();
          }
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
