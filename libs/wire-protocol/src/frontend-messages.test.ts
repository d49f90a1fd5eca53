import { describe, expect, it } from 'vitest';
import { MessageFramer } from './framer.js';
import {
  decodeSaslInitialResponse,
  decodeSaslResponse,
  encodeQuery,
  encodeSaslInitialResponse,
  encodeSaslResponse,
  MessageBoundaries,
  TERMINATE,
  TerminateFilter,
} from './frontend-messages.js';
import { ProtocolError } from './pg-error.js';

function frameOf(bytes: Buffer) {
  const [frame] = new MessageFramer().push(bytes);
  return frame!;
}

describe('SASL frontend messages', () => {
  it('golden bytes: SASLInitialResponse and SASLResponse', () => {
    const initial = encodeSaslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=abc'));
    expect(initial.toString('hex')).toBe(
      `70000000${(4 + 14 + 4 + 11).toString(16)}${Buffer.from('SCRAM-SHA-256\0').toString('hex')}0000000b${Buffer.from('n,,n=,r=abc').toString('hex')}`,
    );
    expect(decodeSaslInitialResponse(frameOf(initial))).toEqual({ mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=abc') });
    const resp = encodeSaslResponse(Buffer.from('c=biws'));
    expect(resp.toString('hex')).toBe(`700000000a${Buffer.from('c=biws').toString('hex')}`);
    expect(decodeSaslResponse(frameOf(resp)).toString()).toBe('c=biws');
  });

  it('decodes a missing initial response (-1) and refuses bad lengths and wrong types', () => {
    const body = Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    expect(decodeSaslInitialResponse({ type: 0x70, length: body.length + 4, body })).toEqual({ mechanism: 'SCRAM-SHA-256', data: null });
    const long = Buffer.concat([Buffer.from('M\0'), Buffer.from([0, 0, 0, 9]), Buffer.from('abc')]);
    expect(() => decodeSaslInitialResponse({ type: 0x70, length: long.length + 4, body: long })).toThrow(ProtocolError);
    expect(() => decodeSaslResponse({ type: 0x51, length: 4, body: Buffer.alloc(0) })).toThrow(ProtocolError);
  });

  it('golden bytes: Query and Terminate', () => {
    expect(encodeQuery('DISCARD ALL').toString('hex')).toBe(`5100000010${Buffer.from('DISCARD ALL\0').toString('hex')}`);
    expect(TERMINATE.toString('hex')).toBe('5800000004');
  });
});

describe('TerminateFilter', () => {
  const stream = Buffer.concat([encodeQuery('select 1'), encodeQuery('X'), encodeSaslResponse(Buffer.from([0x58, 0, 0, 0, 4])), TERMINATE]);
  const withoutTerminate = stream.subarray(0, stream.length - 5);

  it('cuts the Terminate and nothing that merely looks like one, at every split of the stream', () => {
    for (let split = 0; split <= stream.length; split++) {
      const f = new TerminateFilter();
      const out = Buffer.concat([f.filter(stream.subarray(0, split)), f.filter(stream.subarray(split))]);
      expect(f.terminated).toBe(true);
      expect(f.atBoundary).toBe(true);
      const torn = split > stream.length - 5 && split < stream.length;
      expect(f.torn).toBe(torn);
      if (!torn) expect(out.equals(withoutTerminate)).toBe(true);
    }
  });

  it('passes a stream without Terminate through as the same buffers', () => {
    const f = new TerminateFilter();
    const chunk = withoutTerminate.subarray(0, 7);
    expect(f.filter(chunk)).toBe(chunk);
    expect(f.atBoundary).toBe(false);
    f.filter(withoutTerminate.subarray(7));
    expect(f.terminated).toBe(false);
    expect(f.atBoundary).toBe(true);
  });
});

describe('MessageBoundaries', () => {
  const rfq = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
  const stream = Buffer.concat([encodeQuery('select 1'), Buffer.from([0x53, 0, 0, 0, 4]), rfq, TERMINATE]);

  it('reports every message end, with the ReadyForQuery status, at every split', () => {
    const whole = new MessageBoundaries().push(stream);
    expect(whole.map((m) => String.fromCharCode(m.type))).toEqual(['Q', 'S', 'Z', 'X']);
    expect(whole[2]).toEqual({ type: 0x5a, end: stream.length - 5, status: 0x49 });
    for (let split = 0; split <= stream.length; split++) {
      const b = new MessageBoundaries();
      const first = b.push(stream.subarray(0, split));
      const second = b.push(stream.subarray(split)).map((m) => ({ ...m, end: m.end + split }));
      expect([...first, ...second]).toEqual(whole);
      expect(b.atBoundary).toBe(true);
    }
  });

  it('refuses a declared length below 4', () => {
    expect(() => new MessageBoundaries().push(Buffer.from([0x51, 0, 0, 0, 3]))).toThrow(ProtocolError);
  });
});
