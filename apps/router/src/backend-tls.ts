// TLS on the router's leg to a tenant instance, negotiated by the router itself and independent of
// the client's TLS to the router: SSLRequest, then a TLS handshake that checks the instance's
// certificate against the fleet CA with libpq's verify-full semantics (the chain, and the route's
// address in the certificate's IP SANs). PostgreSQL answers an SSLRequest with one byte, 'S' or 'N'
// (protocol docs, "SSL Session Encryption"); any byte that arrives after 'S' and before the
// handshake was not encrypted by the server and is refused (CVE-2021-23222).
import net from 'node:net';
import tls from 'node:tls';
import { encodeSslRequest } from '@pgs/wire-protocol';

/** How the router treats its leg to instances. */
export interface BackendTlsPolicy {
  /** Whether the fleet wants TLS to instances now (the route feed says so on every batch). */
  enabled(): boolean;
  /** The CA instance certificates chain to (the fleet CA); undefined: none known, so TLS is refused. */
  caPem(): string | undefined;
}

/** Why the TLS leg to an instance could not be set up. */
export class BackendTlsError extends Error {
  constructor(
    message: string,
    readonly result: 'not_offered' | 'failed',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BackendTlsError';
  }
}

/** One secure context per CA: building it parses the CA each time, a handshake then only reuses it. */
let cachedContext: { caPem: string; context: tls.SecureContext } | undefined;

function contextFor(caPem: string): tls.SecureContext {
  if (cachedContext?.caPem !== caPem) cachedContext = { caPem, context: tls.createSecureContext({ ca: caPem, minVersion: 'TLSv1.2' }) };
  return cachedContext.context;
}

/** Waits for exactly one byte, the answer to SSLRequest. */
function sslAnswer(socket: net.Socket, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | undefined, byte?: number): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(byte!);
    };
    const onData = (chunk: Buffer): void => {
      socket.pause();
      if (chunk.length !== 1) return done(new BackendTlsError(`the instance answered SSLRequest with ${chunk.length} bytes (expected one)`, 'failed'));
      done(undefined, chunk[0]);
    };
    const onClose = (): void => done(new BackendTlsError('the instance closed the connection during SSLRequest', 'failed'));
    const timer = setTimeout(() => done(new BackendTlsError(`no answer to SSLRequest within ${timeoutMs} ms`, 'failed')), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  });
}

/**
 * Upgrades a connected socket to TLS with verify-full checks against `caPem` on `address`. The
 * returned TLSSocket replaces `socket` for everything after (the startup packet included).
 */
export async function startBackendTls(socket: net.Socket, address: string, caPem: string, timeoutMs: number): Promise<tls.TLSSocket> {
  socket.write(encodeSslRequest());
  const answer = await sslAnswer(socket, timeoutMs);
  if (answer === 0x4e)
    throw new BackendTlsError(`the instance at ${address} does not offer TLS (it has no instance certificate yet, or runs without one)`, 'not_offered');
  if (answer !== 0x53) throw new BackendTlsError(`the instance at ${address} answered SSLRequest with byte 0x${answer.toString(16)}`, 'failed');
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      secureContext: contextFor(caPem),
      // An IP address: no SNI, and Node's identity check looks for it in the certificate's IP SANs.
      host: address,
      rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(address, cert),
    });
    secure.setNoDelay(true);
    const timer = setTimeout(() => secure.destroy(new Error(`TLS handshake with ${address} timed out after ${timeoutMs} ms`)), timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new BackendTlsError(`TLS to the instance at ${address} failed: ${err.message}`, 'failed', { cause: err }));
    };
    secure.once('error', onError);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.off('error', onError);
      // Stays attached (as on the plain socket): a late error before the link takes over must not crash us.
      secure.on('error', () => undefined);
      resolve(secure);
    });
  });
}
