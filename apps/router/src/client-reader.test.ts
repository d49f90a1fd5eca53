import type net from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ClientReader } from './client-reader.js';

/** A client message: type byte, length, body. */
function message(type: string, body: string): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b.write(type, 0, 'latin1');
  b.writeUInt32BE(4 + body.length, 1);
  b.write(body, 5, 'latin1');
  return b;
}

function socket(): PassThrough & net.Socket {
  const s = new PassThrough() as PassThrough & net.Socket;
  s.pause();
  return s;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ClientReader', () => {
  const bytes = Buffer.concat([message('p', 'first-response'), message('p', 'final-response'), message('Q', 'select 1\0')]);

  it('reads the same messages however the bytes are split, early bytes first', async () => {
    for (let cut = 0; cut <= bytes.length; cut++) {
      const s = socket();
      const reader = new ClientReader(s, bytes.subarray(0, cut));
      const got = reader.next();
      s.write(bytes.subarray(cut));
      expect((await got)!.body.toString()).toBe('first-response');
      expect((await reader.next())!.body.toString()).toBe('final-response');
      // The query came early: the reader's remainder, to forward first, and what the socket still holds.
      await tick();
      const rest = reader.takeRemainder();
      expect(s.isPaused()).toBe(true);
      expect(Buffer.concat([rest, (s.read() as Buffer | null) ?? Buffer.alloc(0)])).toEqual(message('Q', 'select 1\0'));
    }
  });

  it('null when the client closes; a message nobody asked for pauses the socket', async () => {
    const s = socket();
    const reader = new ClientReader(s, Buffer.alloc(0));
    const first = reader.next();
    s.write(Buffer.concat([message('p', 'one'), message('p', 'two')]));
    expect((await first)!.body.toString()).toBe('one');
    await tick();
    expect(s.isPaused()).toBe(true);
    expect((await reader.next())!.body.toString()).toBe('two');
    const last = reader.next();
    s.end();
    expect(await last).toBeNull();
  });

  it('a message over the limit is a protocol error', async () => {
    const s = socket();
    const reader = new ClientReader(s, Buffer.alloc(0));
    const next = reader.next();
    const head = Buffer.alloc(5);
    head.write('p', 0, 'latin1');
    head.writeUInt32BE(1_000_000, 1);
    s.write(head);
    await expect(next).rejects.toThrow();
  });
});
