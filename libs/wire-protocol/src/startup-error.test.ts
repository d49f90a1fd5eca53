// Golden replies, as a real PostgreSQL 15 sent them (its F, L and R fields, source locations, left out).
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { negotiationFor, startupError } from './startup-error.js';

const fields = (...f: string[]) => {
  const body = Buffer.from(`${f.join('\0')}\0\0`, 'latin1');
  const head = Buffer.alloc(5);
  head[0] = 0x45;
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
};

describe('startup errors: PostgreSQL 15 replies', () => {
  it('closes without a word on a bad length, an incomplete packet or a bad CancelRequest', () => {
    for (const e of [startupError.invalidLength(), startupError.incomplete(), startupError.invalidCancelLength()]) {
      expect(e.reply).toBe('close');
      expect(e.replyBytes()).toBeNull();
      expect(e.code).toBe('08P01');
    }
  });

  it('a repeated SSLRequest is an unsupported protocol 1234.5679', () => {
    expect(startupError.unsupportedProtocol(1234, 5679).replyBytes()).toEqual(
      fields('SFATAL', 'VFATAL', 'C0A000', 'Munsupported frontend protocol 1234.5679: server supports 3.0 to 3.0'),
    );
  });

  it('plaintext after an SSLRequest carries the detail', () => {
    expect(startupError.unencryptedData('ssl').replyBytes()).toEqual(
      fields(
        'SFATAL',
        'VFATAL',
        'C08P01',
        'Mreceived unencrypted data after SSL request',
        'DThis could be either a client-software bug or evidence of an attempted man-in-the-middle attack.',
      ),
    );
  });

  it('layout and missing user', () => {
    expect(startupError.badLayout().replyBytes()).toEqual(
      fields('SFATAL', 'VFATAL', 'C08P01', 'Minvalid startup packet layout: expected terminator as last byte'),
    );
    expect(startupError.noUser().replyBytes()).toEqual(fields('SFATAL', 'VFATAL', 'C28000', 'Mno PostgreSQL user name specified in startup packet'));
  });

  it('protocol 2 and older get the protocol 2 error format', () => {
    expect(startupError.unsupportedProtocol(1, 0).replyBytes()).toEqual(
      Buffer.from('EFATAL:  unsupported frontend protocol 1.0: server supports 3.0 to 3.0\n\0', 'latin1'),
    );
    expect(startupError.unsupportedProtocol(4, 0).legacyFormat).toBe(false);
  });

  it('negotiates only for a newer minor version or _pq_ options', () => {
    expect(negotiationFor(0, [])).toBeNull();
    expect(negotiationFor(2, [])).toEqual(Buffer.from('760000000c0003000000000000', 'hex'));
    expect(negotiationFor(0, ['_pq_.x'])).toEqual(Buffer.concat([Buffer.from('76000000130003000000000001', 'hex'), Buffer.from('_pq_.x\0')]));
  });
});
