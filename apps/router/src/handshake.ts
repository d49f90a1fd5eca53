// The client side of connection start, as a small state machine (PostgreSQL docs, "Message Flow"
// §Start-up, §SSL Session Encryption incl. direct SSL, §GSSAPI Session Encryption, §Canceling
// Requests in Progress). Each upgrade happens at most once: SSLRequest -> 'S' + TLS (or 'N'),
// GSSENCRequest -> 'N', a ClientHello as first bytes -> direct TLS with ALPN "postgresql"; then a
// StartupMessage or a CancelRequest ends the handshake. Bytes are decoded by @pgs/wire-protocol.
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type tls from 'node:tls';
import { ALPN_PROTOCOL, ProtocolError, SSL_ACCEPT, SSL_REJECT, StartupDecoder, StartupError, startupError } from '@pgs/wire-protocol';
import { refuse, RouterRefusal } from './refusal.js';
import type { StartupMessage } from './routing.js';
import { acceptTls, type TlsCredentials } from './tls-credentials.js';

/** How a handshake ended. */
export type HandshakeResult =
  | { kind: 'startup'; packet: StartupMessage; pipelined: Buffer; receivedAt: number }
  | { kind: 'cancel'; processId: number; secretKey: Buffer }
  /** The client closed; `incomplete` when it was in the middle of a packet (PostgreSQL logs that). */
  | { kind: 'closed'; incomplete: boolean };

/** Handshake settings. */
export interface HandshakeOptions {
  /** Certificates, when TLS is configured. */
  tls: TlsCredentials | undefined;
  /** Refuse a StartupMessage that did not come over TLS. */
  tlsRequire: boolean;
}

type Phase = 'initial' | 'after-ssl-refused' | 'after-gss-refused' | 'after-both-refused' | 'tls';

const EMPTY = Buffer.alloc(0);

/** Waits for the next chunk in paused mode (so no byte is lost between reads); null at end of stream. */
export function nextChunk(socket: net.Socket): Promise<Buffer | null> {
  const ready = socket.read() as Buffer | null;
  if (ready !== null) return Promise.resolve(ready);
  if (socket.readableEnded || socket.destroyed) return Promise.resolve(null);
  return new Promise((resolve) => {
    const onReadable = (): void => {
      const chunk = socket.read() as Buffer | null;
      if (chunk !== null) done(chunk);
    };
    const onEnd = (): void => done(null);
    const done = (value: Buffer | null): void => {
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onEnd);
      resolve(value);
    };
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onEnd);
  });
}

/** One client's handshake. `socket` is the current transport: the TCP socket, then the TLS socket. */
export class Handshake {
  #socket: net.Socket;
  #phase: Phase = 'initial';
  #tls: { servername: string | undefined; protocol: string | null } | undefined;
  readonly #o: HandshakeOptions;

  constructor(socket: net.Socket, options: HandshakeOptions) {
    this.#socket = socket;
    this.#o = options;
  }

  /** The socket to talk to the client on now (TLS once negotiated). */
  get socket(): net.Socket {
    return this.#socket;
  }

  /** TLS details once TLS is up; undefined for plaintext. */
  get tls(): { servername: string | undefined; protocol: string | null } | undefined {
    return this.#tls;
  }

  /** Runs until a StartupMessage or CancelRequest; throws RouterRefusal (or ProtocolError wrapped in one). */
  async run(): Promise<HandshakeResult> {
    try {
      return await this.#run();
    } catch (err) {
      if (err instanceof StartupError) throw refuse.startupRejected(err);
      if (err instanceof ProtocolError) throw refuse.protocolViolation(err);
      throw err;
    }
  }

  async #run(): Promise<HandshakeResult> {
    let decoder = new StartupDecoder();
    for (;;) {
      const chunk = await nextChunk(this.#socket);
      if (chunk === null) return { kind: 'closed', incomplete: decoder.buffered > 0 };
      let step = decoder.push(chunk);
      while (step.kind === 'packet') {
        const packet = step.packet;
        switch (packet.kind) {
          case 'direct-tls':
            // PostgreSQL reads a TLS record there as a length word far too large.
            if (this.#phase !== 'initial') throw startupError.invalidLength();
            await this.#startTls(decoder.takeRemainder(), true);
            decoder = new StartupDecoder();
            break;
          case 'ssl-request':
            // A second one reaches PostgreSQL's version check as protocol 1234.5679.
            if (this.#phase === 'tls' || this.#phase === 'after-ssl-refused' || this.#phase === 'after-both-refused') {
              throw startupError.unsupportedProtocol(1234, 5679);
            }
            {
              // Bytes after SSLRequest, before the handshake, would be trusted as if encrypted
              // (CVE-2021-23214). As PostgreSQL: answer the request, do the TLS handshake if it
              // was 'S', then refuse (over TLS then), the early bytes unread.
              const early = decoder.buffered > 0;
              if (this.#o.tls) {
                this.#socket.write(SSL_ACCEPT);
                await this.#startTls(EMPTY, false);
                decoder = new StartupDecoder();
              } else {
                this.#socket.write(SSL_REJECT);
                this.#phase = this.#phase === 'after-gss-refused' ? 'after-both-refused' : 'after-ssl-refused';
              }
              if (early) throw startupError.unencryptedData('ssl');
            }
            break;
          case 'gss-enc-request':
            if (this.#phase === 'tls' || this.#phase === 'after-gss-refused' || this.#phase === 'after-both-refused') {
              throw startupError.unsupportedProtocol(1234, 5680);
            }
            // No GSSAPI here (as a PostgreSQL built without it): 'N', and the client goes on with
            // SSLRequest or a plain startup.
            this.#socket.write(SSL_REJECT);
            if (decoder.buffered > 0) throw startupError.unencryptedData('gss');
            this.#phase = this.#phase === 'after-ssl-refused' ? 'after-both-refused' : 'after-gss-refused';
            break;
          case 'cancel-request':
            return { kind: 'cancel', processId: packet.processId, secretKey: packet.secretKey };
          case 'startup-message':
            if (this.#o.tlsRequire && this.#phase !== 'tls') throw refuse.tlsRequired();
            return { kind: 'startup', packet, pipelined: decoder.takeRemainder(), receivedAt: performance.now() };
        }
        if (decoder.buffered === 0) break;
        step = decoder.push(EMPTY);
      }
    }
  }

  async #startTls(head: Buffer, direct: boolean): Promise<void> {
    const creds = this.#o.tls;
    if (!creds) {
      if (direct) throw refuse.directTlsWithoutCertificates();
      throw new ProtocolError('TLS is not configured'); // unreachable: 'S' is only sent with certificates
    }
    let result;
    try {
      result = await acceptTls(this.#socket, creds.context, head);
    } catch (err) {
      throw new RouterRefusal(
        'protocol_violation',
        { code: '08P01', message: `TLS handshake failed: ${(err as Error).message}` },
        { cause: err, tellClient: false },
      );
    }
    this.#socket = result.socket;
    // From here until the connection is linked nobody else listens: an unhandled 'error' would crash the process.
    result.socket.on('error', () => result.socket.destroy());
    this.#phase = 'tls';
    this.#tls = { servername: result.servername, protocol: (result.socket as tls.TLSSocket).getProtocol() };
    // PostgreSQL 17 requires ALPN on direct TLS so a TLS endpoint of another protocol cannot be confused with it.
    if (direct && result.alpn !== ALPN_PROTOCOL) throw refuse.directTlsWithoutAlpn();
  }
}
