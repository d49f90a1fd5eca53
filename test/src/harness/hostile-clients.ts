/**
 * Misbehaving clients for the "bad input" scenario: malformed startup packets of every shape and
 * half-open connections that say nothing (or half a packet) and hold the socket.
 */
import net from 'node:net';
import type { Endpoint } from './pg-clients.js';

/** Startup-phase byte strings a router must refuse (or close) without harm to anyone else. */
export function malformedPackets(): Buffer[] {
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  };
  const startup = (version: number, body: string): Buffer => {
    const payload = Buffer.from(body, 'latin1'); // byte for byte, so \xff stays one invalid byte
    return Buffer.concat([u32(8 + payload.length), u32(version), payload]);
  };
  return [
    Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), // not PostgreSQL at all
    Buffer.concat([u32(0x7fffffff), u32(196608)]), // absurd declared length
    Buffer.concat([u32(4), u32(196608)]), // length smaller than the header
    Buffer.concat([u32(10001), u32(196608), Buffer.alloc(10001 - 8, 0x61)]), // over the 10000-byte startup limit
    startup(0x00090000, 'user\0x\0\0'), // unknown protocol version
    startup(196608, 'user\0'), // parameter list cut short
    startup(196608, 'database\0d\0\0'), // no user at all
    startup(196608, 'user\0\xff\xfe\0\0'), // not UTF-8 / invalid tenant
    startup(196608, `user\0${'a'.repeat(3000)}\0\0`), // an absurdly long name
    Buffer.concat([u32(16), u32(80877102), u32(1), u32(2)]), // a CancelRequest with a key nobody issued
    Buffer.concat([u32(8), u32(80877103), u32(8), u32(80877103)]), // SSLRequest twice
  ];
}

/** Sends `bytes` on a fresh connection and waits for the router to close it (or timeoutMs). */
export function sendAndWaitClose(at: Endpoint, bytes: Buffer, timeoutMs = 5000): Promise<{ reply: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: at.host, port: at.port });
    const timer = setTimeout(() => finish(false), timeoutMs);
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ reply: Buffer.concat(chunks), closed });
    };
    socket.on('data', (c) => chunks.push(c));
    socket.once('connect', () => socket.write(bytes));
    socket.once('close', () => finish(true));
    socket.once('error', () => finish(true));
  });
}

/** Opens a connection that sends `prefix` (maybe nothing) and then holds the socket open. */
export function holdHalfOpen(at: Endpoint, prefix: Buffer): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: at.host, port: at.port });
    socket.once('connect', () => {
      if (prefix.length > 0) socket.write(prefix);
      resolve(socket);
    });
    socket.once('error', reject);
    // The router may close it after its startup timeout; that is fine, the test only holds it.
    socket.on('error', () => undefined);
  });
}
