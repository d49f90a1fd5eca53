import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { StartupError } from './startup-error.js';
import {
  decodeStartupPacket,
  encodeCancelRequest,
  encodeGssEncRequest,
  encodeSslRequest,
  encodeStartupMessage,
  PROTOCOL_3_2,
  StartupDecoder,
  type StartupDecodeResult,
} from './startup.js';
import { everySplit } from './testing/builders.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8').toString('hex');
/** A packet whose Int32 length is computed: `rest` is everything after it, in hex. */
const packet = (rest: string) => {
  const body = hex(rest);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length + 4);
  return Buffer.concat([len, body]);
};

/** Decodes `chunks` one by one with a fresh decoder; the last result, or the error thrown. */
function decodeChunks(chunks: Buffer[], opts?: { maxLength?: number }): StartupDecodeResult | StartupError {
  const d = new StartupDecoder(opts);
  let last: StartupDecodeResult = { kind: 'need-more' };
  try {
    for (const c of chunks) {
      last = d.push(c);
      if (last.kind === 'packet') return last;
    }
    return last;
  } catch (err) {
    if (err instanceof StartupError) return err;
    throw err;
  }
}

function expectSameForEverySplit(bytes: Buffer, opts?: { maxLength?: number }): StartupDecodeResult | StartupError {
  const whole = decodeChunks([bytes], opts);
  for (const chunks of everySplit(bytes)) {
    const r = decodeChunks(chunks, opts);
    if (whole instanceof StartupError) {
      expect(r).toBeInstanceOf(StartupError);
      expect((r as StartupError).message).toBe(whole.message);
    } else expect(r).toEqual(whole);
  }
  return whole;
}

// Golden bytes, written out from "Message Formats" (not produced by the encoders under test).
const SSL_REQUEST = hex('00000008 04d2162f');
const GSS_ENC_REQUEST = hex('00000008 04d21630');
const CANCEL_3_0 = hex('00000010 04d2162e 000004d2 deadbeef');
const KEY_32 = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const CANCEL_3_2 = Buffer.concat([hex('0000002c 04d2162e 00003039'), KEY_32]);
const STARTUP_3_0 = hex(`00000022 00030000 ${cstr('user')}${cstr('alice')}${cstr('database')}${cstr('acme')} 00`);
const STARTUP_3_2 = hex(
  `00000000 00030002 ${cstr('user')}${cstr('alice.acme')}${cstr('options')}${cstr('-c pgs.tenant=acme')}` +
    `${cstr('application_name')}${cstr('app')}${cstr('replication')}${cstr('database')}${cstr('_pq_.test_option')}${cstr('on')} 00`,
);
STARTUP_3_2.writeUInt32BE(STARTUP_3_2.length, 0);

describe('startup packets: golden bytes', () => {
  it('SSLRequest', () => {
    expect(encodeSslRequest()).toEqual(SSL_REQUEST);
    expect(expectSameForEverySplit(SSL_REQUEST)).toEqual({ kind: 'packet', packet: { kind: 'ssl-request' }, consumed: 8 });
  });

  it('GSSENCRequest', () => {
    expect(encodeGssEncRequest()).toEqual(GSS_ENC_REQUEST);
    expect(expectSameForEverySplit(GSS_ENC_REQUEST)).toEqual({ kind: 'packet', packet: { kind: 'gss-enc-request' }, consumed: 8 });
  });

  it('CancelRequest, protocol 3.0 (4-byte key)', () => {
    expect(encodeCancelRequest(1234, hex('deadbeef'))).toEqual(CANCEL_3_0);
    expect(expectSameForEverySplit(CANCEL_3_0)).toEqual({
      kind: 'packet',
      packet: { kind: 'cancel-request', processId: 1234, secretKey: hex('deadbeef') },
      consumed: 16,
    });
  });

  it('CancelRequest, protocol 3.2 (32-byte key, as PostgreSQL 18 sends)', () => {
    expect(encodeCancelRequest(12345, KEY_32)).toEqual(CANCEL_3_2);
    expect(expectSameForEverySplit(CANCEL_3_2)).toEqual({
      kind: 'packet',
      packet: { kind: 'cancel-request', processId: 12345, secretKey: KEY_32 },
      consumed: 44,
    });
  });

  it('CancelRequest accepts the 256-byte maximum key and a process id with the high bit set', () => {
    const key = Buffer.alloc(256, 7);
    const bytes = encodeCancelRequest(0xfffffffe, key);
    expect(bytes.length).toBe(268);
    expect(decodeStartupPacket(bytes)).toEqual({ kind: 'packet', packet: { kind: 'cancel-request', processId: 0xfffffffe, secretKey: key }, consumed: 268 });
  });

  it('the secret key is a copy, not a view of the caller chunk', () => {
    const bytes = Buffer.from(CANCEL_3_0);
    const r = decodeStartupPacket(bytes);
    bytes.fill(0);
    expect(r.kind === 'packet' && r.packet.kind === 'cancel-request' && r.packet.secretKey).toEqual(hex('deadbeef'));
  });

  it('StartupMessage, protocol 3.0', () => {
    expect(encodeStartupMessage({ parameters: { user: 'alice', database: 'acme' } })).toEqual(STARTUP_3_0);
    const r = expectSameForEverySplit(STARTUP_3_0);
    expect(r).toEqual({
      kind: 'packet',
      consumed: STARTUP_3_0.length,
      packet: {
        kind: 'startup-message',
        protocol: { major: 3, minor: 0 },
        parameters: new Map([
          ['user', 'alice'],
          ['database', 'acme'],
        ]),
        user: 'alice',
        database: 'acme',
        options: undefined,
        protocolOptions: new Map(),
      },
    });
  });

  it('StartupMessage, protocol 3.2 with options, application_name, replication and a _pq_ option', () => {
    const parameters = new Map([
      ['user', 'alice.acme'],
      ['options', '-c pgs.tenant=acme'],
      ['application_name', 'app'],
      ['replication', 'database'],
      ['_pq_.test_option', 'on'],
    ]);
    expect(encodeStartupMessage({ protocol: PROTOCOL_3_2, parameters })).toEqual(STARTUP_3_2);
    const r = expectSameForEverySplit(STARTUP_3_2);
    expect(r).toEqual({
      kind: 'packet',
      consumed: STARTUP_3_2.length,
      packet: {
        kind: 'startup-message',
        protocol: { major: 3, minor: 2 },
        parameters,
        user: 'alice.acme',
        database: undefined,
        options: '-c pgs.tenant=acme',
        protocolOptions: new Map([['_pq_.test_option', 'on']]),
      },
    });
    if (r instanceof StartupError || r.kind !== 'packet' || r.packet.kind !== 'startup-message') throw new Error('unreachable');
    expect([...r.packet.parameters.keys()]).toEqual([...parameters.keys()]); // wire order kept
  });

  it('StartupMessage with non-ASCII UTF-8 names and an empty value', () => {
    const bytes = encodeStartupMessage({ parameters: { user: 'jürgen', database: 'datenbank_ü', options: '' } });
    const r = decodeStartupPacket(bytes);
    expect(r.kind === 'packet' && r.packet.kind === 'startup-message' && [r.packet.user, r.packet.database, r.packet.options]).toEqual([
      'jürgen',
      'datenbank_ü',
      '',
    ]);
  });

  it('direct TLS: a ClientHello record is recognised from its first byte and nothing is consumed', () => {
    const clientHello = hex('16 03 01 00 f8 01 00 00 f4 03 03');
    for (const chunks of everySplit(clientHello)) {
      const d = new StartupDecoder();
      let r: StartupDecodeResult = { kind: 'need-more' };
      for (const c of chunks) {
        r = d.push(c);
        if (r.kind === 'packet') break;
      }
      expect(r).toEqual({ kind: 'packet', packet: { kind: 'direct-tls' }, consumed: 0 });
    }
    const d = new StartupDecoder();
    d.push(clientHello.subarray(0, 3));
    d.push(clientHello.subarray(3));
    expect(d.takeRemainder()).toEqual(clientHello); // the caller hands every byte to TLS
  });
});

describe('startup decoder: incremental use', () => {
  it('answers need-more until the packet is whole', () => {
    const d = new StartupDecoder();
    for (let i = 0; i < STARTUP_3_0.length - 1; i++) expect(d.push(STARTUP_3_0.subarray(i, i + 1))).toEqual({ kind: 'need-more' });
    expect(d.push(STARTUP_3_0.subarray(-1)).kind).toBe('packet');
    expect(d.buffered).toBe(0);
  });

  it('keeps bytes after a packet: takeRemainder hands them over, and resets', () => {
    const pipelined = hex('51 0000000b 73656c656374 00'); // Query 'select'
    const d = new StartupDecoder();
    const r = d.push(Buffer.concat([STARTUP_3_0, pipelined]));
    expect(r.kind === 'packet' && r.consumed).toBe(STARTUP_3_0.length);
    expect(d.buffered).toBe(pipelined.length);
    expect(d.takeRemainder()).toEqual(pipelined);
    expect(d.buffered).toBe(0);
    expect(d.takeRemainder()).toEqual(Buffer.alloc(0));
  });

  it('decodes SSLRequest, then a StartupMessage the client sent after the answer', () => {
    const d = new StartupDecoder();
    expect(d.push(SSL_REQUEST.subarray(0, 5))).toEqual({ kind: 'need-more' });
    expect(d.push(SSL_REQUEST.subarray(5))).toMatchObject({ packet: { kind: 'ssl-request' } });
    expect(d.push(STARTUP_3_0)).toMatchObject({ packet: { kind: 'startup-message', user: 'alice' } });
  });

  it('decodes a second pipelined packet on an empty push (GSSENCRequest then SSLRequest)', () => {
    const d = new StartupDecoder();
    expect(d.push(Buffer.concat([GSS_ENC_REQUEST, SSL_REQUEST]))).toMatchObject({ packet: { kind: 'gss-enc-request' } });
    expect(d.push(Buffer.alloc(0))).toMatchObject({ packet: { kind: 'ssl-request' } });
    expect(d.push(Buffer.alloc(0))).toEqual({ kind: 'need-more' });
  });

  it('assembles a packet from many chunks without touching the caller buffers', () => {
    const chunks = [STARTUP_3_2.subarray(0, 3), STARTUP_3_2.subarray(3, 10), STARTUP_3_2.subarray(10)].map((c) => Buffer.from(c));
    const d = new StartupDecoder();
    d.push(chunks[0]!);
    d.push(chunks[1]!);
    const r = d.push(chunks[2]!);
    expect(r.kind).toBe('packet');
    expect(Buffer.concat(chunks)).toEqual(STARTUP_3_2);
  });

  it('keeps throwing the same error after a protocol violation', () => {
    const d = new StartupDecoder();
    const bad = hex('00000004 00000000');
    let first: unknown;
    try {
      d.push(bad);
    } catch (err) {
      first = err;
    }
    expect(first).toBeInstanceOf(StartupError);
    expect(() => d.push(STARTUP_3_0)).toThrow(first as Error);
  });
});

describe("startup decoder: each bad packet gets PostgreSQL 15's reply (measured against a real server)", () => {
  // [case, bytes, reply, SQLSTATE, message]
  const cases: Array<[string, Buffer, 'close' | 'error', string, RegExp]> = [
    ['declared length below 8', hex('00000007 00030000'), 'close', '08P01', /^invalid length of startup packet$/],
    ['declared length 0', hex('00000000'), 'close', '08P01', /^invalid length of startup packet$/],
    ['declared length above 10000', hex('00002711 00030000'), 'close', '08P01', /^invalid length of startup packet$/],
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'close', '08P01', /^invalid length of startup packet$/],
    ['a CancelRequest with a 3-byte key', hex('0000000f 04d2162e 00000001 aabbcc'), 'close', '08P01', /^invalid length of query cancel packet$/],
    [
      'a CancelRequest with a 257-byte key',
      Buffer.concat([hex('0000010d 04d2162e 00000001'), Buffer.alloc(257)]),
      'close',
      '08P01',
      /^invalid length of query cancel packet$/,
    ],
    ['an unknown request code', hex('00000008 04d21631'), 'error', '0A000', /^unsupported frontend protocol 1234\.5681: server supports 3\.0 to 3\.0$/],
    ['protocol 2.0', packet(`00020000 ${cstr('user')}00 00`), 'error', '0A000', /^unsupported frontend protocol 2\.0: server supports 3\.0 to 3\.0$/],
    ['protocol 4.0', hex('00000009 00040000 00'), 'error', '0A000', /^unsupported frontend protocol 4\.0: server supports 3\.0 to 3\.0$/],
    [
      'a StartupMessage with no terminator at all',
      hex('00000008 00030000'),
      'error',
      '08P01',
      /^invalid startup packet layout: expected terminator as last byte$/,
    ],
    ['a StartupMessage whose last byte is not NUL', packet(`00030000 ${cstr('user')}${cstr('al')}61`), 'error', '08P01', /expected terminator/],
    ['a name without its value', packet(`00030000 ${cstr('user')}00`), 'error', '08P01', /expected terminator/],
    ['a value ending at the last byte', packet(`00030000 ${cstr('user')}${cstr('al')}`), 'error', '08P01', /expected terminator/],
    ['an empty name before the end', packet(`00030000 00 ${cstr('user')}${cstr('bob')}00`), 'error', '08P01', /expected terminator/],
    ['no user', packet(`00030000 ${cstr('database')}${cstr('acme')}00`), 'error', '28000', /^no PostgreSQL user name specified in startup packet$/],
    ['an empty user', packet(`00030000 ${cstr('user')}00 00`), 'error', '28000', /^no PostgreSQL user name/],
    ['bad UTF-8 in a value', packet(`00030000 ${cstr('user')}c3 28 00 00`), 'error', '08P01', /^invalid startup packet$/],
    ['an overlong UTF-8 NUL', packet(`00030000 ${cstr('user')}c0 80 00 00`), 'error', '08P01', /^invalid startup packet$/],
    ['a UTF-16 surrogate encoded in UTF-8', packet(`00030000 ${cstr('user')}ed a0 80 00 00`), 'error', '08P01', /^invalid startup packet$/],
  ];
  for (const [name, bytes, reply, code, message] of cases) {
    it(name, () => {
      const r = expectSameForEverySplit(bytes);
      expect(r).toBeInstanceOf(StartupError);
      const err = r as StartupError;
      expect([err.reply, err.code, err.severity]).toEqual([reply, code, 'FATAL']);
      expect(err.message).toMatch(message);
      if (err.message === 'invalid startup packet') expect(err.detail).toBeTruthy();
      if (reply === 'close') expect(err.replyBytes()).toBeNull();
      else expect(err.replyBytes()![0]).toBe(0x45);
    });
  }

  it('takes an SSLRequest or GSSENCRequest of any length, as the server does', () => {
    expect(decodeStartupPacket(hex('0000000c 04d2162f 00000000'))).toMatchObject({ kind: 'packet', packet: { kind: 'ssl-request' }, consumed: 12 });
    expect(decodeStartupPacket(hex('0000000c 04d21630 00000000'))).toMatchObject({ kind: 'packet', packet: { kind: 'gss-enc-request' }, consumed: 12 });
  });

  it('keeps the last value of a repeated parameter, as the server does', () => {
    const r = decodeStartupPacket(packet(`00030000 ${cstr('user')}${cstr('a')}${cstr('database')}${cstr('d')}${cstr('user')}${cstr('b')}00`));
    expect(r).toMatchObject({ kind: 'packet', packet: { user: 'b', database: 'd' } });
  });

  it('answers a protocol 2 client in the protocol 2 format', () => {
    const err = expectSameForEverySplit(packet(`00020000 ${cstr('user')}${cstr('a')}00`)) as StartupError;
    expect(err.replyBytes()).toEqual(Buffer.from('EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n\0', 'latin1'));
  });

  it('sends NegotiateProtocolVersion before the missing-user error for a newer minor version or _pq_ options', () => {
    const newer = expectSameForEverySplit(packet(`00030002 ${cstr('database')}${cstr('acme')}00`)) as StartupError;
    expect(newer.replyBytes()!.subarray(0, 13)).toEqual(hex('76 0000000c 00030000 00000000'));
    expect(newer.replyBytes()![13]).toBe(0x45);
    const opts = expectSameForEverySplit(packet(`00030000 ${cstr('_pq_.x')}${cstr('1')}00`)) as StartupError;
    expect(opts.replyBytes()!.subarray(0, 20)).toEqual(Buffer.concat([hex('76 00000013 00030000 00000001'), Buffer.from('_pq_.x\0')]));
    const plain = expectSameForEverySplit(packet(`00030000 ${cstr('database')}${cstr('acme')}00`)) as StartupError;
    expect(plain.replyBytes()![0]).toBe(0x45);
  });

  it('checks the declared length before the body arrives (no waiting for 10 kB of garbage)', () => {
    const d = new StartupDecoder();
    expect(() => d.push(hex('00ffffff'))).toThrow(/invalid length/);
  });

  it('waits for the whole packet before judging its version, as the server does (a client that closes early sees only the close)', () => {
    const d = new StartupDecoder();
    expect(d.push(hex('00000010 00020000'))).toEqual({ kind: 'need-more' });
    expect(() => d.push(hex('00000000 00000000'))).toThrow(/unsupported frontend protocol 2\.0/);
  });

  it('honours a smaller maxLength', () => {
    expect(decodeChunks([STARTUP_3_2], { maxLength: 40 })).toBeInstanceOf(StartupError);
    expect(decodeChunks([STARTUP_3_0], { maxLength: STARTUP_3_0.length })).toMatchObject({ kind: 'packet' });
  });

  it('accepts a packet of exactly 10000 bytes and refuses 10001', () => {
    const base = encodeStartupMessage({ parameters: { user: 'u', pad: '' } }).length;
    const exact = encodeStartupMessage({ parameters: { user: 'u', pad: 'x'.repeat(10000 - base) } });
    expect(exact.length).toBe(10000);
    expect(decodeStartupPacket(exact).kind).toBe('packet');
    const over = encodeStartupMessage({ parameters: { user: 'u', pad: 'x'.repeat(10001 - base) } });
    expect(() => decodeStartupPacket(over)).toThrow(StartupError);
  });
});

describe('startup encoders', () => {
  it('rewrite and replay: alice.acme becomes alice, everything else unchanged', () => {
    const r = decodeStartupPacket(STARTUP_3_2);
    if (r.kind !== 'packet' || r.packet.kind !== 'startup-message') throw new Error('expected a StartupMessage');
    const parameters = new Map(r.packet.parameters);
    parameters.set('user', 'alice');
    const replay = encodeStartupMessage({ protocol: r.packet.protocol, parameters });
    expect(replay.length).toBe(STARTUP_3_2.length - '.acme'.length);
    expect(decodeStartupPacket(replay)).toMatchObject({ packet: { user: 'alice', protocol: { major: 3, minor: 2 }, options: '-c pgs.tenant=acme' } });
  });

  it('refuses what cannot be encoded', () => {
    expect(() => encodeStartupMessage({ parameters: { user: 'a\0b' } })).toThrow(RangeError);
    expect(() => encodeStartupMessage({ parameters: { '': 'x' } })).toThrow(RangeError);
    expect(() => encodeStartupMessage({ protocol: { major: 3, minor: 70000 }, parameters: {} })).toThrow(RangeError);
    expect(() => encodeCancelRequest(1, Buffer.alloc(3))).toThrow(RangeError);
    expect(() => encodeCancelRequest(1, Buffer.alloc(257))).toThrow(RangeError);
    expect(() => encodeCancelRequest(2 ** 32, Buffer.alloc(4))).toThrow(RangeError);
  });
});
