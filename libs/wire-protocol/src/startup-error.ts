// How a server ends a connection whose startup phase went wrong, as PostgreSQL 15 does before
// authentication (src/backend/postmaster/postmaster.c, ProcessStartupPacket; src/backend/utils/
// error/elog.c, send_message_to_frontend). PostgreSQL docs, "Message Flow" §Start-up and "Message
// Formats" (ErrorResponse, NegotiateProtocolVersion). Some failures get a FATAL ErrorResponse; the
// others (a bad length word, an incomplete packet, a bad CancelRequest) only a server log line
// (COMMERROR) and a close without a word: a client must see exactly that, or it raises an error
// PostgreSQL would never have sent.
import { Buffer } from 'node:buffer';
import { encodeNegotiateProtocolVersion } from './backend-messages.js';
import { PgError, type PgErrorInit } from './pg-error.js';
import { SqlState } from './sqlstate.js';

/** The newest protocol version a PostgreSQL 15 to 17 server names in its replies (3.0). */
export const ADVERTISED_PROTOCOL = Object.freeze({ major: 3, minor: 0 });

/** What the client gets: nothing (the server only logs), or an error message. */
export type StartupReply = 'close' | 'error';

/** The detail PostgreSQL gives for bytes that arrived before an encryption upgrade. */
const INJECTION_DETAIL = 'This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.';

/** A startup-phase failure with PostgreSQL's reply: `replyBytes()` is what to write before closing (null: just close). */
export class StartupError extends PgError {
  /** Whether the client is told (ErrorResponse) or the connection just closes. */
  readonly reply: StartupReply;
  /** Messages PostgreSQL sends before the error (a NegotiateProtocolVersion), else empty. */
  readonly preamble: Buffer;
  /** True for a client of protocol 2 or older: the error goes out in the protocol 2 format. */
  readonly legacyFormat: boolean;

  constructor(reply: StartupReply, fields: PgErrorInit, opts?: { preamble?: Buffer; legacyFormat?: boolean }) {
    super(fields);
    this.reply = reply;
    this.preamble = opts?.preamble ?? Buffer.alloc(0);
    this.legacyFormat = opts?.legacyFormat ?? false;
  }

  /** The bytes to write to the client before closing, or null to close without a word. */
  replyBytes(): Buffer | null {
    if (this.reply === 'close') return null;
    if (this.legacyFormat) {
      // Protocol 2 ErrorResponse: 'E', then "SEVERITY:  message\n" as one C string.
      return Buffer.concat([this.preamble, Buffer.from([0x45]), Buffer.from(`${this.severity}:  ${this.message}\n\0`, 'utf8')]);
    }
    return Buffer.concat([this.preamble, this.toErrorResponse()]);
  }
}

/** Constructors, one per way PostgreSQL 15 ends a connection before authentication. */
export const startupError = {
  /** The length word is below 8 or above the limit (an HTTP request, a TLS ClientHello to a server without direct TLS). */
  invalidLength: (): StartupError => new StartupError('close', { code: SqlState.ProtocolViolation, message: 'invalid length of startup packet' }),

  /** A CancelRequest of a length no key fits: PostgreSQL answers every CancelRequest by closing. */
  invalidCancelLength: (): StartupError => new StartupError('close', { code: SqlState.ProtocolViolation, message: 'invalid length of query cancel packet' }),

  /** The client closed in the middle of a packet. Only logged, and not even that after an SSL or GSS reply. */
  incomplete: (): StartupError => new StartupError('close', { code: SqlState.ProtocolViolation, message: 'incomplete startup packet' }),

  /**
   * A version whose major is not 3, a request code PostgreSQL does not know, or an SSLRequest or
   * GSSENCRequest it no longer accepts (sent twice, or inside TLS): all end in the version check.
   */
  unsupportedProtocol: (major: number, minor: number): StartupError =>
    new StartupError(
      'error',
      {
        code: SqlState.FeatureNotSupported,
        message: `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to ${ADVERTISED_PROTOCOL.major}.${ADVERTISED_PROTOCOL.minor}`,
      },
      { legacyFormat: major < 3 },
    ),

  /** The parameter list does not end with its terminator exactly at the packet's last byte. */
  badLayout: (): StartupError =>
    new StartupError('error', { code: SqlState.ProtocolViolation, message: 'invalid startup packet layout: expected terminator as last byte' }),

  /** No `user`, or an empty one; `preamble` is the NegotiateProtocolVersion the server sends first, if any. */
  noUser: (preamble?: Buffer): StartupError =>
    new StartupError(
      'error',
      { code: SqlState.InvalidAuthorizationSpecification, message: 'no PostgreSQL user name specified in startup packet' },
      preamble ? { preamble } : undefined,
    ),

  /** Plaintext that arrived with an SSLRequest or GSSENCRequest, before the server answered it. */
  unencryptedData: (request: 'ssl' | 'gss'): StartupError =>
    new StartupError('error', {
      code: SqlState.ProtocolViolation,
      message: request === 'ssl' ? 'received unencrypted data after SSL request' : 'received unencrypted data after GSSAPI encryption request',
      detail: INJECTION_DETAIL,
    }),

  /** A name or value that is not UTF-8: PostgreSQL takes raw bytes, the router cannot route them (its own reply). */
  notUtf8: (detail: string): StartupError => new StartupError('error', { code: SqlState.ProtocolViolation, message: 'invalid startup packet', detail }),
};

/**
 * The NegotiateProtocolVersion a PostgreSQL 15 server sends before anything else about a
 * StartupMessage of a newer minor version or with `_pq_.*` options; null when it sends none.
 */
export function negotiationFor(minor: number, protocolOptions: readonly string[]): Buffer | null {
  if (minor <= ADVERTISED_PROTOCOL.minor && protocolOptions.length === 0) return null;
  // The field is the whole newest version (major << 16 | minor), as the server writes it.
  return encodeNegotiateProtocolVersion((ADVERTISED_PROTOCOL.major << 16) | ADVERTISED_PROTOCOL.minor, protocolOptions);
}
