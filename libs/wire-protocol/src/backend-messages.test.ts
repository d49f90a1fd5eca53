import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  decodeBackendMessage,
  decodeSaslMechanisms,
  encodeAuthentication,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeNegotiateProtocolVersion,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodeReadyForQuery,
  encodeSaslMechanisms,
  GSS_ACCEPT,
  SSL_ACCEPT,
  SSL_REJECT,
} from './backend-messages.js';
import { MessageFramer, type Frame } from './framer.js';
import { ProtocolError } from './pg-error.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8').toString('hex');
function frameOf(bytes: Buffer): Frame {
  const frames = new MessageFramer().push(bytes);
  expect(frames).toHaveLength(1);
  return frames[0]!;
}
const decode = (bytes: Buffer) => decodeBackendMessage(frameOf(bytes));

describe('backend messages: golden bytes', () => {
  it('single-byte answers', () => {
    expect(SSL_ACCEPT).toEqual(Buffer.from('S'));
    expect(SSL_REJECT).toEqual(Buffer.from('N'));
    expect(GSS_ACCEPT).toEqual(Buffer.from('G'));
  });

  it('AuthenticationOk, cleartext, MD5, SASL, SASLContinue, SASLFinal', () => {
    expect(encodeAuthentication(0)).toEqual(hex('52 00000008 00000000'));
    expect(decode(hex('52 00000008 00000000'))).toEqual({ kind: 'authentication', code: 0, data: Buffer.alloc(0) });
    expect(decode(hex('52 00000008 00000003'))).toEqual({ kind: 'authentication', code: 3, data: Buffer.alloc(0) });
    expect(encodeAuthentication(5, hex('01020304'))).toEqual(hex('52 0000000c 00000005 01020304'));
    expect(decode(hex('52 0000000c 00000005 01020304'))).toEqual({ kind: 'authentication', code: 5, data: hex('01020304') });
    const sasl = hex(`52 0000002a 0000000a ${cstr('SCRAM-SHA-256-PLUS')}${cstr('SCRAM-SHA-256')}00`);
    expect(encodeAuthentication(10, encodeSaslMechanisms(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']))).toEqual(sasl);
    const m = decode(sasl);
    expect(m.kind === 'authentication' && decodeSaslMechanisms(m.data)).toEqual(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']);
    const cont = Buffer.from('r=abc,s=c2FsdA==,i=4096');
    expect(decode(encodeAuthentication(11, cont))).toEqual({ kind: 'authentication', code: 11, data: cont });
    expect(decode(encodeAuthentication(12, Buffer.from('v=xyz')))).toEqual({ kind: 'authentication', code: 12, data: Buffer.from('v=xyz') });
  });

  it('ParameterStatus', () => {
    const bytes = hex(`53 00000018 ${cstr('server_version')}${cstr('18.1')}`); // 4 + 15 + 5
    expect(encodeParameterStatus('server_version', '18.1')).toEqual(bytes);
    expect(decode(bytes)).toEqual({ kind: 'parameter-status', name: 'server_version', value: '18.1' });
  });

  it('BackendKeyData 3.0 (4-byte key) and 3.2 (32-byte key)', () => {
    const v30 = hex('4b 0000000c 00001234 cafebabe');
    expect(encodeBackendKeyData(0x1234, hex('cafebabe'))).toEqual(v30);
    expect(decode(v30)).toEqual({ kind: 'backend-key-data', processId: 0x1234, secretKey: hex('cafebabe') });
    const key = Buffer.alloc(32, 0xab);
    const v32 = Buffer.concat([hex('4b 00000028 00001234'), key]);
    expect(encodeBackendKeyData(0x1234, key)).toEqual(v32);
    expect(decode(v32)).toEqual({ kind: 'backend-key-data', processId: 0x1234, secretKey: key });
  });

  it('NegotiateProtocolVersion', () => {
    const bytes = hex(`76 0000001e 00000000 00000002 ${cstr('_pq_.foo')}${cstr('_pq_.bar')}`); // 4 + 4 + 4 + 9 + 9
    expect(encodeNegotiateProtocolVersion(0, ['_pq_.foo', '_pq_.bar'])).toEqual(bytes);
    expect(decode(bytes)).toEqual({ kind: 'negotiate-protocol-version', newestMinor: 0, unrecognized: ['_pq_.foo', '_pq_.bar'] });
    expect(decode(encodeNegotiateProtocolVersion(2, []))).toEqual({ kind: 'negotiate-protocol-version', newestMinor: 2, unrecognized: [] });
  });

  it('ReadyForQuery I, T, E', () => {
    expect(encodeReadyForQuery('I')).toEqual(hex('5a 00000005 49'));
    expect(encodeReadyForQuery('T')).toEqual(hex('5a 00000005 54'));
    expect(encodeReadyForQuery('E')).toEqual(hex('5a 00000005 45'));
    expect(decode(hex('5a 00000005 54'))).toEqual({ kind: 'ready-for-query', status: 'T' });
  });

  it('ErrorResponse with every field, in the order PostgreSQL sends them', () => {
    const fields = {
      severity: 'ERROR' as const,
      code: '23505',
      message: 'duplicate key value violates unique constraint "t_pkey"',
      detail: 'Key (id)=(1) already exists.',
      hint: 'h',
      position: '8',
      internalPosition: '2',
      internalQuery: 'iq',
      where: 'w',
      schema: 'public',
      table: 't',
      column: 'id',
      dataType: 'int4',
      constraint: 't_pkey',
      file: 'nbtinsert.c',
      line: '666',
      routine: '_bt_check_unique',
    };
    const expected = hex(
      '0000000000' + // type and length, filled in below
        [
          'S' + cstr('ERROR'),
          'V' + cstr('ERROR'),
          'C' + cstr('23505'),
          'M' + cstr(fields.message),
          'D' + cstr(fields.detail),
          'H' + cstr('h'),
          'P' + cstr('8'),
          'p' + cstr('2'),
          'q' + cstr('iq'),
          'W' + cstr('w'),
          's' + cstr('public'),
          't' + cstr('t'),
          'c' + cstr('id'),
          'd' + cstr('int4'),
          'n' + cstr('t_pkey'),
          'F' + cstr('nbtinsert.c'),
          'L' + cstr('666'),
          'R' + cstr('_bt_check_unique'),
        ]
          .map((f) => Buffer.from(f[0]!).toString('hex') + f.slice(1))
          .join('') +
        '00',
    );
    expected[0] = 0x45;
    expected.writeUInt32BE(expected.length - 1, 1);
    expect(encodeErrorResponse(fields)).toEqual(expected);
    expect(decode(expected)).toEqual({ kind: 'error-response', fields });
  });

  it('NoticeResponse', () => {
    const bytes = hex(`4e 00000026 53${cstr('NOTICE')}56${cstr('NOTICE')}43${cstr('00000')}4d${cstr('hi there')}00`);
    expect(encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: 'hi there' })).toEqual(bytes);
    // 4 + (1+7) + (1+7) + (1+6) + (1+9) + 1 = 38
    expect(decode(bytes)).toEqual({ kind: 'notice-response', fields: { severity: 'NOTICE', code: '00000', message: 'hi there' } });
  });

  it('ErrorResponse: localized severity, no V (pre-9.6), unknown field types ignored', () => {
    const localized = hex(`45 00000000 53${cstr('FEHLER')}56${cstr('ERROR')}43${cstr('42P01')}4d${cstr('Relation existiert nicht')}00`);
    localized.writeUInt32BE(localized.length - 1, 1);
    expect(decode(localized)).toEqual({
      kind: 'error-response',
      fields: { severity: 'ERROR', localizedSeverity: 'FEHLER', code: '42P01', message: 'Relation existiert nicht' },
    });
    const old = hex(`45 00000000 53${cstr('FATAL')}43${cstr('28000')}4d${cstr('no')}5a${cstr('future field')}00`);
    old.writeUInt32BE(old.length - 1, 1);
    expect(decode(old)).toEqual({ kind: 'error-response', fields: { severity: 'FATAL', code: '28000', message: 'no' } });
  });

  it('an encoded NUL inside a field becomes U+FFFD instead of breaking the message', () => {
    const bytes = encodeErrorResponse({ severity: 'FATAL', code: '08P01', message: 'a\0b' });
    expect(decode(bytes)).toMatchObject({ fields: { message: 'a\uFFFDb' } });
  });

  it('other message types come back as they are', () => {
    expect(decode(hex('44 00000006 0000'))).toEqual({ kind: 'other', type: 0x44, body: hex('0000') });
  });
});

describe('backend messages: malformed bodies are protocol errors', () => {
  const cases: Array<[string, string]> = [
    ['authentication without a code', '52 00000006 0000'],
    ['AuthenticationOk with extra bytes', '52 00000009 00000000 00'],
    ['MD5 with a short salt', '52 0000000b 00000005 010203'],
    ['an unknown authentication code', '52 00000008 00000063'],
    ['SASL list without its closing NUL', `52 00000015 0000000a ${cstr('SCRAM-SHA-256')}`],
    ['ParameterStatus without a value', `53 00000009 ${cstr('abcd')}`],
    ['ParameterStatus with trailing bytes', `53 0000000a ${cstr('a')}${cstr('b')}6161`],
    ['BackendKeyData with a 3-byte key', '4b 0000000b 00000001 aabbcc'],
    ['BackendKeyData with no key', '4b 00000008 00000001'],
    ['NegotiateProtocolVersion claiming more names than bytes', '76 00000010 00000000 7fffffff 0000'],
    ['NegotiateProtocolVersion with a missing name', `76 00000011 00000000 00000002 ${cstr('_pq_')}`],
    ['ReadyForQuery with an unknown status', '5a 00000005 58'],
    ['ReadyForQuery without a status', '5a 00000004'],
    ['ErrorResponse without a terminator', `45 0000000b 53${cstr('ERROR')}`],
    ['ErrorResponse without a code', `45 00000015 53${cstr('ERROR')}4d${cstr('message')}00`],
    ['ErrorResponse with an unknown V severity', `45 0000001f 53${cstr('X')}56${cstr('BOGUS')}43${cstr('XX000')}4d${cstr('m')}00`],
  ];
  for (const [name, h] of cases) {
    it(name, () => {
      const bytes = hex(h);
      bytes.writeUInt32BE(bytes.length - 1, 1);
      let err: unknown;
      try {
        decode(bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).code).toBe('08P01');
    });
  }

  it('encoders refuse what cannot be sent', () => {
    expect(() => encodeBackendKeyData(1, Buffer.alloc(3))).toThrow(RangeError);
    expect(() => encodeBackendKeyData(1, Buffer.alloc(257))).toThrow(RangeError);
    expect(() => encodeReadyForQuery('X' as 'I')).toThrow(RangeError);
    expect(() => encodeNegotiateProtocolVersion(0, ['a\0'])).toThrow(RangeError);
    expect(() => encodeParameterStatus('a\0', 'b')).toThrow(RangeError);
  });
});
