// SCRAM-SHA-256 authentication of a client at the router (PostgreSQL docs, "Message Flow" §SASL
// Authentication; RFC 5802/7677; -PLUS with tls-server-end-point over TLS). The exchange itself is
// @pgs/security's ScramServer; this file moves its messages over the client socket.
import { createHmac } from 'node:crypto';
import type tls from 'node:tls';
import { mockScramSalt, ScramServer, tlsServerEndPoint, DEFAULT_SCRAM_ITERATIONS, type ScramVerifierParts } from '@pgs/security';
import {
  AuthenticationCode,
  decodeSaslInitialResponse,
  decodeSaslResponse,
  encodeAuthentication,
  encodeSaslMechanisms,
  ProtocolError,
} from '@pgs/wire-protocol';
import type { ClientReader } from './client-reader.js';
import { refuse } from './refusal.js';

/** How an exchange ended; a broken protocol throws a RouterRefusal instead. */
export type EdgeAuthResult = { kind: 'ok'; clientKey: Buffer } | { kind: 'failed' } | { kind: 'closed' };

/** What an exchange needs. */
export interface EdgeAuthInput {
  user: string;
  /** undefined: unknown user, a mock exchange that fails like a wrong password. */
  verifier: ScramVerifierParts | undefined;
  /** Secret the mock salts derive from (the same on every router of the fleet when shared). */
  mockSecret: Buffer;
  /** The TLS socket when the client came over TLS (channel binding to its certificate). */
  tlsSocket: tls.TLSSocket | undefined;
}

/** The mock part of a known user's exchange: never shown (the verifier's salt is). */
const KNOWN_USER = { salt: Buffer.alloc(0), iterations: DEFAULT_SCRAM_ITERATIONS };

/** The AuthenticationSASL message of each offer (with and without -PLUS), made once rather than per login. */
const SASL_OFFERS = new Map<string, Buffer>();
function saslOffer(mechanisms: string[]): Buffer {
  const key = mechanisms.join(',');
  let offer = SASL_OFFERS.get(key);
  if (!offer) {
    offer = encodeAuthentication(AuthenticationCode.Sasl, encodeSaslMechanisms(mechanisms));
    SASL_OFFERS.set(key, offer);
  }
  return offer;
}

/** tls-server-end-point of the certificate this TLS socket presented (one SHA-256 of ~1 KiB). */
function channelBindingOf(socket: tls.TLSSocket | undefined): Buffer | undefined {
  const cert = socket?.getCertificate();
  const raw = cert && 'raw' in cert ? cert.raw : undefined;
  return raw ? tlsServerEndPoint(raw) : undefined;
}

/**
 * Runs the exchange: AuthenticationSASL, the client's initial response, SASLContinue, its final
 * response; on success sends AuthenticationSASLFinal and AuthenticationOk.
 */
export async function authenticateClient(reader: ClientReader, write: (b: Buffer) => void, input: EdgeAuthInput): Promise<EdgeAuthResult> {
  const server = new ScramServer({
    verifier: input.verifier,
    // The mock salt (an HMAC) is made only for a user the router does not know: a known user's exchange never shows it.
    mock: input.verifier ? KNOWN_USER : { salt: mockScramSalt(input.mockSecret, input.user), iterations: DEFAULT_SCRAM_ITERATIONS },
    channelBinding: channelBindingOf(input.tlsSocket),
  });
  try {
    write(saslOffer(server.mechanisms()));
    const initial = await reader.next();
    if (initial === null) return { kind: 'closed' };
    const { mechanism, data } = decodeSaslInitialResponse(initial);
    if (data === null) throw refuse.authProtocol('malformed SCRAM message', 'The SASLInitialResponse carries no data.');
    const first = server.first(mechanism, data.toString('utf8'));
    if (first.kind === 'malformed') throw refuse.authProtocol(first.message, first.detail);
    if (first.kind !== 'continue') return { kind: 'failed' };
    write(encodeAuthentication(AuthenticationCode.SaslContinue, Buffer.from(first.serverFirst)));
    const response = await reader.next();
    if (response === null) return { kind: 'closed' };
    const final = server.final(decodeSaslResponse(response).toString('utf8'));
    if (final.kind === 'malformed') throw refuse.authProtocol(final.message, final.detail);
    if (final.kind !== 'success') return { kind: 'failed' };
    write(Buffer.concat([encodeAuthentication(AuthenticationCode.SaslFinal, Buffer.from(final.serverFinal)), encodeAuthentication(AuthenticationCode.Ok)]));
    return { kind: 'ok', clientKey: final.clientKey };
  } catch (err) {
    if (err instanceof ProtocolError) throw refuse.protocolViolation(err);
    throw err;
  }
}

/** The mock-salt secret, derived from the router's cancel secret (shared by a fleet's routers and workers). */
export function mockSecretOf(cancelSecret: Buffer): Buffer {
  return createHmac('sha256', cancelSecret).update('pgs-scram-mock-secret-v1').digest();
}
