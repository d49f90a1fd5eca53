// Property tests (fast-check). The same properties run for much longer in src/testing/fuzz.ts.
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  decodeBackendMessage,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  encodeNoticeResponse,
  encodeParameterStatus,
} from './backend-messages.js';
import { encodeFrame, MessageFramer, type Frame } from './framer.js';
import { ProtocolError } from './pg-error.js';
import { decodeStartupPacket, encodeCancelRequest, encodeStartupMessage, StartupDecoder } from './startup.js';
import { StartupError } from './startup-error.js';
import { checkFramerInvariants, checkStartupInvariants } from './testing/invariants.js';
import { chunked, errorFields, fixturePackets, clientFixtures, mutatedBytes, secretKey, startupMessage, wireText } from './testing/index.js';

const RUNS = { numRuns: 300 };
const seeds = clientFixtures().flatMap((f) => fixturePackets(f.name));

function onlyFrame(bytes: Buffer): Frame {
  const frames = new MessageFramer().push(bytes);
  expect(frames).toHaveLength(1);
  return frames[0]!;
}

describe('round trips: decode(encode(x)) == x', () => {
  it('StartupMessage', () => {
    fc.assert(
      fc.property(startupMessage, (m) => {
        const r = decodeStartupPacket(encodeStartupMessage(m));
        expect(r.kind === 'packet' && r.packet).toMatchObject({
          kind: 'startup-message',
          protocol: m.protocol,
          parameters: m.parameters,
          user: m.parameters.get('user'),
        });
      }),
      RUNS,
    );
  });

  it('CancelRequest', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), secretKey, (pid, key) => {
        expect(decodeStartupPacket(encodeCancelRequest(pid, key))).toEqual({
          kind: 'packet',
          packet: { kind: 'cancel-request', processId: pid, secretKey: key },
          consumed: 12 + key.length,
        });
      }),
      RUNS,
    );
  });

  it('ErrorResponse and NoticeResponse', () => {
    fc.assert(
      fc.property(errorFields, (fields) => {
        expect(decodeBackendMessage(onlyFrame(encodeErrorResponse(fields)))).toEqual({ kind: 'error-response', fields });
        expect(decodeBackendMessage(onlyFrame(encodeNoticeResponse(fields)))).toEqual({ kind: 'notice-response', fields });
      }),
      RUNS,
    );
  });

  it('BackendKeyData, ParameterStatus, NegotiateProtocolVersion', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        secretKey,
        wireText(),
        wireText(),
        fc.array(wireText(), { maxLength: 5 }),
        fc.nat(),
        (pid, key, name, value, names, minor) => {
          expect(decodeBackendMessage(onlyFrame(encodeBackendKeyData(pid, key)))).toEqual({ kind: 'backend-key-data', processId: pid, secretKey: key });
          expect(decodeBackendMessage(onlyFrame(encodeParameterStatus(name, value)))).toEqual({ kind: 'parameter-status', name, value });
          expect(decodeBackendMessage(onlyFrame(encodeNegotiateProtocolVersion(minor, names)))).toEqual({
            kind: 'negotiate-protocol-version',
            newestMinor: minor,
            unrecognized: names,
          });
        },
      ),
      RUNS,
    );
  });

  it('frames: any chunking of encoded frames gives the frames back', () => {
    const frame = fc.record({ type: fc.integer({ min: 0, max: 255 }), body: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) });
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 10 }).chain((frames) => {
          const bytes = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.body)));
          return fc.tuple(fc.constant(frames), chunked(bytes));
        }),
        ([frames, chunks]) => {
          const f = new MessageFramer();
          const got = chunks.flatMap((c) => f.push(c));
          expect(got.map((g) => ({ type: g.type, body: Buffer.from(g.body) }))).toEqual(frames);
          expect(f.buffered).toBe(0);
        },
      ),
      RUNS,
    );
  });
});

describe('arbitrary bytes: a packet, need-more or a StartupError/ProtocolError; the same for any chunking', () => {
  it('startup decoder', () => {
    fc.assert(
      fc.property(
        mutatedBytes(seeds).chain((b) => fc.tuple(fc.constant(b), chunked(b))),
        ([bytes, chunks]) => {
          checkStartupInvariants(bytes, chunks);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('framer and backend message decoder', () => {
    fc.assert(
      fc.property(
        fc
          .uint8Array({ maxLength: 400 })
          .map((a) => Buffer.from(a))
          .chain((b) => fc.tuple(fc.constant(b), chunked(b))),
        ([bytes, chunks]) => {
          checkFramerInvariants(bytes, chunks, 256);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('backend message decoder: any body of any known type', () => {
  it('gives a message or a ProtocolError, nothing else', () => {
    const type = fc.constantFrom(0x52, 0x53, 0x4b, 0x45, 0x4e, 0x76, 0x5a, 0x44);
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
      // Plausible prefixes (an authentication code, a field type, a count) followed by noise.
      fc
        .tuple(fc.constantFrom('00000000', '00000005', '0000000a', '0000000c', '53', '56', '00000000ffffffff'), fc.uint8Array({ maxLength: 40 }))
        .map(([h, a]) => Buffer.concat([Buffer.from(h, 'hex'), Buffer.from(a)])),
    );
    fc.assert(
      fc.property(type, body, (t, b) => {
        try {
          decodeBackendMessage({ type: t, length: b.length + 4, body: b });
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('allocation limits', () => {
  afterEach(() => vi.restoreAllMocks());

  it('the startup decoder never allocates more than maxLength, whatever the input and chunking', () => {
    const sizes: number[] = [];
    const real = Buffer.allocUnsafe.bind(Buffer);
    vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => {
      sizes.push(n);
      return real(n);
    });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 8, max: 64 }), (arr, maxLength) => {
        const bytes = Buffer.from(arr);
        sizes.length = 0;
        const d = new StartupDecoder({ maxLength });
        try {
          for (let i = 0; i < bytes.length; i += 7) if (d.push(bytes.subarray(i, i + 7)).kind === 'packet') break;
        } catch (err) {
          if (!(err instanceof StartupError)) throw err;
        }
        for (const n of sizes) expect(n).toBeLessThanOrEqual(maxLength);
      }),
      { numRuns: 1000 },
    );
  });

  it('the framer allocates no more than the bytes received (capped by the maximum) for a huge declared length', () => {
    const sizes: number[] = [];
    const real = Buffer.allocUnsafe.bind(Buffer);
    vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => {
      sizes.push(n);
      return real(n);
    });
    const f = new MessageFramer(); // 1 GiB default
    f.push(Buffer.from([0x44, 0x3f, 0xff, 0xff, 0xff, 1, 2, 3]));
    for (let i = 0; i < 100; i++) f.push(Buffer.alloc(1000));
    expect(f.buffered).toBe(5 + 3 + 100_000);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2 * 100_003);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThan(4 * 100_003);
  });

  it('the framer never allocates past its maximum message size', () => {
    const sizes: number[] = [];
    const real = Buffer.allocUnsafe.bind(Buffer);
    vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => {
      sizes.push(n);
      return real(n);
    });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 4, max: 100 }), (arr, max) => {
        sizes.length = 0;
        const bytes = Buffer.from(arr);
        const f = new MessageFramer({ maxMessageSize: max });
        try {
          for (let i = 0; i < bytes.length; i += 13) f.push(bytes.subarray(i, i + 13));
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
        for (const n of sizes) expect(n).toBeLessThanOrEqual(max);
      }),
      { numRuns: 1000 },
    );
  });
});
