// The router's TLS certificate and key, read from files and swapped on SIGHUP: new handshakes use
// the new pair, connections already open keep the context they started with.
import fs from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import { ALPN_PROTOCOL } from '@pgs/wire-protocol';

/** Certificate files and the context built from them. */
export class TlsCredentials {
  readonly #certFile: string;
  readonly #keyFile: string;
  #context: tls.SecureContext;
  #loadedAt: number;

  /** Reads both files now; throws when they are missing or do not form a valid pair. */
  constructor(certFile: string, keyFile: string) {
    this.#certFile = certFile;
    this.#keyFile = keyFile;
    this.#context = this.#load();
    this.#loadedAt = Date.now();
  }

  /** The context new handshakes use. */
  get context(): tls.SecureContext {
    return this.#context;
  }

  /** When the files were last loaded (epoch ms). */
  get loadedAt(): number {
    return this.#loadedAt;
  }

  /** Re-reads the files; on failure the old pair stays in use and the error is thrown. */
  reload(): void {
    this.#context = this.#load();
    this.#loadedAt = Date.now();
  }

  #load(): tls.SecureContext {
    return tls.createSecureContext({ cert: fs.readFileSync(this.#certFile), key: fs.readFileSync(this.#keyFile), minVersion: 'TLSv1.2' });
  }
}

/** The outcome of a server-side TLS handshake on an accepted socket. */
export interface ServerTls {
  socket: tls.TLSSocket;
  /** The SNI name the client asked for, if any. */
  servername: string | undefined;
  /** The negotiated ALPN protocol, or undefined. */
  alpn: string | undefined;
}

/**
 * Runs the server side of TLS on `socket`. `head` holds bytes already read that belong to the
 * handshake (direct TLS: the ClientHello); they are handed back to the socket first.
 */
export function acceptTls(socket: net.Socket, context: tls.SecureContext, head: Buffer): Promise<ServerTls> {
  return new Promise((resolve, reject) => {
    if (head.length > 0) socket.unshift(head);
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: [ALPN_PROTOCOL], requestCert: false });
    const fail = (err: Error): void => {
      secure.destroy();
      reject(err);
    };
    secure.once('error', fail);
    secure.once('close', () => reject(new Error('client closed the connection during the TLS handshake')));
    secure.once('secure', () => {
      secure.off('error', fail);
      secure.pause();
      const servername = (secure as tls.TLSSocket & { servername?: string | false }).servername;
      resolve({
        socket: secure,
        servername: typeof servername === 'string' && servername !== '' ? servername : undefined,
        alpn: secure.alpnProtocol || undefined,
      });
    });
  });
}
